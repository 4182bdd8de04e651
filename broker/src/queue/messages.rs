//! The ready messages of a queue, in offset order.

use std::collections::VecDeque;

use super::entry::QueueEntry;

/// Ready (not yet delivered) messages, oldest first.
///
/// Entries are kept sorted by offset: new messages get ever larger offsets
/// and go to the back; requeued ones are put back where they were.
#[derive(Debug, Default)]
pub struct MessageList {
    entries: VecDeque<QueueEntry>,
    bytes: usize,
}

impl MessageList {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total body bytes of the ready messages.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn push_back(&mut self, entry: QueueEntry) {
        self.bytes += entry.message.body_size();
        self.entries.push_back(entry);
    }

    pub fn pop_front(&mut self) -> Option<QueueEntry> {
        let entry = self.entries.pop_front()?;
        self.bytes -= entry.message.body_size();
        Some(entry)
    }

    /// Puts a message back at its original position.
    pub fn requeue(&mut self, entry: QueueEntry) {
        self.bytes += entry.message.body_size();
        match self.entries.back() {
            Some(last) if last.offset > entry.offset => {
                let at = self.entries.partition_point(|e| e.offset < entry.offset);
                self.entries.insert(at, entry);
            }
            _ => self.entries.push_back(entry),
        }
    }

    /// Removes every ready message, returning how many there were.
    pub fn purge(&mut self) -> usize {
        let n = self.entries.len();
        self.entries.clear();
        self.bytes = 0;
        n
    }
}
