//! Durability for Warren: what survives a restart or a crash.
//!
//! The broker talks to a [`Store`]: definitions (vhosts, durable exchanges,
//! durable queues, bindings between durable entities) and persistent
//! messages in durable queues. Message bodies are stored once however many
//! queues hold them; each queue keeps an index of (offset → message id).
//! Writes are buffered until [`Store::sync`], which makes everything written
//! before it durable (fsync); the broker groups many publishes into one sync
//! (group commit) before it confirms them.
//!
//! [`SledStore`] is the implementation, on sled. Its types stay behind the
//! trait so another backend can be added.

mod lazy;
mod records;
mod sled_store;

pub use lazy::LazySledStore;
pub use records::{BindingRecord, Definitions, EntryRecord, ExchangeRecord, QueueRecord};
pub use sled_store::SledStore;

/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Backend(#[from] sled::Error),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("data directory has format version {found}, this build reads version {expected}")]
    Version { found: u32, expected: u32 },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What the broker persists, independent of the backend.
pub trait Store: Send + Sync + 'static {
    fn save_vhost(&self, name: &str) -> StoreResult<()>;
    fn save_exchange(&self, record: &ExchangeRecord) -> StoreResult<()>;
    fn delete_exchange(&self, vhost: &str, name: &str) -> StoreResult<()>;
    fn save_queue(&self, record: &QueueRecord) -> StoreResult<()>;
    /// Deletes a queue's definition and its message index.
    fn delete_queue(&self, vhost: &str, name: &str, id: u64) -> StoreResult<()>;
    fn save_binding(&self, record: &BindingRecord) -> StoreResult<()>;
    fn delete_binding(&self, record: &BindingRecord) -> StoreResult<()>;
    fn definitions(&self) -> StoreResult<Definitions>;

    /// A fresh id for a queue or a message, never reused.
    fn next_id(&self) -> StoreResult<u64>;
    fn save_message(&self, id: u64, bytes: &[u8]) -> StoreResult<()>;
    fn delete_message(&self, id: u64) -> StoreResult<()>;
    fn message(&self, id: u64) -> StoreResult<Option<Vec<u8>>>;
    fn save_entry(&self, queue: u64, offset: u64, entry: &EntryRecord) -> StoreResult<()>;
    fn delete_entry(&self, queue: u64, offset: u64) -> StoreResult<()>;
    /// A queue's index in offset order.
    fn entries(&self, queue: u64) -> StoreResult<Vec<(u64, EntryRecord)>>;
    /// Records that every message of `queue` below `offset` was delivered at
    /// least once, so they come back redelivered after a crash.
    fn save_delivered_mark(&self, queue: u64, offset: u64) -> StoreResult<()>;
    fn delivered_mark(&self, queue: u64) -> StoreResult<u64>;

    /// Makes everything written so far durable.
    fn sync(&self) -> StoreResult<()>;
    /// Bytes the store occupies on disk.
    fn size_on_disk(&self) -> StoreResult<u64>;
}
