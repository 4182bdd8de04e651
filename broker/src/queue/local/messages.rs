//! The ready messages of a queue: one FIFO per priority level, each in
//! offset order.

use std::collections::VecDeque;
use tokio::time::Instant;

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
    /// What they take in memory, roughly: bodies and decoded headers.
    footprint: usize,
}

impl MessageList {
    pub(super) fn new(max_priority: Option<u8>) -> Self {
        let count = max_priority.map_or(1, |p| usize::from(p) + 1);
        MessageList {
            levels: (0..count).map(|_| VecDeque::new()).collect(),
            len: 0,
            bytes: 0,
            footprint: 0,
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

    /// What the ready messages take in memory (bodies and decoded
    /// headers): what the paging window bounds.
    pub(super) fn footprint(&self) -> usize {
        self.footprint
    }

    fn count_in(&mut self, entry: &QueueEntry) {
        self.len += 1;
        self.bytes += entry.message.body_size();
        self.footprint += entry.message.footprint();
    }

    fn count_out(&mut self, entry: &QueueEntry) {
        self.len -= 1;
        self.bytes -= entry.message.body_size();
        self.footprint -= entry.message.footprint();
    }

    /// How many levels it has (1 without priorities).
    pub(super) fn level_count(&self) -> usize {
        self.levels.len()
    }

    /// Ready messages in memory at `level`.
    pub(super) fn level_len(&self, level: u8) -> usize {
        self.levels.get(usize::from(level)).map_or(0, VecDeque::len)
    }

    /// The level a message of this priority goes to.
    pub(super) fn level_of(&self, priority: u8) -> u8 {
        priority.min((self.levels.len() - 1) as u8)
    }

    /// The ready message that has waited longest: the lowest offset at the
    /// front of any level.
    pub(super) fn oldest(&self) -> Option<&QueueEntry> {
        self.levels
            .iter()
            .filter_map(|level| level.front())
            .min_by_key(|e| e.offset)
    }

    /// Appends; returns true if the entry is now the head of its level.
    pub(super) fn push_back(&mut self, entry: QueueEntry) -> bool {
        self.count_in(&entry);
        let level = &mut self.levels[usize::from(entry.priority)];
        level.push_back(entry);
        level.len() == 1
    }

    /// The oldest message of `level`.
    pub(super) fn pop_level(&mut self, level: u8) -> Option<QueueEntry> {
        let entry = self.levels.get_mut(usize::from(level))?.pop_front()?;
        self.count_out(&entry);
        Some(entry)
    }

    /// The newest message (the highest offset of any level), which memory
    /// pressure moves to disk first.
    pub(super) fn pop_newest(&mut self) -> Option<QueueEntry> {
        let level = self
            .levels
            .iter_mut()
            .filter(|level| !level.is_empty())
            .max_by_key(|level| level.back().map(|e| e.offset))?;
        let entry = level.pop_back()?;
        self.count_out(&entry);
        Some(entry)
    }

    /// The oldest message of the lowest priority, which a length limit drops first.
    pub(super) fn pop_oldest_lowest(&mut self) -> Option<QueueEntry> {
        let entry = self.levels.iter_mut().find_map(|level| level.pop_front())?;
        self.count_out(&entry);
        Some(entry)
    }

    /// Puts a message back at its original position in its level.
    pub(super) fn requeue(&mut self, entry: QueueEntry) {
        self.count_in(&entry);
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
                    self.footprint -= entry.message.footprint();
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
        self.footprint = 0;
        self.levels.iter_mut().flat_map(|level| level.drain(..)).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use warren_protocol::{BasicProperties, ContentHeader};
    use warren_store::Offset;

    use super::*;
    use crate::message::Message;

    fn entry(offset: u64, priority: u8, expires_at: Option<Instant>) -> QueueEntry {
        let message: Arc<Message> = Message::new(
            "".into(),
            "q".into(),
            ContentHeader::new(60, 1, BasicProperties::default()),
            Bytes::from_static(b"x"),
        );
        QueueEntry::new(message, Offset(offset), priority, expires_at)
    }

    fn offsets(list: &mut MessageList) -> Vec<u64> {
        std::iter::from_fn(|| (0..list.level_count()).rev().find_map(|l| list.pop_level(l as u8)))
            .map(|e| e.offset.0)
            .collect()
    }

    #[test]
    fn the_highest_priority_goes_first_fifo_within_a_level() {
        let mut list = MessageList::new(Some(5));
        for (offset, priority) in [(0, 1), (1, 5), (2, 1), (3, 9), (4, 0)] {
            let level = list.level_of(priority);
            list.push_back(entry(offset, level, None));
        }
        assert_eq!(list.level_of(9), 5, "priorities above the maximum count as the maximum");
        assert_eq!((list.len(), list.bytes()), (5, 5));
        assert_eq!(offsets(&mut list), [1, 3, 0, 2, 4]);
        assert!(list.is_empty());
    }

    #[test]
    fn a_requeued_message_goes_back_to_its_place() {
        let mut list = MessageList::new(None);
        for offset in [0, 2, 3] {
            list.push_back(entry(offset, 0, None));
        }
        list.requeue(entry(1, 0, None));
        list.requeue(entry(9, 0, None));
        assert_eq!(offsets(&mut list), [0, 1, 2, 3, 9]);
    }

    #[test]
    fn a_length_limit_drops_the_oldest_of_the_lowest_priority() {
        let mut list = MessageList::new(Some(2));
        for (offset, priority) in [(0, 2), (1, 0), (2, 0)] {
            list.push_back(entry(offset, priority, None));
        }
        assert_eq!(list.pop_oldest_lowest().map(|e| e.offset.0), Some(1));
    }

    #[test]
    fn only_expired_heads_are_taken() {
        let now = Instant::now();
        let past = Some(now - Duration::from_secs(1));
        let future = Some(now + Duration::from_secs(60));
        let mut list = MessageList::new(None);
        list.push_back(entry(0, 0, past));
        list.push_back(entry(1, 0, future));
        list.push_back(entry(2, 0, past));
        let mut expired = Vec::new();
        list.take_expired_heads(now, &mut expired);
        assert_eq!(expired.iter().map(|e| e.offset.0).collect::<Vec<_>>(), [0]);
        assert_eq!(
            list.next_expiry(),
            future,
            "offset 2 waits behind a live head, as in RabbitMQ"
        );
        assert_eq!(list.len(), 2);
    }
}
