//! The sled implementation of [`Store`].
//!
//! One tree per kind of record. Keys are laid out so a queue's index is one
//! contiguous range (queue id then offset, big-endian) and scans come back
//! in offset order. sled's own periodic flush is turned off: durability
//! points are the broker's calls to `sync`.

use std::path::Path;

use crate::records::*;
use crate::{Store, StoreError, StoreResult, FORMAT_VERSION};

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
    messages: sled::Tree,
    entries: sled::Tree,
    delivered: sled::Tree,
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

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialise")
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl SledStore {
    /// Opens (or creates) a store in `dir`.
    pub fn open(dir: &Path) -> StoreResult<SledStore> {
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
        Ok(SledStore {
            vhosts: db.open_tree("vhosts")?,
            exchanges: db.open_tree("exchanges")?,
            queues: db.open_tree("queues")?,
            bindings: db.open_tree("bindings")?,
            messages: db.open_tree("messages")?,
            entries: db.open_tree("entries")?,
            delivered: db.open_tree("delivered")?,
            db,
        })
    }

    /// Whether `dir` already holds a store.
    pub fn exists_in(dir: &Path) -> bool {
        dir.join("sled").exists()
    }

    /// Ids of stored message bodies (for start-up garbage collection).
    pub fn message_ids(&self) -> StoreResult<Vec<u64>> {
        self.messages
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                let bytes: [u8; 8] = k
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("message key".into()))?;
                Ok(u64::from_be_bytes(bytes))
            })
            .collect()
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
        let keys: Vec<sled::IVec> = self
            .entries
            .scan_prefix(id.to_be_bytes())
            .keys()
            .collect::<Result<_, _>>()?;
        let mut batch = sled::Batch::default();
        keys.into_iter().for_each(|k| batch.remove(k));
        self.entries.apply_batch(batch)?;
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

    fn save_message(&self, id: u64, bytes: &[u8]) -> StoreResult<()> {
        self.messages.insert(id.to_be_bytes(), bytes)?;
        Ok(())
    }

    fn delete_message(&self, id: u64) -> StoreResult<()> {
        self.messages.remove(id.to_be_bytes())?;
        Ok(())
    }

    fn message(&self, id: u64) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.messages.get(id.to_be_bytes())?.map(|v| v.to_vec()))
    }

    fn save_entry(&self, queue: u64, offset: u64, entry: &EntryRecord) -> StoreResult<()> {
        self.entries.insert(entry_key(queue, offset), &entry.to_bytes())?;
        Ok(())
    }

    fn delete_entry(&self, queue: u64, offset: u64) -> StoreResult<()> {
        self.entries.remove(entry_key(queue, offset))?;
        Ok(())
    }

    fn entries(&self, queue: u64) -> StoreResult<Vec<(u64, EntryRecord)>> {
        self.entries
            .scan_prefix(queue.to_be_bytes())
            .map(|item| {
                let (key, value) = item?;
                let offset = u64::from_be_bytes(
                    key.get(8..16)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| StoreError::Corrupt("entry key".into()))?,
                );
                let entry = EntryRecord::from_bytes(&value).ok_or_else(|| StoreError::Corrupt("entry".into()))?;
                Ok((offset, entry))
            })
            .collect()
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
        self.db.flush()?;
        Ok(())
    }

    fn size_on_disk(&self) -> StoreResult<u64> {
        Ok(self.db.size_on_disk()?)
    }
}
