//! A message's place in one queue.

use std::sync::Arc;
use tokio::time::Instant;

use warren_store::Offset;

use crate::message::Message;

/// A message as one queue holds it: the shared message plus this queue's
/// own facts about it. `offset` orders the queue, so a requeued message goes
/// back to where it was.
#[derive(Debug, Clone)]
pub(crate) struct QueueEntry {
    pub message: Arc<Message>,
    pub offset: Offset,
    pub redelivered: bool,
    /// How many times it was delivered and came back (quorum semantics).
    pub delivery_count: u32,
    /// Its priority level in a priority queue (0 otherwise).
    pub priority: u8,
    /// When its TTL (queue or per-message, whichever is sooner) runs out.
    pub expires_at: Option<Instant>,
    /// Whether this queue's index in the store holds it (a persistent
    /// message in a durable queue, or any message a durable queue paged
    /// out), so that acking it must remove it there.
    pub in_store: bool,
}

impl QueueEntry {
    /// A message new to the queue.
    pub(crate) fn new(message: Arc<Message>, offset: Offset, priority: u8, expires_at: Option<Instant>) -> QueueEntry {
        QueueEntry {
            message,
            offset,
            redelivered: false,
            delivery_count: 0,
            priority,
            expires_at,
            in_store: false,
        }
    }

    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}
