//! Queues longer than memory: a durable queue keeps a window of its oldest
//! ready messages in memory and leaves the rest on disk.
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
//! Memory per queue is therefore bounded by the window ([`WINDOW_MESSAGES`]
//! messages or [`WINDOW_BYTES`] of bodies, whichever comes first) plus what
//! consumers hold unacknowledged (bounded by their prefetch). The store
//! keeps about 80-100 bytes per stored message in memory (its location and
//! reference count; store/README.md has the measurement). Priority queues
//! (`x-max-priority`) and non-durable queues keep everything in memory.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use warren_store::QueueSummary;

use super::{LocalQueue, QueueEntry, QueueState};
use crate::message::Message;
use crate::queue::Queue;

/// Ready messages a paging queue keeps in memory before new ones stay on disk.
pub(super) const WINDOW_MESSAGES: usize = 4096;
/// Body bytes a paging queue keeps in memory before new ones stay on disk.
pub(super) const WINDOW_BYTES: usize = 8 * 1024 * 1024;
/// The most read back from disk in one go (under the queue's lock).
const PAGE_IN_BATCH: usize = 512;

/// The ready messages of a durable queue that are on disk only.
#[derive(Debug, Default)]
pub(super) struct PagedTail {
    /// The lowest offset in the tail: the store's index holds the tail as
    /// every entry of this queue at or above it.
    pub from: u64,
    pub count: u64,
    pub bytes: u64,
    /// Messages recovered at start below this offset had been delivered
    /// before the restart; they come back redelivered.
    pub redelivered_below: u64,
}

impl PagedTail {
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A new message (at `offset`) stays on disk.
    pub(super) fn push(&mut self, offset: u64, bytes: usize) {
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
    /// Whether a new message should stay on disk: the tail is not empty
    /// (order), or the window is full.
    pub(super) fn should_page_out(&self, state: &QueueState) -> bool {
        self.pages
            && (!state.paged.is_empty() || state.ready.len() >= WINDOW_MESSAGES || state.ready.bytes() >= WINDOW_BYTES)
    }

    /// Refills the window from the tail once it is down to half.
    pub(super) fn refill_if_low(&self, state: &mut QueueState) {
        if !state.paged.is_empty() && state.ready.len() < WINDOW_MESSAGES / 2 && state.ready.bytes() < WINDOW_BYTES / 2
        {
            self.page_in(state, PAGE_IN_BATCH, WINDOW_BYTES);
        }
    }

    /// Reads up to `limit` messages (and about `max_bytes`) of the tail
    /// into the window, oldest first. An entry whose body cannot be read is
    /// dropped from the index, with a log line.
    pub(super) fn page_in(&self, state: &mut QueueState, limit: usize, max_bytes: usize) {
        let Some(p) = &self.persistence else {
            return;
        };
        if state.paged.is_empty() {
            return;
        }
        let store = p.durability.shared_store();
        let records = match store.entries(p.id, state.paged.from, limit) {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(queue = %self.name, "reading messages back from the store failed: {e}");
                return;
            }
        };
        if records.is_empty() {
            tracing::error!(queue = %self.name, lost = state.paged.count, "the store's index ends before the queue's count; recounted");
            state.paged = PagedTail {
                redelivered_below: state.paged.redelivered_below,
                ..PagedTail::default()
            };
            return;
        }
        let now = Instant::now();
        let mut loaded_bytes = 0;
        for (offset, record) in records {
            let tail = &mut state.paged;
            tail.from = offset + 1;
            tail.count = tail.count.saturating_sub(1);
            tail.bytes = tail.bytes.saturating_sub(record.body_size);
            let message = match Message::load_from_store(store, record.message) {
                Ok(Some(message)) => message,
                Ok(None) => {
                    self.drop_unreadable(offset, record.message, "missing or not a message".into());
                    continue;
                }
                Err(e) => {
                    self.drop_unreadable(offset, record.message, e.to_string());
                    continue;
                }
            };
            let priority = state.ready.level_of(message.header.properties().priority.unwrap_or(0));
            loaded_bytes += message.body_size();
            state.ready.push_back(QueueEntry {
                message,
                offset,
                redelivered: offset < tail.redelivered_below,
                delivery_count: record.delivery_count,
                priority,
                expires_at: instant_from_unix_ms(record.expires_at_ms, now),
                in_store: true,
            });
            if loaded_bytes >= max_bytes {
                break;
            }
        }
        if state.paged.is_empty() {
            state.paged.bytes = 0;
        }
    }

    fn drop_unreadable(&self, offset: u64, message: u64, why: String) {
        tracing::warn!(queue = %self.name, offset, "stored message cannot be read ({why}); dropped");
        if let Some(p) = &self.persistence {
            let _ = p.durability.store().remove_entry(p.id, offset, message);
            p.durability.wrote();
        }
    }

    /// Recovery at start: the queue's whole index becomes the tail, and the
    /// window is filled from it (a queue that does not page loads it all).
    pub(super) fn restore_from_store(&self, queue: &Arc<Queue>, summary: QueueSummary, delivered_below: u64) {
        let mut state = self.state.lock();
        state.next_offset = summary.next_offset;
        state.paged = PagedTail {
            from: summary.first_offset,
            count: summary.count,
            bytes: summary.bytes,
            redelivered_below: delivered_below,
        };
        if self.pages {
            self.page_in(&mut state, WINDOW_MESSAGES, WINDOW_BYTES);
        } else {
            self.page_in(&mut state, usize::MAX, usize::MAX);
        }
        let has_ttl = state.ready.next_expiry().is_some();
        drop(state);
        if has_ttl {
            self.ensure_timer(queue);
            self.timer_wake.notify_one();
        }
    }
}
