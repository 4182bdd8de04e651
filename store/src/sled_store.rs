//! The [`Store`] on disk: definitions (and queue ids) in sled, queue indexes in the slot files of `queue_index.rs`, message bodies
//! in the segment files of `segments.rs`. sled's own periodic flush is
//! turned off: durability points are the broker's calls to `sync`.
//!
//! Opening reads every index entry once: it counts the references to each
//! stored body, drops entries whose body did not survive a crash (they were
//! never confirmed) and transient entries (written only because their queue
//! was paging), and sums up each queue (count, bytes, offsets) so the broker
//! can recover a queue without loading its messages.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::ids::{MessageId, Offset, QueueId};
use crate::queue_index::{Claims, QueueIndexes, Run};
use crate::records::*;
use crate::segments::{SegmentStats, SegmentStore};
use crate::{MoveRecord, Store, StoreError, StoreResult, FORMAT_VERSION};

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
    settings: sled::Tree,
    /// Moves between queues under way (`moves.rs`), by name.
    moves: sled::Tree,
    indexes: QueueIndexes,
    bodies: SegmentStore,
    options: StoreOptions,
    /// Each queue's index as found at open.
    recovered: Mutex<HashMap<QueueId, QueueSummary>>,
}

fn name_key(vhost: &str, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(vhost.len() + name.len() + 1);
    key.extend_from_slice(vhost.as_bytes());
    key.push(0);
    key.extend_from_slice(name.as_bytes());
    key
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialise")
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// How long opening waits for sled's file lock: a store dropped a moment
/// ago (reopened in the same process) may still hold it while sled's
/// threads let go. Two processes never get here: the broker locks the
/// data directory first.
const LOCK_WAIT: Duration = Duration::from_secs(5);

fn open_sled(path: &Path) -> StoreResult<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(path)
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(CACHE_BYTES)
            .open();
        match opened {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return Ok(other?),
        }
    }
}

/// Index entries found at start hold their bodies.
struct BodiesClaimed<'a>(&'a SegmentStore);

impl Claims for BodiesClaimed<'_> {
    fn entry(&mut self, entry: &EntryRecord) -> bool {
        !entry.transient && self.0.retain_recovered(entry.message)
    }

    fn runs(&mut self, runs: &[Run]) -> bool {
        let ranges: Vec<(u64, u64)> = runs.iter().map(|r| (r.id, u64::from(r.count))).collect();
        self.0.retain_recovered_runs(&ranges)
    }
}

impl SledStore {
    /// Opens (or creates) a store in `dir` with the default options.
    pub fn open(dir: &Path) -> StoreResult<SledStore> {
        SledStore::open_with(dir, StoreOptions::default())
    }

    /// Opens (or creates) a store in `dir`.
    pub fn open_with(dir: &Path, options: StoreOptions) -> StoreResult<SledStore> {
        let db = open_sled(&dir.join("sled"))?;
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
        let queues = db.open_tree("queues")?;
        let mut queue_ids = HashSet::new();
        for value in queues.iter().values() {
            queue_ids.insert(from_json::<QueueRecord>(&value?)?.id);
        }
        let bodies = SegmentStore::open(&dir.join("messages"), options.segment_bytes)?;
        let (indexes, summaries, dropped) =
            QueueIndexes::open(&dir.join("queues"), &queue_ids, &mut BodiesClaimed(&bodies))?;
        let garbage = bodies.finish_recovery()?;
        let moves = db.open_tree("moves")?;
        let mut summaries = summaries;
        let mut interrupted = 0;
        for value in moves.iter().values() {
            let record: MoveRecord = from_json(&value?)?;
            let removed = crate::moves::settle_interrupted(&record, &indexes, &bodies, &mut summaries)?;
            tracing::info!(
                moved = removed,
                "store: finished a move between queues a crash interrupted"
            );
            interrupted += 1;
        }
        if dropped > 0 || garbage > 0 {
            tracing::info!(
                dropped_entries = dropped,
                unreferenced_bodies = garbage,
                "store: dropped what did not survive (unconfirmed, transient or orphaned)"
            );
        }
        let store = SledStore {
            vhosts: db.open_tree("vhosts")?,
            exchanges: db.open_tree("exchanges")?,
            queues,
            bindings: db.open_tree("bindings")?,
            settings: db.open_tree("settings")?,
            moves,
            indexes,
            bodies,
            options,
            recovered: Mutex::new(summaries),
            db,
        };
        if interrupted > 0 {
            // The removals are durable before the records are forgotten.
            store.sync()?;
            store.moves.clear()?;
            store.db.flush()?;
        }
        Ok(store)
    }

    /// Whether `dir` already holds a store.
    pub fn exists_in(dir: &Path) -> bool {
        dir.join("sled").exists()
    }

    /// The body segments' figures.
    pub fn body_stats(&self) -> SegmentStats {
        self.bodies.stats()
    }
}

impl Store for SledStore {
    fn save_vhost(&self, name: &str) -> StoreResult<()> {
        self.vhosts.insert(name.as_bytes(), &[])?;
        Ok(())
    }

    fn delete_vhost(&self, name: &str) -> StoreResult<()> {
        self.vhosts.remove(name.as_bytes())?;
        Ok(())
    }

    fn save_setting(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.settings.insert(key.as_bytes(), value)?;
        Ok(())
    }

    fn setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.settings.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    fn delete_setting(&self, key: &str) -> StoreResult<()> {
        self.settings.remove(key.as_bytes())?;
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

    fn delete_queue(&self, vhost: &str, name: &str, id: QueueId) -> StoreResult<()> {
        self.queues.remove(name_key(vhost, name))?;
        self.indexes.delete(id);
        Ok(())
    }

    fn delete_index(&self, id: QueueId) -> StoreResult<()> {
        self.indexes.delete(id);
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
        for pair in self.settings.iter() {
            let (key, value) = pair?;
            defs.settings
                .push((String::from_utf8_lossy(&key).into_owned(), value.to_vec()));
        }
        Ok(defs)
    }

    fn next_id(&self) -> StoreResult<QueueId> {
        Ok(QueueId(self.db.generate_id()?))
    }

    fn append_message(&self, parts: &[&[u8]]) -> StoreResult<MessageId> {
        Ok(self.bodies.append(parts)?)
    }

    fn retain_message(&self, id: MessageId) -> bool {
        self.bodies.retain(id)
    }

    fn release_message(&self, id: MessageId) {
        self.bodies.release(id)
    }

    fn message(&self, id: MessageId) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.bodies.read(id)?)
    }

    fn messages(&self, ids: &[MessageId]) -> StoreResult<Vec<Option<Bytes>>> {
        Ok(self.bodies.read_many(ids)?)
    }

    fn add_entry(&self, queue: QueueId, offset: Offset, entry: &EntryRecord) -> StoreResult<()> {
        if !self.bodies.retain(entry.message) {
            return Err(StoreError::Corrupt(format!("message {} is not stored", entry.message)));
        }
        if let Err(e) = self.indexes.add(queue, offset, entry) {
            self.bodies.release(entry.message);
            return Err(e.into());
        }
        Ok(())
    }

    fn update_entry(&self, queue: QueueId, offset: Offset, entry: &EntryRecord) -> StoreResult<()> {
        Ok(self.indexes.update(queue, offset, entry)?)
    }

    fn remove_entry(&self, queue: QueueId, offset: Offset, message: MessageId) -> StoreResult<()> {
        self.indexes.remove(queue, offset)?;
        self.bodies.release(message);
        Ok(())
    }

    fn remove_entries(&self, queue: QueueId, from: Offset, to: Offset) -> StoreResult<()> {
        Ok(self.indexes.remove_range(queue, from, to)?)
    }

    fn entries(&self, queue: QueueId, from: Offset, limit: usize) -> StoreResult<Vec<(Offset, EntryRecord)>> {
        Ok(self.indexes.entries(queue, from, limit)?)
    }

    fn recovered_queue(&self, queue: QueueId) -> QueueSummary {
        self.recovered.lock().remove(&queue).unwrap_or_default()
    }

    fn save_delivered_mark(&self, queue: QueueId, offset: Offset) -> StoreResult<()> {
        Ok(self.indexes.set_delivered(queue, offset)?)
    }

    fn delivered_mark(&self, queue: QueueId) -> StoreResult<Offset> {
        Ok(self.indexes.delivered(queue))
    }

    fn save_move(&self, name: &str, record: &MoveRecord) -> StoreResult<()> {
        self.moves.insert(name.as_bytes(), json(record))?;
        Ok(())
    }

    fn clear_move(&self, name: &str) -> StoreResult<()> {
        self.moves.remove(name.as_bytes())?;
        Ok(())
    }

    fn sync(&self) -> StoreResult<()> {
        // Bodies first, then the index that refers to them: an entry on disk
        // never points at a body that is not (entries written after the body
        // sync began belong to a later confirm epoch). The bodies' sync also
        // deletes segments nothing refers to any more (see `segments.rs`).
        // First, the file work purges and deletions left for now.
        self.indexes
            .apply_deferred(&mut |entry| self.bodies.release(entry.message))?;
        self.bodies.sync()?;
        self.indexes.sync()?;
        self.db.flush()?;
        Ok(())
    }

    fn write_behind(&self) -> StoreResult<()> {
        Ok(self.bodies.write_behind()?)
    }

    fn unwritten_bytes(&self) -> u64 {
        self.bodies.unwritten_bytes()
    }

    fn maintain(&self) -> StoreResult<u64> {
        Ok(self.bodies.compact(self.options.compact_after)?)
    }

    fn size_on_disk(&self) -> StoreResult<u64> {
        Ok(self.db.size_on_disk()? + self.indexes.file_bytes() + self.bodies.stats().file_bytes)
    }
}
