//! The sled implementation of [`Store`]: definitions and queue indexes in
//! sled, message bodies in the segment files of `segments.rs`.
//!
//! One tree per kind of record. Keys are laid out so a queue's index is one
//! contiguous range (queue id then offset, big-endian) and scans come back
//! in offset order. sled's own periodic flush is turned off: durability
//! points are the broker's calls to `sync`.
//!
//! Opening reads every index entry once: it counts the references to each
//! stored body, drops entries whose body did not survive a crash (they were
//! never confirmed) and transient entries (written only because their queue
//! was paging), and sums up each queue (count, bytes, offsets) so the broker
//! can recover a queue without loading its messages.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use parking_lot::Mutex;

use crate::records::*;
use crate::segments::{SegmentStats, SegmentStore};
use crate::{Store, StoreError, StoreResult, FORMAT_VERSION};

/// How the store lays out its files.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// The size at which a body segment file is sealed and a new one begun.
    pub segment_bytes: u64,
    /// A sealed segment that is mostly garbage is compacted once it has not
    /// changed for this long (so segments still being drained by consumers
    /// are left to empty themselves).
    pub compact_after: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_bytes: 8 * 1024 * 1024,
            compact_after: Duration::from_secs(5),
        }
    }
}

/// sled's page cache. Messages being consumed are held by the broker
/// itself, so the store's cache only needs the index pages it touches; a
/// small cache keeps an idle broker small.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

pub struct SledStore {
    db: sled::Db,
    vhosts: sled::Tree,
    exchanges: sled::Tree,
    queues: sled::Tree,
    bindings: sled::Tree,
    entries: sled::Tree,
    delivered: sled::Tree,
    bodies: SegmentStore,
    options: StoreOptions,
    /// Each queue's index as found at open.
    recovered: Mutex<HashMap<u64, QueueSummary>>,
}

fn name_key(vhost: &str, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(vhost.len() + name.len() + 1);
    key.extend_from_slice(vhost.as_bytes());
    key.push(0);
    key.extend_from_slice(name.as_bytes());
    key
}

fn entry_key(queue: u64, offset: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&queue.to_be_bytes());
    key[8..].copy_from_slice(&offset.to_be_bytes());
    key
}

fn entry_key_parts(key: &[u8]) -> Option<(u64, u64)> {
    let queue = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    let offset = u64::from_be_bytes(key.get(8..16)?.try_into().ok()?);
    Some((queue, offset))
}

fn corrupt_entry() -> StoreError {
    StoreError::Corrupt("queue index entry".into())
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialise")
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl SledStore {
    /// Opens (or creates) a store in `dir` with the default options.
    pub fn open(dir: &Path) -> StoreResult<SledStore> {
        SledStore::open_with(dir, StoreOptions::default())
    }

    /// Opens (or creates) a store in `dir`.
    pub fn open_with(dir: &Path, options: StoreOptions) -> StoreResult<SledStore> {
        let db = sled::Config::new()
            .path(dir.join("sled"))
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        let meta = db.open_tree("meta")?;
        match meta.get("format_version")? {
            Some(v) => {
                let found = u32::from_be_bytes(
                    v.as_ref()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("format_version".into()))?,
                );
                if found != FORMAT_VERSION {
                    return Err(StoreError::Version {
                        found,
                        expected: FORMAT_VERSION,
                    });
                }
            }
            None => {
                meta.insert("format_version", &FORMAT_VERSION.to_be_bytes())?;
                db.flush()?;
            }
        }
        let store = SledStore {
            vhosts: db.open_tree("vhosts")?,
            exchanges: db.open_tree("exchanges")?,
            queues: db.open_tree("queues")?,
            bindings: db.open_tree("bindings")?,
            entries: db.open_tree("entries")?,
            delivered: db.open_tree("delivered")?,
            bodies: SegmentStore::open(&dir.join("messages"), options.segment_bytes)?,
            options,
            recovered: Mutex::new(HashMap::new()),
            db,
        };
        store.recover_indexes()?;
        Ok(store)
    }

    /// Reads every index entry once (see the module docs).
    fn recover_indexes(&self) -> StoreResult<()> {
        let mut queue_ids = HashSet::new();
        for value in self.queues.iter().values() {
            queue_ids.insert(from_json::<QueueRecord>(&value?)?.id);
        }
        let mut summaries: HashMap<u64, QueueSummary> = HashMap::new();
        let mut dropped = sled::Batch::default();
        let mut dropped_count = 0usize;
        for item in self.entries.iter() {
            let (key, value) = item?;
            let (queue, offset) = entry_key_parts(&key).ok_or_else(corrupt_entry)?;
            let entry = EntryRecord::from_bytes(&value).ok_or_else(corrupt_entry)?;
            if !queue_ids.contains(&queue) || entry.transient || !self.bodies.retain_recovered(entry.message) {
                dropped.remove(key);
                dropped_count += 1;
                continue;
            }
            let summary = summaries.entry(queue).or_insert(QueueSummary {
                first_offset: offset,
                ..QueueSummary::default()
            });
            summary.count += 1;
            summary.bytes += entry.body_size;
            summary.next_offset = offset + 1;
        }
        self.entries.apply_batch(dropped)?;
        let garbage = self.bodies.finish_recovery()?;
        if dropped_count > 0 || garbage > 0 {
            tracing::info!(
                dropped_entries = dropped_count,
                unreferenced_bodies = garbage,
                "store: dropped what did not survive (unconfirmed, transient or orphaned)"
            );
        }
        self.db.flush()?;
        *self.recovered.lock() = summaries;
        Ok(())
    }

    /// Whether `dir` already holds a store.
    pub fn exists_in(dir: &Path) -> bool {
        dir.join("sled").exists()
    }

    /// The body segments' figures.
    pub fn body_stats(&self) -> SegmentStats {
        self.bodies.stats()
    }

    /// Removes index entries in one batch and releases their messages.
    fn remove_entries(&self, range: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>) -> StoreResult<u64> {
        let mut batch = sled::Batch::default();
        let mut messages = Vec::new();
        for item in range {
            let (key, value) = item?;
            messages.push(EntryRecord::from_bytes(&value).ok_or_else(corrupt_entry)?.message);
            batch.remove(key);
        }
        self.entries.apply_batch(batch)?;
        for &id in &messages {
            self.bodies.release(id);
        }
        Ok(messages.len() as u64)
    }
}

impl Store for SledStore {
    fn save_vhost(&self, name: &str) -> StoreResult<()> {
        self.vhosts.insert(name.as_bytes(), &[])?;
        Ok(())
    }

    fn save_exchange(&self, record: &ExchangeRecord) -> StoreResult<()> {
        self.exchanges
            .insert(name_key(&record.vhost, &record.name), json(record))?;
        Ok(())
    }

    fn delete_exchange(&self, vhost: &str, name: &str) -> StoreResult<()> {
        self.exchanges.remove(name_key(vhost, name))?;
        Ok(())
    }

    fn save_queue(&self, record: &QueueRecord) -> StoreResult<()> {
        self.queues
            .insert(name_key(&record.vhost, &record.name), json(record))?;
        Ok(())
    }

    fn delete_queue(&self, vhost: &str, name: &str, id: u64) -> StoreResult<()> {
        self.queues.remove(name_key(vhost, name))?;
        self.delivered.remove(id.to_be_bytes())?;
        self.remove_entries(self.entries.scan_prefix(id.to_be_bytes()))?;
        Ok(())
    }

    fn save_binding(&self, record: &BindingRecord) -> StoreResult<()> {
        self.bindings.insert(json(record), &[])?;
        Ok(())
    }

    fn delete_binding(&self, record: &BindingRecord) -> StoreResult<()> {
        self.bindings.remove(json(record))?;
        Ok(())
    }

    fn definitions(&self) -> StoreResult<Definitions> {
        let mut defs = Definitions::default();
        for key in self.vhosts.iter().keys() {
            defs.vhosts.push(String::from_utf8_lossy(&key?).into_owned());
        }
        for value in self.exchanges.iter().values() {
            defs.exchanges.push(from_json(&value?)?);
        }
        for value in self.queues.iter().values() {
            defs.queues.push(from_json(&value?)?);
        }
        for key in self.bindings.iter().keys() {
            defs.bindings.push(from_json(&key?)?);
        }
        Ok(defs)
    }

    fn next_id(&self) -> StoreResult<u64> {
        Ok(self.db.generate_id()?)
    }

    fn append_message(&self, parts: &[&[u8]]) -> StoreResult<u64> {
        Ok(self.bodies.append(parts)?)
    }

    fn retain_message(&self, id: u64) -> bool {
        self.bodies.retain(id)
    }

    fn release_message(&self, id: u64) {
        self.bodies.release(id)
    }

    fn message(&self, id: u64) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.bodies.read(id)?)
    }

    fn add_entry(&self, queue: u64, offset: u64, entry: &EntryRecord) -> StoreResult<()> {
        if !self.bodies.retain(entry.message) {
            return Err(StoreError::Corrupt(format!("message {} is not stored", entry.message)));
        }
        if let Err(e) = self.entries.insert(entry_key(queue, offset), &entry.to_bytes()) {
            self.bodies.release(entry.message);
            return Err(e.into());
        }
        Ok(())
    }

    fn update_entry(&self, queue: u64, offset: u64, entry: &EntryRecord) -> StoreResult<()> {
        self.entries.insert(entry_key(queue, offset), &entry.to_bytes())?;
        Ok(())
    }

    fn remove_entry(&self, queue: u64, offset: u64) -> StoreResult<()> {
        if let Some(old) = self.entries.remove(entry_key(queue, offset))? {
            let entry = EntryRecord::from_bytes(&old).ok_or_else(corrupt_entry)?;
            self.bodies.release(entry.message);
        }
        Ok(())
    }

    fn remove_entries_from(&self, queue: u64, from: u64) -> StoreResult<u64> {
        self.remove_entries(self.entries.range(entry_key(queue, from)..=entry_key(queue, u64::MAX)))
    }

    fn entries(&self, queue: u64, from: u64, limit: usize) -> StoreResult<Vec<(u64, EntryRecord)>> {
        self.entries
            .range(entry_key(queue, from)..=entry_key(queue, u64::MAX))
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                let (_, offset) = entry_key_parts(&key).ok_or_else(corrupt_entry)?;
                let entry = EntryRecord::from_bytes(&value).ok_or_else(corrupt_entry)?;
                Ok((offset, entry))
            })
            .collect()
    }

    fn recovered_queue(&self, queue: u64) -> QueueSummary {
        self.recovered.lock().remove(&queue).unwrap_or_default()
    }

    fn save_delivered_mark(&self, queue: u64, offset: u64) -> StoreResult<()> {
        self.delivered.insert(queue.to_be_bytes(), &offset.to_be_bytes())?;
        Ok(())
    }

    fn delivered_mark(&self, queue: u64) -> StoreResult<u64> {
        Ok(self
            .delivered
            .get(queue.to_be_bytes())?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    fn sync(&self) -> StoreResult<()> {
        // Bodies first, then the index that refers to them: an entry on disk
        // never points at a body that is not (entries written after the body
        // sync began belong to a later confirm epoch).
        let dead = self.bodies.sync()?;
        self.db.flush()?;
        self.bodies.remove_segments(&dead)?;
        Ok(())
    }

    fn maintain(&self) -> StoreResult<u64> {
        Ok(self.bodies.compact(self.options.compact_after)?)
    }

    fn size_on_disk(&self) -> StoreResult<u64> {
        Ok(self.db.size_on_disk()? + self.bodies.stats().file_bytes)
    }
}
