//! Durability for Warren: what survives a restart or a crash.
//!
//! The broker talks to a [`Store`]: definitions (vhosts, durable exchanges,
//! durable queues, bindings between durable entities), the index of every
//! durable queue, and message bodies. A body is stored once however many
//! queues hold it, and reference-counted: each queue index entry and each
//! in-memory copy of the message holds it, and the last to let go frees its
//! space. Writes are buffered until [`Store::sync`], which makes everything
//! written before it durable (fsync); the broker groups many publishes into
//! one sync (group commit) before it confirms them.
//!
//! [`SledStore`] is the implementation: definitions on sled, queue indexes
//! in slot files (`queue_index.rs`) and bodies in append-only segment files
//! (`segments.rs`) beside it; why, in store/README.md. sled's types stay
//! behind the trait so another backend can be added.

mod ids;
mod lazy;
mod moves;
mod queue_index;
mod raft_log;
mod records;
mod segments;
mod sled_store;
mod snapshot_file;

use bytes::Bytes;

pub use ids::{MessageId, Offset, QueueId};
pub use lazy::LazySledStore;
pub use moves::{MoveRecord, MovedEntry};
pub use raft_log::{read_state_file, save_state_file, LogIndex, RaftLog, Unsynced};
pub use records::{BindingRecord, Definitions, EntryRecord, ExchangeRecord, QueueRecord, QueueSummary};
pub use segments::SegmentStats;
pub use sled_store::{SledStore, StoreOptions};
pub use snapshot_file::{read_snapshot, save_snapshot};

/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Backend(#[from] sled::Error),
    #[error("message store error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("data directory has format version {found}, this build reads version {expected}")]
    Version { found: u32, expected: u32 },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What the broker persists, independent of the backend.
pub trait Store: Send + Sync + 'static {
    fn save_vhost(&self, name: &str) -> StoreResult<()>;
    /// Forgets a vhost's name (its exchanges, queues and bindings are
    /// deleted one by one by the broker before).
    fn delete_vhost(&self, name: &str) -> StoreResult<()>;
    /// Saves one access or configuration record (a user, a permission, a
    /// vhost's metadata, a policy...) under `key`; the broker owns the
    /// keys and the encoding.
    fn save_setting(&self, key: &str, value: &[u8]) -> StoreResult<()>;
    fn delete_setting(&self, key: &str) -> StoreResult<()>;
    /// One setting, if it is saved.
    fn setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    fn save_exchange(&self, record: &ExchangeRecord) -> StoreResult<()>;
    fn delete_exchange(&self, vhost: &str, name: &str) -> StoreResult<()>;
    fn save_queue(&self, record: &QueueRecord) -> StoreResult<()>;
    /// Deletes a queue's definition and its index. The index is gone at
    /// once; its files are walked (releasing its messages) and removed at
    /// the next sync, off the caller's thread.
    fn delete_queue(&self, vhost: &str, name: &str, id: QueueId) -> StoreResult<()>;
    /// Deletes the index of a queue that has no definition here (a
    /// non-durable queue that paged), as `delete_queue` deletes it.
    fn delete_index(&self, id: QueueId) -> StoreResult<()>;
    fn save_binding(&self, record: &BindingRecord) -> StoreResult<()>;
    fn delete_binding(&self, record: &BindingRecord) -> StoreResult<()>;
    fn definitions(&self) -> StoreResult<Definitions>;

    /// A fresh queue id, never reused.
    fn next_id(&self) -> StoreResult<QueueId>;

    /// Stores a message body (given in parts, stored one after the other)
    /// and returns its id, with one reference held by the caller.
    fn append_message(&self, parts: &[&[u8]]) -> StoreResult<MessageId>;
    /// Takes another reference to a stored message; false if it is gone.
    fn retain_message(&self, id: MessageId) -> bool;
    /// Drops a reference; the last one frees the body's space.
    fn release_message(&self, id: MessageId);
    fn message(&self, id: MessageId) -> StoreResult<Option<Vec<u8>>>;
    /// Several messages' bytes, in the order asked (None for one gone):
    /// a store may read neighbours on disk together, and hand out slices
    /// of one read (each slice keeps the whole read's memory alive).
    fn messages(&self, ids: &[MessageId]) -> StoreResult<Vec<Option<Bytes>>> {
        ids.iter().map(|id| Ok(self.message(*id)?.map(Bytes::from))).collect()
    }

    /// Adds a queue index entry; it holds a reference to its message.
    fn add_entry(&self, queue: QueueId, offset: Offset, entry: &EntryRecord) -> StoreResult<()>;
    /// Rewrites an entry in place (its delivery count).
    fn update_entry(&self, queue: QueueId, offset: Offset, entry: &EntryRecord) -> StoreResult<()>;
    /// Removes an entry (which refers to `message`), releasing the message.
    fn remove_entry(&self, queue: QueueId, offset: Offset, message: MessageId) -> StoreResult<()>;
    /// Removes the entries of offsets `from..to` (a purge). Reads skip them
    /// at once; the index files are cleared, and the messages released, at
    /// the next sync, off the caller's thread.
    fn remove_entries(&self, queue: QueueId, from: Offset, to: Offset) -> StoreResult<()>;
    /// Up to `limit` entries of a queue at or above offset `from`, in order.
    fn entries(&self, queue: QueueId, from: Offset, limit: usize) -> StoreResult<Vec<(Offset, EntryRecord)>>;
    /// What the queue's index held when the store was opened.
    fn recovered_queue(&self, queue: QueueId) -> QueueSummary;
    /// Records that every message of `queue` below `offset` was delivered at
    /// least once, so they come back redelivered after a crash.
    fn save_delivered_mark(&self, queue: QueueId, offset: Offset) -> StoreResult<()>;
    fn delivered_mark(&self, queue: QueueId) -> StoreResult<Offset>;

    /// Records a move of messages between durable queues under `name`
    /// (replacing the one before), durable at the next sync; see
    /// `moves.rs` for the protocol that makes a move happen exactly once.
    fn save_move(&self, name: &str, record: &MoveRecord) -> StoreResult<()>;
    /// Forgets the move recorded under `name`: it completed.
    fn clear_move(&self, name: &str) -> StoreResult<()>;

    /// Makes everything written so far durable, then deletes the body
    /// files that held nothing live any more.
    fn sync(&self) -> StoreResult<()>;
    /// Writes what was appended to the files without making it durable,
    /// so appends never wait for the disk (the flusher calls it).
    fn write_behind(&self) -> StoreResult<()>;
    /// Bytes appended and not yet written to the files.
    fn unwritten_bytes(&self) -> u64;
    /// Background work that gives disk space back (compaction); returns
    /// the bytes it moved. Called regularly by the broker's flusher.
    fn maintain(&self) -> StoreResult<u64>;
    /// Bytes the store occupies on disk.
    fn size_on_disk(&self) -> StoreResult<u64>;
}
