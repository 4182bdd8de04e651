//! Durable queues: writing persistent messages to the store, removing them
//! once they are acked or dead, and recovering them at start.
//!
//! Only persistent messages (delivery-mode 2) in durable queues are stored,
//! as in RabbitMQ. The body is stored once per message; each queue adds an
//! index entry (offset → message id), and the last entry to go deletes the
//! body.

use std::sync::Arc;

use warren_store::EntryRecord;

use super::{Queue, QueueEntry};
use crate::message::Message;

impl Queue {
    /// Whether this queue stores this message.
    fn stores(&self, message: &Message) -> bool {
        self.persistence.is_some() && message.is_persistent()
    }

    /// Stores a new message's entry (and its body, the first time).
    /// Ok(true) when something was written; Err when the store refused.
    pub(super) fn persist(&self, message: &Arc<Message>, offset: u64) -> Result<bool, ()> {
        let Some(p) = &self.persistence else {
            return Ok(false);
        };
        if !message.is_persistent() {
            return Ok(false);
        }
        if p.durability.is_failed() {
            return Err(());
        }
        let store = p.durability.store();
        let result = (|| {
            let id = match message.store_id.get() {
                Some(id) => *id,
                None => {
                    let id = store.next_id()?;
                    store.save_message(id, &message.encode_for_store())?;
                    let _ = message.store_id.set(id);
                    id
                }
            };
            let entry = EntryRecord {
                message: id,
                delivery_count: 0,
            };
            store.save_entry(p.id, offset, &entry)
        })();
        match result {
            Ok(()) => {
                message.add_store_ref();
                p.durability.wrote();
                Ok(true)
            }
            Err(e) => {
                tracing::error!(queue = %self.name, "storing a message failed: {e}");
                Err(())
            }
        }
    }

    /// Removes a message's entry for good (acked, dead, purged), and its
    /// body if no other queue still holds it.
    pub(super) fn forget(&self, entry: &QueueEntry) {
        let (Some(p), Some(&id)) = (&self.persistence, entry.message.store_id.get()) else {
            return;
        };
        if !self.stores(&entry.message) {
            return;
        }
        let store = p.durability.store();
        let mut result = store.delete_entry(p.id, entry.offset);
        if entry.message.release_store_ref() {
            result = result.and_then(|()| store.delete_message(id));
        }
        if let Err(e) = result {
            tracing::error!(queue = %self.name, "removing a message from the store failed: {e}");
        }
        p.durability.wrote();
    }

    /// Drops bodies whose last reference was a ready message of this queue
    /// (the index itself goes with the queue's definition).
    pub(super) fn drop_from_store(&self, entries: &[QueueEntry]) {
        let Some(p) = &self.persistence else {
            return;
        };
        let store = p.durability.store();
        if let Err(e) = store.delete_queue(&self.vhost_name, &self.name, p.id) {
            tracing::error!(queue = %self.name, "deleting the queue from the store failed: {e}");
        }
        for entry in entries {
            if let Some(&id) = entry.message.store_id.get() {
                if self.stores(&entry.message) && entry.message.release_store_ref() {
                    let _ = store.delete_message(id);
                }
            }
        }
        p.durability.forget_queue(p.id);
        p.durability.wrote();
    }

    /// Remembers that a stored message was handed out, so it comes back
    /// marked redelivered after a crash.
    pub(super) fn mark_delivered(&self, entry: &QueueEntry) {
        if let Some(p) = &self.persistence {
            if self.stores(&entry.message) {
                p.durability.mark_delivered(p.id, entry.offset);
            }
        }
    }

    /// Keeps a quorum queue's delivery count across restarts.
    pub(super) fn persist_delivery_count(&self, entry: &QueueEntry) {
        let (Some(p), Some(&id)) = (&self.persistence, entry.message.store_id.get()) else {
            return;
        };
        let record = EntryRecord {
            message: id,
            delivery_count: entry.delivery_count,
        };
        if p.durability.store().save_entry(p.id, entry.offset, &record).is_ok() {
            p.durability.wrote();
        }
    }

    /// Loads messages recovered from the store at start, in offset order:
    /// (offset, message, delivered before?, delivery count).
    pub fn restore(&self, recovered: Vec<(u64, Arc<Message>, bool, u32)>) {
        let now = std::time::Instant::now();
        let mut state = self.state.lock();
        for (offset, message, redelivered, delivery_count) in recovered {
            state.next_offset = state.next_offset.max(offset + 1);
            let priority = state.ready.level_of(message.header.properties().priority.unwrap_or(0));
            let expires_at = self.expiry_for(&message, now);
            message.add_store_ref();
            state.ready.push_back(QueueEntry {
                message,
                offset,
                redelivered,
                delivery_count,
                priority,
                expires_at,
            });
        }
        let has_ttl = state.ready.next_expiry().is_some();
        drop(state);
        if has_ttl {
            self.timer_wake.notify_one();
        }
    }

    pub fn store_id(&self) -> Option<u64> {
        self.persistence.as_ref().map(|p| p.id)
    }
}
