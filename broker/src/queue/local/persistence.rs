//! Durable queues and the store: writing a queue's index entries (and a
//! message's body, the first time any queue stores it), removing them once
//! messages are acked or dead, and remembering deliveries.
//!
//! Persistent messages (delivery-mode 2) in durable queues are stored, as in
//! RabbitMQ; so is any message a durable queue pages out (`paging.rs`),
//! flagged transient if it is. The body is stored once per message and
//! reference-counted by the store: each index entry holds it, and so does
//! the in-memory message (`message::StoredBody`).

use std::sync::Arc;
use tokio::time::Instant;

use warren_store::{EntryRecord, MessageId, Offset, QueueId};

use super::paging::unix_ms;
use super::{LocalQueue, QueueEntry};
use crate::durability::Durability;
use crate::message::Message;
use crate::queue::Queue;

/// A durable queue's link to the store.
pub(crate) struct Persistence {
    pub durability: Arc<Durability>,
    /// The queue's id in the store.
    pub id: QueueId,
}

impl Persistence {
    /// Stores a message's body before the queue's lock is taken: waits
    /// first if the disk has fallen far behind (never under the lock).
    pub(super) fn store_body_unlocked(&self, message: &Message) -> Result<MessageId, ()> {
        self.durability.throttle();
        self.store_body(message)
    }

    /// Stores a message's body if no queue has yet (appended in memory;
    /// the flusher writes it). Err when the store is failing.
    fn store_body(&self, message: &Message) -> Result<MessageId, ()> {
        if self.durability.is_failed() {
            return Err(());
        }
        message.store_body(self.durability.shared_store()).map_err(|e| {
            tracing::error!("storing a message body failed: {e}");
        })
    }
}

impl LocalQueue {
    /// Writes a message's index entry at `offset` (and its body if it has
    /// none yet: a transient message paged out; an append in memory, no
    /// waiting). Err when the store is failing or refused the write.
    pub(super) fn persist(
        &self,
        queue: &Queue,
        message: &Arc<Message>,
        offset: Offset,
        expires_at: Option<Instant>,
        now: Instant,
    ) -> Result<(), ()> {
        let Some(p) = &self.persistence else {
            return Err(());
        };
        let id = p.store_body(message)?;
        let result = p
            .durability
            .store()
            .add_entry(p.id, offset, &entry_record(id, message, 0, expires_at, now));
        match result {
            Ok(()) => {
                p.durability.wrote();
                Ok(())
            }
            Err(e) => {
                tracing::error!(queue = %queue.name, "storing a message failed: {e}");
                Err(())
            }
        }
    }

    /// Removes a message's entry for good (acked, dead, purged); the store
    /// frees its body once nothing else holds it.
    pub(super) fn forget(&self, queue: &Queue, entry: &QueueEntry) {
        let (Some(p), Some(id), true) = (&self.persistence, entry.message.store_id(), entry.in_store) else {
            return;
        };
        if let Err(e) = p.durability.store().remove_entry(p.id, entry.offset, id) {
            tracing::error!(queue = %queue.name, "removing a message from the store failed: {e}");
        }
        p.durability.wrote();
    }

    /// Removes the entries of offsets `from..to` (a purged tail) from the
    /// store; its files are cleared at the next sync, on the flusher.
    pub(super) fn forget_paged(&self, queue: &Queue, from: Offset, to: Offset) {
        let Some(p) = &self.persistence else {
            return;
        };
        if let Err(e) = p.durability.store().remove_entries(p.id, from, to) {
            tracing::error!(queue = %queue.name, "purging the store failed: {e}");
        }
        p.durability.wrote();
    }

    /// Deletes the queue's definition and whole index from the store.
    pub(super) fn drop_from_store(&self, queue: &Queue) {
        let Some(p) = &self.persistence else {
            return;
        };
        if let Err(e) = p.durability.store().delete_queue(&queue.vhost_name, &queue.name, p.id) {
            tracing::error!(queue = %queue.name, "deleting the queue from the store failed: {e}");
        }
        p.durability.forget_queue(p.id);
        p.durability.wrote();
    }

    /// Remembers that a stored message was handed out, so it comes back
    /// marked redelivered after a crash.
    pub(super) fn mark_delivered(&self, entry: &QueueEntry) {
        if let Some(p) = &self.persistence {
            if entry.in_store {
                p.durability.mark_delivered(p.id, entry.offset);
            }
        }
    }

    /// Keeps a quorum queue's delivery count across restarts.
    pub(super) fn persist_delivery_count(&self, entry: &QueueEntry) {
        let (Some(p), Some(id), true) = (&self.persistence, entry.message.store_id(), entry.in_store) else {
            return;
        };
        let record = entry_record(
            id,
            &entry.message,
            entry.delivery_count,
            entry.expires_at,
            Instant::now(),
        );
        if p.durability.store().update_entry(p.id, entry.offset, &record).is_ok() {
            p.durability.wrote();
        }
    }
}

/// The index entry of a message stored as `id` in a queue.
fn entry_record(
    id: MessageId,
    message: &Message,
    delivery_count: u32,
    expires_at: Option<Instant>,
    now: Instant,
) -> EntryRecord {
    EntryRecord {
        message: id,
        delivery_count,
        body_size: message.body_size() as u64,
        expires_at_ms: expires_at.map_or(0, |at| unix_ms(at, now)),
        transient: !message.is_persistent(),
    }
}
