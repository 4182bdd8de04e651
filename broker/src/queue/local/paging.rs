//! Queues longer than memory: a queue keeps a window of its oldest ready
//! messages in memory and leaves the rest on disk: a durable queue always,
//! a non-durable one while memory is high (see `persistence.rs`, and
//! `relieve_memory` for what it held before); a non-durable queue's part
//! on disk never outlives the process.
//!
//! Once the window is full, a new message is written to the store (its
//! body and its index entry; a transient one too, flagged so it does not
//! survive a restart) and not kept in memory: it joins the *paged tail* of
//! its priority level (a queue without `x-max-priority` has one level), the
//! entries of that level from the tail's `from` offset upwards that only
//! the store's index holds. Each level's tail is read back in offset order,
//! a batch at a time, into that level of the window. Everything of a level
//! in memory is older than everything of it on disk, so the queue's order
//! (highest priority first, FIFO within a level) is the same as if it were
//! all in memory; requeued messages go back into the window. A priority
//! queue reads one level's tail by skipping the others' index entries (each
//! entry carries its message's priority), their bodies left unread.
//!
//! The tail that is next to deliver from (the highest level with messages)
//! is read ahead of need, off the queue's lock and off the async runtime's
//! threads: once its level is down to half the window, a batch is read on
//! a blocking thread and added under the lock when it lands. Dispatch waits
//! for it if consumers drain the window first; basic.get, which must not
//! answer "empty" while messages are on disk, reads the batch itself, still
//! outside the lock (telling the runtime its thread blocks). Limits and
//! TTLs that reach into a tail act when its batch lands.
//!
//! Memory per queue is therefore bounded by the window ([`WINDOW_MESSAGES`]
//! messages or [`WINDOW_BYTES`] of bodies, whichever comes first) plus a
//! batch per level read back, plus what consumers hold unacknowledged
//! (bounded by their prefetch). The store keeps about 4 bytes per stored
//! message in memory (`store/src/segments/locations.rs`). A broker without
//! a data directory keeps everything in memory.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use warren_store::{EntryRecord, MessageId, Offset, QueueId, QueueSummary};

use super::persistence::{ReadBack, Select};
use super::tails::{PagedTail, PagedTails};
use super::{Dead, LocalQueue, QueueEntry, QueueState, StoreLink};
use crate::blocking;
use crate::message::Message;
use crate::queue::Queue;

/// Ready messages a paging queue keeps in memory before new ones stay on disk.
pub(super) const WINDOW_MESSAGES: usize = 4096;
/// Body bytes a paging queue keeps in memory before new ones stay on disk.
pub(super) const WINDOW_BYTES: usize = 8 * 1024 * 1024;
/// The most read back from disk in one go.
const PAGE_IN_BATCH: usize = 512;

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

    /// Whether a new message of `level` should stay on disk: its level's
    /// tail is not empty (order), or the window is full and the queue pages now (a
    /// non-durable one only under memory pressure). A non-durable queue
    /// whose window is half full asks for its store id first, pressure or
    /// not (see `persistence.rs`).
    pub(super) fn should_page_out(&self, state: &QueueState, level: u8) -> bool {
        let Some(p) = self.persistence.as_ref().filter(|_| self.may_page) else {
            return false;
        };
        if p.id().is_none() {
            // Ready ahead of need, pressure or not: opening the store takes
            // memory at once, better before memory is high than at it.
            let half = state.ready.len() >= WINDOW_MESSAGES / 2 || state.ready.footprint() >= WINDOW_BYTES / 2;
            if half {
                self.request_store_id();
            }
            return false;
        }
        // A tail once started stays (order); a new one needs the queue's
        // rule to allow it now.
        let full = state.ready.len() >= WINDOW_MESSAGES || state.ready.footprint() >= WINDOW_BYTES;
        !state.paged.level(level).is_empty() || (full && p.pages_now())
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
        if !self.beyond_window() {
            // Nothing to move: the store is not opened for it (that alone
            // takes memory).
            return;
        }
        if p.id().is_none() {
            // Asked for here even if a blocking thread is asking already
            // (this waits for the store to open, where that one may still
            // be): returning would leave what the queue holds in memory
            // until the next relief, a second away, while a flood carries
            // memory to the watermark. The id set second is not used.
            p.allocate_id(&self.name);
        }
        loop {
            p.durability.throttle();
            if self.page_out_excess(queue, PAGE_IN_BATCH) == 0 {
                return;
            }
        }
    }

    /// Whether it holds ready messages beyond its window.
    fn beyond_window(&self) -> bool {
        let state = self.state.lock();
        state.ready.len() > WINDOW_MESSAGES || state.ready.footprint() > WINDOW_BYTES
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
        while moved < limit && (state.ready.len() > WINDOW_MESSAGES || state.ready.footprint() > WINDOW_BYTES) {
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
            state
                .paged
                .prepend(entry.priority, entry.offset, entry.message.body_size());
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

    /// Starts reading the next batch of the tail that is next to deliver
    /// from (that of the highest level with messages) once that level is
    /// down to half the window in memory, unless a read is in flight.
    pub(super) fn refill_if_low(&self, state: &mut QueueState) {
        let Some(level) = state.next_level() else {
            return;
        };
        let tail = state.paged.level(level);
        if tail.is_empty() || tail.reading {
            return;
        }
        let in_memory = state.ready.level_len(level);
        if in_memory > 0 && (in_memory >= WINDOW_MESSAGES / 2 || state.ready.footprint() >= WINDOW_BYTES / 2) {
            return;
        }
        state.paged.level_mut(level).reading = true;
        let from = tail.from;
        let me = self.me.clone();
        blocking::spawn(move || {
            if let Some(queue) = me.upgrade() {
                queue.backend().page_in(level, from, PAGE_IN_BATCH, WINDOW_BYTES, true);
            }
        });
    }

    /// The window ran dry while messages are on disk: reads the batch of
    /// `level`'s tail at `from` now (the caller must not hold the lock).
    pub(super) fn page_in_now(&self, level: u8, from: Offset) {
        blocking::run(|| self.page_in(level, from, PAGE_IN_BATCH, WINDOW_BYTES, false));
    }

    /// Reads up to `limit` messages (and about `max_bytes`) of `level`'s
    /// tail from offset `from`, without the lock, then adds them to the
    /// window under it, if the tail still starts there (a purge, or another
    /// read, may have moved it). `read_ahead` says this is the read in
    /// flight that `reading` stands for. Then delivers what it can, and
    /// lets limits and TTLs act on what came in.
    fn page_in(&self, level: u8, from: Offset, limit: usize, max_bytes: usize, read_ahead: bool) {
        let Some((p, queue_id)) = self.stored_as() else {
            return;
        };
        let select = self.select(level);
        let batch = self.read_tail(p, queue_id, select, from, limit, max_bytes);
        let queue: Option<Arc<Queue>> = self.me.upgrade().map(|typed| typed as Arc<Queue>);
        let mut state = self.state.lock();
        if read_ahead {
            state.paged.level_mut(level).reading = false;
        }
        let tail = state.paged.level(level);
        if self.is_deleted() || tail.is_empty() || tail.from != from {
            return;
        }
        self.add_to_window(&mut state, level, batch);
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

    /// Which index entries belong to `level`'s tail.
    fn select(&self, level: u8) -> Select {
        match self.levels {
            1 => Select::All,
            n => Select::Level {
                level,
                top: (n - 1) as u8,
            },
        }
    }

    /// Reads a batch of a tail from the store: index entries, and the
    /// message of each (an error where it cannot be read).
    fn read_tail(
        &self,
        p: &super::Persistence,
        queue_id: QueueId,
        select: Select,
        from: Offset,
        limit: usize,
        max_bytes: usize,
    ) -> ReadBatch {
        match p.read_back_where(queue_id, from, select, limit, max_bytes, StoreLink::Held) {
            Ok(read) => ReadBatch::Read(read),
            Err(e) => {
                tracing::error!(queue = %self.name, "reading messages back from the store failed: {e}");
                ReadBatch::Failed
            }
        }
    }

    /// Adds a batch read from `level`'s tail to the window, oldest first.
    /// An entry whose body cannot be read is dropped from the index, with
    /// a log line.
    fn add_to_window(&self, state: &mut QueueState, level: u8, batch: ReadBatch) {
        let read = match batch {
            ReadBatch::Failed => return,
            ReadBatch::Read(read) if read.entries.is_empty() && read.ended => {
                let lost = state.paged.level(level).count;
                tracing::error!(queue = %self.name, lost, "the store's index ends before the queue's count; recounted");
                state.paged.drop_level(level);
                return;
            }
            ReadBatch::Read(read) => read,
        };
        state.paged.level_mut(level).from = read.resume_at;
        let now = Instant::now();
        for (offset, record, message) in read.entries {
            let message = match message {
                Ok(message) => message,
                Err(why) => {
                    state.paged.took(level, record.body_size);
                    self.drop_unreadable(offset, record.message, why);
                    continue;
                }
            };
            let priority = state.ready.level_of(message.header.properties().priority.unwrap_or(0));
            if priority != level {
                // Written before entries kept their priority: its own
                // level's tail reads it.
                continue;
            }
            state.paged.took(level, record.body_size);
            let redelivered = offset < state.paged.redelivered_below;
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
    }

    fn drop_unreadable(&self, offset: Offset, message: MessageId, why: String) {
        tracing::warn!(queue = %self.name, %offset, "stored message cannot be read ({why}); dropped");
        if let Some((p, queue_id)) = self.stored_as() {
            let _ = p.durability.store().remove_entry(queue_id, offset, message);
            p.durability.wrote();
        }
    }

    /// Recovery at start: the queue's whole index becomes its tails, and
    /// the window is filled from the one delivered from first (a queue that
    /// does not page loads it all).
    pub(super) fn restore_from_store(&self, summary: QueueSummary, delivered_below: Offset) {
        let mut tails = if self.levels == 1 {
            let mut tails = PagedTails::new(1);
            tails.restore(summary);
            tails
        } else {
            self.count_levels(summary)
        };
        tails.redelivered_below = delivered_below;
        let first = {
            let mut state = self.state.lock();
            state.next_offset = summary.next_offset;
            state.paged = tails;
            state.waiting_on_disk()
        };
        let Some((level, from)) = first else {
            return;
        };
        if self.pages() {
            self.page_in(level, from, WINDOW_MESSAGES, WINDOW_BYTES, false);
        } else {
            for (level, tail) in self.state.lock().paged.non_empty().collect::<Vec<_>>() {
                self.page_in(level, tail.from, usize::MAX, usize::MAX, false);
            }
        }
    }

    /// A priority queue's tails at start: its index read through once to
    /// count each level's messages.
    fn count_levels(&self, summary: QueueSummary) -> PagedTails {
        let mut tails = PagedTails::new(self.levels);
        self.each_indexed(summary.first_offset, Offset(u64::MAX), &mut |level, offset, record| {
            tails.push(level, offset, record.body_size as usize);
        });
        tails
    }

    /// Removes a purged queue's tails from the store: a plain queue's as
    /// one range of offsets (cleared by the flusher); a priority queue's
    /// entry by entry, found by reading its index on a blocking thread,
    /// since other levels' messages (in memory, or unacknowledged) share
    /// the range.
    pub(super) fn forget_tails(&self, queue: &Queue, tails: &PagedTails, end: Offset) {
        if self.levels == 1 {
            if let Some(from) = tails.oldest() {
                self.forget_paged(queue, from, end);
            }
            return;
        }
        let purged: Vec<(u8, PagedTail)> = tails.non_empty().collect();
        let me = self.me.clone();
        blocking::spawn(move || {
            let Some(queue) = me.upgrade() else {
                return;
            };
            let backend = queue.backend();
            let (Some((p, queue_id)), Some(from)) = (backend.stored_as(), purged.iter().map(|(_, t)| t.from).min())
            else {
                return;
            };
            let store = p.durability.store();
            backend.each_indexed(from, end, &mut |level, offset, record| {
                if purged.iter().any(|(l, tail)| *l == level && offset >= tail.from) {
                    let _ = store.remove_entry(queue_id, offset, record.message);
                }
            });
            p.durability.wrote();
        });
    }

    /// Visits the queue's index entries from `from` to before `to` with
    /// the level of each (an entry written before entries kept their
    /// priority is sorted by its message's). Reads files: off the lock
    /// and the runtime.
    fn each_indexed(&self, from: Offset, to: Offset, visit: &mut dyn FnMut(u8, Offset, &EntryRecord)) {
        let Some((p, queue_id)) = self.stored_as() else {
            return;
        };
        let store = p.durability.shared_store();
        let top = (self.levels - 1) as u8;
        let mut at = from;
        while at < to {
            let chunk = match store.entries(queue_id, at, 65_536) {
                Ok(chunk) if !chunk.is_empty() => chunk,
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(queue = %self.name, "reading the queue's index failed: {e}");
                    return;
                }
            };
            let unknown: Vec<MessageId> = chunk
                .iter()
                .filter(|(_, record)| record.priority.is_none())
                .map(|(_, record)| record.message)
                .collect();
            let mut legacy = match store.messages(&unknown) {
                Ok(bodies) => bodies.into_iter(),
                Err(_) => Vec::new().into_iter(),
            };
            for (offset, record) in chunk {
                if offset >= to {
                    return;
                }
                at = offset.next();
                let priority = record.priority.unwrap_or_else(|| {
                    let message = legacy.next().flatten().and_then(Message::decode);
                    message.and_then(|m| m.header.properties().priority).unwrap_or(0)
                });
                visit(priority.min(top), offset, &record);
            }
        }
    }
}

/// A batch read from a queue's tail: (offset, index entry, message).
enum ReadBatch {
    Read(ReadBack),
    /// The store could not be read; the tail stays as it is.
    Failed,
}
