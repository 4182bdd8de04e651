//! A sled store that is opened only when first needed.
//!
//! Opening sled costs about 30 MB of memory and, for a new directory, tens
//! of milliseconds. A broker that never declares anything durable (a test
//! suite's broker, typically) never pays that; one whose data directory
//! already holds a store opens it at start, to recover.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::ids::{MessageId, Offset, QueueId};
use crate::records::*;
use bytes::Bytes;

use crate::{MoveRecord, SledStore, Store, StoreOptions, StoreResult};

pub struct LazySledStore {
    dir: PathBuf,
    options: StoreOptions,
    inner: OnceLock<SledStore>,
    opening: Mutex<()>,
}

impl LazySledStore {
    pub fn new(dir: PathBuf, options: StoreOptions) -> LazySledStore {
        LazySledStore {
            dir,
            options,
            inner: OnceLock::new(),
            opening: Mutex::new(()),
        }
    }

    /// Whether the directory already holds a store (to recover).
    pub fn exists(&self) -> bool {
        SledStore::exists_in(&self.dir)
    }

    /// The store, opening it if needed.
    pub fn get(&self) -> StoreResult<&SledStore> {
        if let Some(store) = self.inner.get() {
            return Ok(store);
        }
        let _guard = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = self.inner.get() {
            return Ok(store);
        }
        let store = SledStore::open_with(&self.dir, self.options)?;
        Ok(self.inner.get_or_init(|| store))
    }
}

impl Store for LazySledStore {
    fn save_vhost(&self, name: &str) -> StoreResult<()> {
        self.get()?.save_vhost(name)
    }
    fn delete_vhost(&self, name: &str) -> StoreResult<()> {
        self.get()?.delete_vhost(name)
    }
    fn save_setting(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.get()?.save_setting(key, value)
    }
    fn setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.get()?.setting(key)
    }
    fn delete_setting(&self, key: &str) -> StoreResult<()> {
        self.get()?.delete_setting(key)
    }
    fn save_exchange(&self, record: &ExchangeRecord) -> StoreResult<()> {
        self.get()?.save_exchange(record)
    }
    fn delete_exchange(&self, vhost: &str, name: &str) -> StoreResult<()> {
        self.get()?.delete_exchange(vhost, name)
    }
    fn save_queue(&self, record: &QueueRecord) -> StoreResult<()> {
        self.get()?.save_queue(record)
    }
    fn delete_queue(&self, vhost: &str, name: &str, id: QueueId) -> StoreResult<()> {
        self.get()?.delete_queue(vhost, name, id)
    }
    fn delete_index(&self, id: QueueId) -> StoreResult<()> {
        self.get()?.delete_index(id)
    }
    fn save_binding(&self, record: &BindingRecord) -> StoreResult<()> {
        self.get()?.save_binding(record)
    }
    fn delete_binding(&self, record: &BindingRecord) -> StoreResult<()> {
        self.get()?.delete_binding(record)
    }
    fn definitions(&self) -> StoreResult<Definitions> {
        self.get()?.definitions()
    }
    fn next_id(&self) -> StoreResult<QueueId> {
        self.get()?.next_id()
    }
    fn append_message(&self, parts: &[&[u8]]) -> StoreResult<MessageId> {
        self.get()?.append_message(parts)
    }
    /// Messages exist only once the store is open.
    fn retain_message(&self, id: MessageId) -> bool {
        self.inner.get().is_some_and(|s| s.retain_message(id))
    }
    fn release_message(&self, id: MessageId) {
        if let Some(store) = self.inner.get() {
            store.release_message(id)
        }
    }
    fn message(&self, id: MessageId) -> StoreResult<Option<Vec<u8>>> {
        self.get()?.message(id)
    }
    fn messages(&self, ids: &[MessageId]) -> StoreResult<Vec<Option<Bytes>>> {
        self.get()?.messages(ids)
    }
    fn add_entry(&self, queue: QueueId, offset: Offset, entry: &EntryRecord) -> StoreResult<()> {
        self.get()?.add_entry(queue, offset, entry)
    }
    fn update_entry(&self, queue: QueueId, offset: Offset, entry: &EntryRecord) -> StoreResult<()> {
        self.get()?.update_entry(queue, offset, entry)
    }
    fn remove_entry(&self, queue: QueueId, offset: Offset, message: MessageId) -> StoreResult<()> {
        self.get()?.remove_entry(queue, offset, message)
    }
    fn remove_entries(&self, queue: QueueId, from: Offset, to: Offset) -> StoreResult<()> {
        self.get()?.remove_entries(queue, from, to)
    }
    fn entries(&self, queue: QueueId, from: Offset, limit: usize) -> StoreResult<Vec<(Offset, EntryRecord)>> {
        self.get()?.entries(queue, from, limit)
    }
    fn recovered_queue(&self, queue: QueueId) -> QueueSummary {
        self.inner.get().map(|s| s.recovered_queue(queue)).unwrap_or_default()
    }
    fn save_delivered_mark(&self, queue: QueueId, offset: Offset) -> StoreResult<()> {
        self.get()?.save_delivered_mark(queue, offset)
    }
    fn delivered_mark(&self, queue: QueueId) -> StoreResult<Offset> {
        self.get()?.delivered_mark(queue)
    }
    fn save_move(&self, name: &str, record: &MoveRecord) -> StoreResult<()> {
        self.get()?.save_move(name, record)
    }
    fn clear_move(&self, name: &str) -> StoreResult<()> {
        self.get()?.clear_move(name)
    }
    /// Nothing to sync while nothing was ever opened.
    fn sync(&self) -> StoreResult<()> {
        match self.inner.get() {
            Some(store) => store.sync(),
            None => Ok(()),
        }
    }
    fn write_behind(&self) -> StoreResult<()> {
        match self.inner.get() {
            Some(store) => store.write_behind(),
            None => Ok(()),
        }
    }
    fn unwritten_bytes(&self) -> u64 {
        self.inner.get().map_or(0, |s| s.unwritten_bytes())
    }
    fn maintain(&self) -> StoreResult<u64> {
        match self.inner.get() {
            Some(store) => store.maintain(),
            None => Ok(0),
        }
    }
    fn size_on_disk(&self) -> StoreResult<u64> {
        match self.inner.get() {
            Some(store) => store.size_on_disk(),
            None => Ok(0),
        }
    }
}
