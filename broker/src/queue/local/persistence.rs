//! Queues and the store: writing a queue's index entries (and a message's
//! body, the first time any queue stores it), removing them once messages
//! are acked or dead, and remembering deliveries.
//!
//! Persistent messages (delivery-mode 2) in durable queues are stored, as in
//! RabbitMQ; so is any message a queue pages out (`paging.rs`), durable or
//! not, flagged transient unless it is persistent in a durable queue (a
//! transient entry never survives a restart). The body is stored once per
//! message and reference-counted by the store: each index entry holds it,
//! and so does the in-memory message (`message::StoredBody`).
//!
//! A durable queue has its store id from its declaration, and pages past
//! its window always. A non-durable queue pages only under memory pressure
//! (`alarm::MemoryPressure`, from `--memory-paging-ratio`): a full window
//! with no pressure just grows, as in RabbitMQ 3.x, because paging costs
//! its throughput more than half (scenario 1 of bench/run.py went from
//! 694k to 287k msg/s when every queue paged past 4,096 messages). It asks
//! for its store id when its window is first half full, pressure or not,
//! on a blocking thread (the first use of the store may open it, which
//! takes memory at once: better before memory is high), and pages only
//! once it has it.

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::time::Instant;

use warren_store::{EntryRecord, MessageId, Offset, QueueId};

use super::paging::unix_ms;
use super::{LocalQueue, QueueEntry};
use crate::alarm::MemoryPressure;
use crate::durability::Durability;
use crate::message::Message;
use crate::queue::Queue;

/// A queue's link to the store.
pub(crate) struct Persistence {
    pub durability: Arc<Durability>,
    /// The queue's id in the store: a durable queue's from the start, a
    /// non-durable queue's once it has asked for one.
    id: OnceLock<QueueId>,
    /// A non-durable queue has asked for its id.
    id_requested: AtomicBool,
    keeps: Keeps,
}

/// What a queue keeps in the store.
enum Keeps {
    /// A durable queue: its persistent messages, which survive a restart,
    /// and what it pages out past its window, always.
    Durable,
    /// A non-durable queue: only what it pages out, which it starts doing
    /// while memory is high; none of it survives a restart.
    PagedOnly(MemoryPressure),
}

impl Persistence {
    /// A durable queue's, with the id its definition is stored under.
    pub(crate) fn durable(durability: Arc<Durability>, id: QueueId) -> Persistence {
        Persistence {
            durability,
            id: OnceLock::from(id),
            id_requested: AtomicBool::new(true),
            keeps: Keeps::Durable,
        }
    }

    /// A non-durable queue's: the store only holds what it pages out,
    /// which it starts doing under memory `pressure`.
    pub(crate) fn paging_only(durability: Arc<Durability>, pressure: MemoryPressure) -> Persistence {
        Persistence {
            durability,
            id: OnceLock::new(),
            id_requested: AtomicBool::new(false),
            keeps: Keeps::PagedOnly(pressure),
        }
    }

    /// Whether a full window should start a paged tail now: always for a
    /// durable queue, under memory pressure for a non-durable one.
    pub(super) fn pages_now(&self) -> bool {
        match &self.keeps {
            Keeps::Durable => true,
            Keeps::PagedOnly(pressure) => pressure.is_high(),
        }
    }

    pub(crate) fn is_durable(&self) -> bool {
        matches!(self.keeps, Keeps::Durable)
    }

    /// The queue's id in the store, if it has one yet.
    pub(crate) fn id(&self) -> Option<QueueId> {
        self.id.get().copied()
    }

    /// True the first time it is asked while the queue has no id: the
    /// caller then gets one (`allocate_id`, off the lock and the runtime).
    pub(super) fn should_request_id(&self) -> bool {
        !self.id_requested.swap(true, Ordering::AcqRel)
    }

    /// Takes an id from the store for a non-durable queue (which may open
    /// the store: a blocking call). Logged and left without on failure: the
    /// queue then keeps its messages in memory.
    pub(super) fn allocate_id(&self, queue_name: &str) {
        if self.id.get().is_some() {
            return;
        }
        match self.durability.store().next_id() {
            Ok(id) => {
                let _ = self.id.set(id);
            }
            Err(e) => tracing::error!(queue = %queue_name, "cannot page the queue to disk: {e}"),
        }
    }

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

/// An entry read back from a queue's index: its offset, the entry, and
/// its message, or why the message could not be read.
pub(crate) type ReadEntry = (Offset, EntryRecord, Result<Arc<Message>, String>);

impl Persistence {
    /// Deletes `queue`'s definition and whole index from the store, once
    /// it has an id there.
    pub(crate) fn drop_queue(&self, queue: &Queue) {
        let Some(queue_id) = self.id() else {
            return;
        };
        // A non-durable queue has no definition there, only its index.
        let deleted = if self.is_durable() {
            self.durability
                .store()
                .delete_queue(&queue.vhost_name, &queue.name, queue_id)
        } else {
            self.durability.store().delete_index(queue_id)
        };
        if let Err(e) = deleted {
            tracing::error!(queue = %queue.name, "deleting the queue from the store failed: {e}");
        }
        self.durability.forget_queue(queue_id);
        self.durability.wrote();
    }

    /// Reads back up to `limit` entries of the queue's index from `from`
    /// on, each with its message, stopping once about `max_bytes` of
    /// bodies are read; `link` says whether each message keeps its stored
    /// body referenced. Err when the index could not be read. File I/O:
    /// call it off the runtime's worker threads and any lock.
    pub(crate) fn read_back(
        &self,
        queue_id: QueueId,
        from: Offset,
        limit: usize,
        max_bytes: usize,
        link: StoreLink,
    ) -> warren_store::StoreResult<Vec<ReadEntry>> {
        let read = self.read_back_where(queue_id, from, Select::All, limit, max_bytes, link)?;
        Ok(read.entries)
    }

    /// [`Self::read_back`] of the entries `select` takes: those of one
    /// priority level skip the others' bodies. A level whose messages are
    /// sparse is looked for through [`SCAN_LIMIT`] index entries at most,
    /// so one read stays short; `resume_at` says where the next one starts.
    pub(crate) fn read_back_where(
        &self,
        queue_id: QueueId,
        from: Offset,
        select: Select,
        limit: usize,
        max_bytes: usize,
        link: StoreLink,
    ) -> warren_store::StoreResult<ReadBack> {
        let store = self.durability.shared_store();
        let mut records = Vec::new();
        let (mut at, mut scanned, mut bytes) = (from, 0, 0);
        let mut ended = loop {
            let want = limit.min(SCAN_LIMIT);
            let chunk = store.entries(queue_id, at, want)?;
            // Fewer than asked for: the index ends here.
            let last = chunk.len() < want;
            let mut full = false;
            for (offset, record) in chunk {
                scanned += 1;
                at = offset.next();
                if select.may_take(record.priority) {
                    bytes += record.body_size as usize;
                    records.push((offset, record));
                    if records.len() >= limit || bytes >= max_bytes {
                        full = true;
                        break;
                    }
                }
            }
            if full {
                break false;
            }
            if last {
                break true;
            }
            if select != Select::All && scanned >= SCAN_LIMIT {
                break false;
            }
        };
        let ids: Vec<MessageId> = records.iter().map(|(_, record)| record.message).collect();
        // A batch that fails (a damaged record) is read again one by one,
        // so that only the damaged message is lost to its reader.
        let bodies: Vec<warren_store::StoreResult<Option<Bytes>>> = match store.messages(&ids) {
            Ok(bodies) => bodies.into_iter().map(Ok).collect(),
            Err(_) => ids.iter().map(|id| Ok(store.message(*id)?.map(Bytes::from))).collect(),
        };
        let mut entries = Vec::with_capacity(records.len());
        let mut footprint = 0;
        for ((offset, record), body) in records.into_iter().zip(bodies) {
            if footprint >= max_bytes {
                // Headers took more memory than their bodies said: the
                // rest waits for the next read.
                (at, ended) = (offset, false);
                break;
            }
            let message = match body {
                Ok(Some(stored)) => match link {
                    StoreLink::Held => Message::from_stored(store, record.message, own(&stored)),
                    StoreLink::Copy => Message::decode(own(&stored)),
                    StoreLink::Slice => Message::decode(stored),
                }
                .ok_or_else(|| "not a message, or gone".to_string()),
                Ok(None) => Err("missing".to_string()),
                Err(e) => Err(e.to_string()),
            };
            footprint += message.as_ref().map_or(0, |m| m.footprint());
            entries.push((offset, record, message));
        }
        Ok(ReadBack {
            entries,
            resume_at: at,
            ended,
        })
    }
}

/// The most index entries one read back looks through.
const SCAN_LIMIT: usize = 65_536;

/// Which of a queue's index entries a read back takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Select {
    All,
    /// The messages of one priority level of a queue whose highest level
    /// is `top` (a priority above it counts as `top`).
    Level {
        level: u8,
        top: u8,
    },
}

impl Select {
    /// Whether an entry of this priority may be taken (one written before
    /// entries kept their priority is read, and sorted by its message).
    fn may_take(self, priority: Option<u8>) -> bool {
        match (self, priority) {
            (Select::All, _) | (_, None) => true,
            (Select::Level { level, top }, Some(p)) => p.min(top) == level,
        }
    }
}

/// What one read back found.
pub(crate) struct ReadBack {
    pub entries: Vec<ReadEntry>,
    /// One past the last index entry looked at: where the next read of the
    /// same selection starts.
    pub resume_at: Offset,
    /// The index has nothing at or after `resume_at`.
    pub ended: bool,
}

/// What a message read back from the store keeps of its stored body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreLink {
    /// A reference: the body stays stored while the message lives (it
    /// goes back into a queue, and may be requeued or persisted again).
    Held,
    /// Nothing: the message is a copy on its way out (a stream's
    /// delivery), and the store is spared a reference taken and dropped
    /// for every message.
    Copy,
    /// Nothing, and its bytes are not even copied: they are a slice of
    /// the read, whose whole buffer stays in memory while any message of
    /// it does. For a stream consumer that takes a read's messages in
    /// order (no filter), so the buffers go as their messages are acked.
    Slice,
}

/// A stored message's bytes in memory of their own: a slice of a larger
/// read would keep the whole read alive as long as the message lives.
fn own(stored: &Bytes) -> Bytes {
    Bytes::copy_from_slice(stored)
}

impl LocalQueue {
    /// The queue's link to the store and its id there, once it has one.
    pub(super) fn stored_as(&self) -> Option<(&Persistence, QueueId)> {
        let p = self.persistence.as_ref()?;
        Some((p, p.id()?))
    }

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
        let Some((p, queue_id)) = self.stored_as() else {
            return Err(());
        };
        let id = p.store_body(message)?;
        let result = p.durability.store().add_entry(
            queue_id,
            offset,
            &entry_record(id, message, 0, expires_at, now, p.is_durable()),
        );
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
        let (Some((p, queue_id)), Some(id), true) = (self.stored_as(), entry.message.store_id(), entry.in_store) else {
            return;
        };
        if let Err(e) = p.durability.store().remove_entry(queue_id, entry.offset, id) {
            tracing::error!(queue = %queue.name, "removing a message from the store failed: {e}");
        }
        p.durability.wrote();
    }

    /// Removes the entries of offsets `from..to` (a purged tail) from the
    /// store; its files are cleared at the next sync, on the flusher.
    pub(super) fn forget_paged(&self, queue: &Queue, from: Offset, to: Offset) {
        let Some((p, queue_id)) = self.stored_as() else {
            return;
        };
        if let Err(e) = p.durability.store().remove_entries(queue_id, from, to) {
            tracing::error!(queue = %queue.name, "purging the store failed: {e}");
        }
        p.durability.wrote();
    }

    /// Remembers that a stored message was handed out, so it comes back
    /// marked redelivered after a crash.
    pub(super) fn mark_delivered(&self, entry: &QueueEntry) {
        // Only a durable queue's entries outlive a restart.
        if let (Some((p, queue_id)), true) = (self.stored_as(), entry.in_store) {
            if p.is_durable() {
                p.durability.mark_delivered(queue_id, entry.offset);
            }
        }
    }

    /// Keeps a quorum queue's delivery count across restarts.
    pub(super) fn persist_delivery_count(&self, entry: &QueueEntry) {
        let (Some((p, queue_id)), Some(id), true) = (self.stored_as(), entry.message.store_id(), entry.in_store) else {
            return;
        };
        let record = entry_record(
            id,
            &entry.message,
            entry.delivery_count,
            entry.expires_at,
            Instant::now(),
            p.is_durable(),
        );
        if p.durability
            .store()
            .update_entry(queue_id, entry.offset, &record)
            .is_ok()
        {
            p.durability.wrote();
        }
    }
}

/// The index entry of a message stored as `id` in a queue (`durable` or
/// not: only a persistent message in a durable queue outlives a restart).
fn entry_record(
    id: MessageId,
    message: &Message,
    delivery_count: u32,
    expires_at: Option<Instant>,
    now: Instant,
    durable: bool,
) -> EntryRecord {
    EntryRecord {
        message: id,
        delivery_count,
        body_size: message.body_size() as u64,
        expires_at_ms: expires_at.map_or(0, |at| unix_ms(at, now)),
        transient: !(durable && message.is_persistent()),
        priority: Some(message.header.properties().priority.unwrap_or(0)),
    }
}
