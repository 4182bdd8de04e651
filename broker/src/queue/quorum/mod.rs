//! Quorum queues, on one node: always durable, never exclusive or
//! auto-delete (refused at declaration, `arguments.rs`), with a delivery
//! limit (`x-delivery-limit`, [`DEFAULT_DELIVERY_LIMIT`] when not declared,
//! as in RabbitMQ 4) after which a message that keeps coming back is
//! dead-lettered, and deliveries that carry `x-delivery-count`.
//!
//! On a single node these rules run on the same engine as classic queues
//! (`local/`). A replicated quorum queue is a different implementation of
//! [`QueueBackend`] and will live here.

pub(crate) mod machine;

use std::sync::{Arc, Weak};

use super::local::{LocalQueue, Rules};
use super::{Identity, Persistence, Queue, QueueHost};

/// Quorum queues' delivery limit when none is declared (RabbitMQ 4).
pub(crate) const DEFAULT_DELIVERY_LIMIT: u64 = 20;

pub(super) fn new(identity: Identity, host: Weak<dyn QueueHost>, persistence: Option<Persistence>) -> Arc<Queue> {
    let rules = Rules {
        default_delivery_limit: Some(DEFAULT_DELIVERY_LIMIT),
        counts_deliveries: true,
    };
    LocalQueue::queue(identity, rules, host, persistence)
}
