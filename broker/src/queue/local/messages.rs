//! The ready messages of a queue: one FIFO per priority level, each in
//! offset order.

use std::collections::VecDeque;
use std::time::Instant;

use crate::queue::QueueEntry;

/// Ready (not yet delivered) messages. A plain queue has one level; a
/// priority queue (`x-max-priority`) has one per priority, served highest
/// first and FIFO within a level. Entries within a level stay sorted by
/// offset: new ones go to the back, requeued ones back where they were.
#[derive(Debug)]
pub(super) struct MessageList {
    levels: Vec<VecDeque<QueueEntry>>,
    len: usize,
    bytes: usize,
}

impl MessageList {
    pub(super) fn new(max_priority: Option<u8>) -> Self {
        let count = max_priority.map_or(1, |p| usize::from(p) + 1);
        MessageList {
            levels: (0..count).map(|_| VecDeque::new()).collect(),
            len: 0,
            bytes: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total body bytes of the ready messages.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The level a message of this priority goes to.
    pub(super) fn level_of(&self, priority: u8) -> u8 {
        priority.min((self.levels.len() - 1) as u8)
    }

    /// Appends; returns true if the entry is now the head of its level.
    pub(super) fn push_back(&mut self, entry: QueueEntry) -> bool {
        self.len += 1;
        self.bytes += entry.message.body_size();
        let level = &mut self.levels[usize::from(entry.priority)];
        level.push_back(entry);
        level.len() == 1
    }

    /// The next message to deliver: the oldest of the highest priority.
    pub(super) fn pop_front(&mut self) -> Option<QueueEntry> {
        let entry = self.levels.iter_mut().rev().find_map(|level| level.pop_front())?;
        self.len -= 1;
        self.bytes -= entry.message.body_size();
        Some(entry)
    }

    /// The oldest message of the lowest priority, which a length limit drops first.
    pub(super) fn pop_oldest_lowest(&mut self) -> Option<QueueEntry> {
        let entry = self.levels.iter_mut().find_map(|level| level.pop_front())?;
        self.len -= 1;
        self.bytes -= entry.message.body_size();
        Some(entry)
    }

    /// Puts a message back at its original position in its level.
    pub(super) fn requeue(&mut self, entry: QueueEntry) {
        self.len += 1;
        self.bytes += entry.message.body_size();
        let level = &mut self.levels[usize::from(entry.priority)];
        match level.back() {
            Some(last) if last.offset > entry.offset => {
                let at = level.partition_point(|e| e.offset < entry.offset);
                level.insert(at, entry);
            }
            _ => level.push_back(entry),
        }
    }

    /// Removes expired messages from the heads of the levels. Like RabbitMQ,
    /// only heads are checked: a message expires once it reaches the front.
    pub(super) fn take_expired_heads(&mut self, now: Instant, out: &mut Vec<QueueEntry>) {
        for level in &mut self.levels {
            while level.front().is_some_and(|e| e.is_expired(now)) {
                if let Some(entry) = level.pop_front() {
                    self.len -= 1;
                    self.bytes -= entry.message.body_size();
                    out.push(entry);
                }
            }
        }
    }

    /// The soonest expiry among the level heads.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.levels.iter().filter_map(|l| l.front()?.expires_at).min()
    }

    /// Removes and returns every ready message.
    pub(super) fn drain(&mut self) -> Vec<QueueEntry> {
        self.len = 0;
        self.bytes = 0;
        self.levels.iter_mut().flat_map(|level| level.drain(..)).collect()
    }
}
