//! Classic queues: RabbitMQ's default queue type. Messages may be
//! prioritised (`x-max-priority`), a durable queue pages its messages to the
//! store beyond a window, and a message may be redelivered any number of
//! times. They run on the single-node engine in `local/` with no delivery
//! limit and no delivery counts.

use std::sync::{Arc, Weak};

use warren_protocol::ShortStr;

use super::local::{LocalQueue, Rules};
use super::{Persistence, QueueArguments, QueueBackend, QueueHost};

pub(super) fn new(
    name: ShortStr,
    args: &QueueArguments,
    host: Weak<dyn QueueHost>,
    persistence: Option<Persistence>,
) -> Arc<dyn QueueBackend> {
    LocalQueue::new(name, args, Rules::default(), host, persistence)
}
