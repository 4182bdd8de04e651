//! A message's place in one queue.

use std::sync::Arc;

use crate::message::Message;

/// A message as one queue holds it: the shared message plus this queue's
/// own facts about it. `offset` orders the queue, so a requeued message goes
/// back to where it was.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub message: Arc<Message>,
    pub offset: u64,
    pub redelivered: bool,
}
