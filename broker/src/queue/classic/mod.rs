//! Classic queues: RabbitMQ's default queue type. Messages may be
//! prioritised (`x-max-priority`), a queue pages its messages to the store
//! beyond a window (a non-durable one under memory pressure), and a message may be redelivered any number of
//! times. They run on the single-node engine in `local/` with no delivery
//! limit and no delivery counts.

use std::sync::{Arc, Weak};

use super::local::{LocalQueue, Rules};
use super::{Identity, Persistence, Queue, QueueHost};

pub(super) fn new(identity: Identity, host: Weak<dyn QueueHost>, persistence: Option<Persistence>) -> Arc<Queue> {
    LocalQueue::queue(identity, Rules::default(), host, persistence)
}
