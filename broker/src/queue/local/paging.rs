//! Queues longer than memory: a queue keeps a window of its oldest ready
//! messages in memory and leaves the rest on disk: a durable queue always,
//! a non-durable one while memory is high (see `persistence.rs`, and
//! `relieve_memory` for what it held before); a non-durable queue's part
//! on disk never outlives the process.
//!
//! Once the window is full, a new message is written to the store (its
//! body and its index entry; a transient one too, flagged so it does not
//! survive a restart) and not kept in memory: it joins the *paged tail*,
//! the run of offsets from `from` upwards that only the store's index
//! holds. As consumers drain the window it is refilled from the tail in
//! offset order, a batch at a time. Everything in memory is older than
//! everything in the tail, so the queue's order is the same as if it were
//! all in memory; requeued messages go back into the window.
//!
//! The tail is read ahead of need, off the queue's lock and off the async
//! runtime's threads: once the window is down to half, a batch is read on
//! a blocking thread and added under the lock when it lands. Dispatch waits
//! for it if consumers drain the window first; basic.get, which must not
//! answer "empty" while messages are on disk, reads the batch itself, still
//! outside the lock (telling the runtime its thread blocks). Limits and
//! TTLs that reach into the tail act when its batch lands.
//!
//! Memory per queue is therefore bounded by the window ([`WINDOW_MESSAGES`]
//! messages or [`WINDOW_BYTES`] of bodies, whichever comes first) plus what
//! consumers hold unacknowledged (bounded by their prefetch). The store
//! keeps about 80-100 bytes per stored message in memory (its location and
//! reference count; store/README.md has the measurement). Priority queues
//! (`x-max-priority`) keep everything in memory, and so does a broker
//! without a data directory.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use warren_store::{MessageId, Offset, QueueId, QueueSummary};

use super::{Dead, LocalQueue, QueueEntry, QueueState, StoreLink};
use crate::blocking;
use crate::queue::Queue;

/// Ready messages a paging queue keeps in memory before new ones stay on disk.
pub(super) const WINDOW_MESSAGES: usize = 4096;
/// Body bytes a paging queue keeps in memory before new ones stay on disk.
pub(super) const WINDOW_BYTES: usize = 8 * 1024 * 1024;
/// The most read back from disk in one go.
const PAGE_IN_BATCH: usize = 512;

/// The ready messages of a durable queue that are on disk only.
#[derive(Debug, Default)]
pub(super) struct PagedTail {
    /// The lowest offset in the tail: the store's index holds the tail as
    /// every entry of this queue at or above it.
    pub from: Offset,
    pub count: u64,
    pub bytes: u64,
    /// Messages recovered at start below this offset had been delivered
    /// before the restart; they come back redelivered.
    pub redelivered_below: Offset,
    /// A read-ahead of the batch at `from` is in flight.
    pub reading: bool,
}

impl PagedTail {
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A message from the back of the window (at `offset`, below the
    /// tail's) joins the tail at its head.
    pub(super) fn prepend(&mut self, offset: Offset, bytes: usize) {
        self.from = offset;
        self.count += 1;
        self.bytes += bytes as u64;
    }

    /// A new message (at `offset`) stays on disk.
    pub(super) fn push(&mut self, offset: Offset, bytes: usize) {
        if self.count == 0 {
            self.from = offset;
        }
        self.count += 1;
        self.bytes += bytes as u64;
    }
}

/// Milliseconds since the Unix epoch, for expiries kept in the store.
pub(super) fn unix_ms(at: Instant, now: Instant) -> u64 {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (wall + at.saturating_duration_since(now)).as_millis() as u64
}

/// The inverse of [`unix_ms`]: 0 means no expiry.
fn instant_from_unix_ms(ms: u64, now: Instant) -> Option<Instant> {
    if ms == 0 {
        return None;
    }
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let left = Duration::from_millis(ms).saturating_sub(wall);
    Some(now.checked_add(left).unwrap_or(now))
}

impl LocalQueue {
    /// Whether only a window of the ready messages stays in memory: a
    /// queue that may page and has its id in the store.
    pub(super) fn pages(&self) -> bool {
        self.may_page && self.stored_as().is_some()
    }

    /// Whether a new message should stay on disk: the tail is not empty
    /// (order), or the window is full and the queue pages now (a
    /// non-durable one only under memory pressure). A non-durable queue
    /// whose window is half full asks for its store id first, pressure or
    /// not (see `persistence.rs`).
    pub(super) fn should_page_out(&self, state: &QueueState) -> bool {
        let Some(p) = self.persistence.as_ref().filter(|_| self.may_page) else {
            return false;
        };
        if p.id().is_none() {
            // Ready ahead of need, pressure or not: opening the store takes
            // memory at once, better before memory is high than at it.
            let half = state.ready.len() >= WINDOW_MESSAGES / 2 || state.ready.bytes() >= WINDOW_BYTES / 2;
            if half {
                self.request_store_id();
            }
            return false;
        }
        // A tail once started stays (order); a new one needs the queue's
        // rule to allow it now.
        let full = state.ready.len() >= WINDOW_MESSAGES || state.ready.bytes() >= WINDOW_BYTES;
        !state.paged.is_empty() || (full && p.pages_now())
    }

    /// Memory is high: moves the ready messages beyond the window, newest
    /// first, to the head of the tail on disk, a batch at a time. A
    /// non-durable queue that filled before memory rose, with nobody to
    /// drain it, would otherwise hold memory (and the alarm) up for good.
    /// Blocks (the store may open, the disk may be behind): called on the
    /// alarm monitor's relief thread.
    pub(super) fn relieve_memory(&self, queue: &Queue) {
        let Some(p) = &self.persistence else {
            return;
        };
        if !self.may_page || p.is_durable() {
            return;
        }
        if p.id().is_none() {
            if !p.should_request_id() {
                return; // being asked for already; next time
            }
            p.allocate_id(&self.name);
        }
        loop {
            p.durability.throttle();
            if self.page_out_excess(queue, PAGE_IN_BATCH) == 0 {
                return;
            }
        }
    }

    /// Moves up to `limit` of the newest ready messages beyond the window
    /// to the tail (writing those not stored yet); returns how many.
    fn page_out_excess(&self, queue: &Queue, limit: usize) -> usize {
        if self.stored_as().is_none() {
            return 0;
        }
        let now = Instant::now();
        let mut state = self.state.lock();
        let mut moved = 0;
        while moved < limit && (state.ready.len() > WINDOW_MESSAGES || state.ready.bytes() > WINDOW_BYTES) {
            let Some(entry) = state.ready.pop_newest() else {
                break;
            };
            if !entry.in_store
                && self
                    .persist(queue, &entry.message, entry.offset, entry.expires_at, now)
                    .is_err()
            {
                state.ready.push_back(entry);
                break;
            }
            state.paged.prepend(entry.offset, entry.message.body_size());
            moved += 1;
        }
        moved
    }

    /// Gets a non-durable queue its store id, once, on a blocking thread.
    fn request_store_id(&self) {
        let Some(p) = &self.persistence else {
            return;
        };
        if !p.should_request_id() {
            return;
        }
        let me = self.me.clone();
        blocking::spawn(move || {
            if let Some(queue) = me.upgrade() {
                let backend = queue.backend();
                if let Some(p) = &backend.persistence {
                    p.allocate_id(&backend.name);
                }
            }
        });
    }

    /// Starts reading the tail's next batch once the window is down to
    /// half, unless a read is in flight already.
    pub(super) fn refill_if_low(&self, state: &mut QueueState) {
        if state.paged.is_empty()
            || state.paged.reading
            || state.ready.len() >= WINDOW_MESSAGES / 2
            || state.ready.bytes() >= WINDOW_BYTES / 2
        {
            return;
        }
        state.paged.reading = true;
        let from = state.paged.from;
        let me = self.me.clone();
        blocking::spawn(move || {
            if let Some(queue) = me.upgrade() {
                queue.backend().page_in(from, PAGE_IN_BATCH, WINDOW_BYTES, true);
            }
        });
    }

    /// The window ran dry while messages are on disk: reads the batch at
    /// `from` now (the caller must not hold the lock).
    pub(super) fn page_in_now(&self, from: Offset) {
        blocking::run(|| self.page_in(from, PAGE_IN_BATCH, WINDOW_BYTES, false));
    }

    /// Reads up to `limit` messages (and about `max_bytes`) of the tail
    /// from offset `from`, without the lock, then adds them to the window
    /// under it, if the tail still starts there (a purge, or another read,
    /// may have moved it). `read_ahead` says this is the read in flight that
    /// `reading` stands for. Then delivers what it can, and lets limits and
    /// TTLs act on what came in.
    fn page_in(&self, from: Offset, limit: usize, max_bytes: usize, read_ahead: bool) {
        let Some((p, queue_id)) = self.stored_as() else {
            return;
        };
        let batch = self.read_tail(p, queue_id, from, limit, max_bytes);
        let queue: Option<Arc<Queue>> = self.me.upgrade().map(|typed| typed as Arc<Queue>);
        let mut state = self.state.lock();
        if read_ahead {
            state.paged.reading = false;
        }
        if self.is_deleted() || state.paged.is_empty() || state.paged.from != from {
            return;
        }
        self.add_to_window(&mut state, batch);
        let Some(queue) = queue else {
            return;
        };
        let now = Instant::now();
        let mut dead = Dead::new();
        self.dispatch(&queue, &mut state, now, &mut dead);
        self.enforce_length_limit(&queue.args(), &mut state, &mut dead);
        self.expire_heads(&mut state, now, &mut dead);
        let has_ttl = state.ready.next_expiry().is_some();
        self.unlock_and_dead_letter(&queue, state, dead);
        if has_ttl {
            self.ensure_timer();
            self.timer_wake.notify_one();
        }
    }

    /// Reads a batch of the tail from the store: index entries, and the
    /// message of each (an error where it cannot be read).
    fn read_tail(
        &self,
        p: &super::Persistence,
        queue_id: QueueId,
        from: Offset,
        limit: usize,
        max_bytes: usize,
    ) -> ReadBatch {
        match p.read_back(queue_id, from, limit, max_bytes, StoreLink::Held) {
            Ok(read) => ReadBatch::Read(read),
            Err(e) => {
                tracing::error!(queue = %self.name, "reading messages back from the store failed: {e}");
                ReadBatch::Failed
            }
        }
    }

    /// Adds a batch read from the tail to the window, oldest first. An
    /// entry whose body cannot be read is dropped from the index, with a
    /// log line.
    fn add_to_window(&self, state: &mut QueueState, batch: ReadBatch) {
        let read = match batch {
            ReadBatch::Failed => return,
            ReadBatch::Read(read) if read.is_empty() => {
                tracing::error!(queue = %self.name, lost = state.paged.count, "the store's index ends before the queue's count; recounted");
                state.paged = PagedTail {
                    redelivered_below: state.paged.redelivered_below,
                    ..PagedTail::default()
                };
                return;
            }
            ReadBatch::Read(read) => read,
        };
        let now = Instant::now();
        for (offset, record, message) in read {
            let tail = &mut state.paged;
            tail.from = offset.next();
            tail.count = tail.count.saturating_sub(1);
            tail.bytes = tail.bytes.saturating_sub(record.body_size);
            let message = match message {
                Ok(message) => message,
                Err(why) => {
                    self.drop_unreadable(offset, record.message, why);
                    continue;
                }
            };
            let redelivered = offset < tail.redelivered_below;
            let priority = state.ready.level_of(message.header.properties().priority.unwrap_or(0));
            state.ready.push_back(QueueEntry {
                message,
                offset,
                redelivered,
                delivery_count: record.delivery_count,
                priority,
                expires_at: instant_from_unix_ms(record.expires_at_ms, now),
                in_store: true,
            });
        }
        if state.paged.is_empty() {
            state.paged.bytes = 0;
        }
    }

    fn drop_unreadable(&self, offset: Offset, message: MessageId, why: String) {
        tracing::warn!(queue = %self.name, %offset, "stored message cannot be read ({why}); dropped");
        if let Some((p, queue_id)) = self.stored_as() {
            let _ = p.durability.store().remove_entry(queue_id, offset, message);
            p.durability.wrote();
        }
    }

    /// Recovery at start: the queue's whole index becomes the tail, and the
    /// window is filled from it (a queue that does not page loads it all).
    pub(super) fn restore_from_store(&self, summary: QueueSummary, delivered_below: Offset) {
        let from = summary.first_offset;
        {
            let mut state = self.state.lock();
            state.next_offset = summary.next_offset;
            state.paged = PagedTail {
                from,
                count: summary.count,
                bytes: summary.bytes,
                redelivered_below: delivered_below,
                reading: false,
            };
        }
        if summary.count == 0 {
            return;
        }
        if self.pages() {
            self.page_in(from, WINDOW_MESSAGES, WINDOW_BYTES, false);
        } else {
            self.page_in(from, usize::MAX, usize::MAX, false);
        }
    }
}

/// A batch read from a queue's tail: (offset, index entry, message).
enum ReadBatch {
    Read(Vec<super::persistence::ReadEntry>),
    /// The store could not be read; the tail stays as it is.
    Failed,
}
