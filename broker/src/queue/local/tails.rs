//! The ready messages of a paging queue that only the store holds: a tail
//! per priority level, each the entries of its level from an offset on
//! (`paging.rs` writes and reads them), and which level the next delivery
//! comes from.

use warren_store::{Offset, QueueSummary};

use super::QueueState;

/// The ready messages of a paging queue that are on disk only: one tail
/// per priority level (a queue without priorities has one level).
#[derive(Debug, Default)]
pub(super) struct PagedTails {
    levels: Vec<PagedTail>,
    /// Messages and body bytes in all the tails.
    pub count: u64,
    pub bytes: u64,
    /// Messages recovered at start below this offset had been delivered
    /// before the restart; they come back redelivered.
    pub redelivered_below: Offset,
}

/// One level's tail: every entry of the queue's index at or above `from`
/// whose message is of this level.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PagedTail {
    pub from: Offset,
    pub count: u64,
    pub bytes: u64,
    /// A read-ahead of the batch at `from` is in flight.
    pub reading: bool,
}

impl PagedTail {
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl PagedTails {
    pub(super) fn new(levels: usize) -> PagedTails {
        PagedTails {
            levels: vec![PagedTail::default(); levels.max(1)],
            ..PagedTails::default()
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(super) fn level(&self, level: u8) -> PagedTail {
        self.levels.get(usize::from(level)).copied().unwrap_or_default()
    }

    pub(super) fn level_mut(&mut self, level: u8) -> &mut PagedTail {
        let last = self.levels.len() - 1;
        &mut self.levels[usize::from(level).min(last)]
    }

    /// The lowest offset of any tail (where the oldest message on disk is).
    pub(super) fn oldest(&self) -> Option<Offset> {
        self.levels.iter().filter(|t| !t.is_empty()).map(|t| t.from).min()
    }

    /// A message from the back of the window (at `offset`, below its
    /// level's tail) joins that tail at its head.
    pub(super) fn prepend(&mut self, level: u8, offset: Offset, bytes: usize) {
        let tail = self.level_mut(level);
        tail.from = offset;
        tail.count += 1;
        tail.bytes += bytes as u64;
        self.count += 1;
        self.bytes += bytes as u64;
    }

    /// A new message (at `offset`) stays on disk.
    pub(super) fn push(&mut self, level: u8, offset: Offset, bytes: usize) {
        let tail = self.level_mut(level);
        if tail.count == 0 {
            tail.from = offset;
        }
        tail.count += 1;
        tail.bytes += bytes as u64;
        self.count += 1;
        self.bytes += bytes as u64;
    }

    /// A message of the tail at `level` was read back into the window.
    pub(super) fn took(&mut self, level: u8, bytes: u64) {
        let tail = self.level_mut(level);
        tail.count = tail.count.saturating_sub(1);
        tail.bytes = tail.bytes.saturating_sub(bytes);
        if tail.count == 0 {
            tail.bytes = 0;
        }
        self.count = self.count.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
    }

    /// All of the queue's index a plain queue found at start.
    pub(super) fn restore(&mut self, summary: QueueSummary) {
        self.levels[0] = PagedTail {
            from: summary.first_offset,
            count: summary.count,
            bytes: summary.bytes,
            reading: false,
        };
        self.count = summary.count;
        self.bytes = summary.bytes;
    }

    /// `level`'s tail is found to be wrong: it goes.
    pub(super) fn drop_level(&mut self, level: u8) {
        let tail = std::mem::take(self.level_mut(level));
        self.count = self.count.saturating_sub(tail.count);
        self.bytes = self.bytes.saturating_sub(tail.bytes);
    }

    /// The tails go (purged, or found wrong); what they were is returned.
    pub(super) fn clear(&mut self) -> PagedTails {
        let fresh = PagedTails {
            redelivered_below: self.redelivered_below,
            ..PagedTails::new(self.levels.len())
        };
        std::mem::replace(self, fresh)
    }

    /// The non-empty tails, as (level, tail).
    pub(super) fn non_empty(&self) -> impl Iterator<Item = (u8, PagedTail)> + '_ {
        (0..=u8::MAX)
            .zip(self.levels.iter().copied())
            .filter(|(_, t)| !t.is_empty())
    }
}

impl QueueState {
    /// The level the next delivery comes from: the highest with messages,
    /// in memory or on disk.
    pub(super) fn next_level(&self) -> Option<u8> {
        (0..self.ready.level_count())
            .rev()
            .map(|l| l as u8)
            .find(|&l| self.ready.level_len(l) > 0 || !self.paged.level(l).is_empty())
    }

    /// The next delivery must first be read from disk: its level and the
    /// offset its tail starts at.
    pub(super) fn waiting_on_disk(&self) -> Option<(u8, Offset)> {
        let level = self.next_level()?;
        let tail = self.paged.level(level);
        (self.ready.level_len(level) == 0 && !tail.is_empty()).then_some((level, tail.from))
    }
}
