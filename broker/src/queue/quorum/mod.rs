//! Quorum queues, on one node: always durable, never exclusive or
//! auto-delete (refused at declaration, `arguments.rs`), with a delivery
//! limit (`x-delivery-limit`, [`DEFAULT_DELIVERY_LIMIT`] when not declared,
//! as in RabbitMQ 4) after which a message that keeps coming back is
//! dead-lettered, and deliveries that carry `x-delivery-count`.
//!
//! On a single node these rules run on the same engine as classic queues
//! (`local/`). In a cluster a quorum queue is replicated (`replicated.rs`,
//! its state machine in `machine.rs`): another implementation of
//! [`QueueBackend`].

pub(crate) mod machine;
mod replicated;

use std::sync::{Arc, Weak};

use super::local::{LocalQueue, Rules};
use super::{Identity, Persistence, Queue, QueueHost};
use crate::replication::ClusterLink;

/// Quorum queues' delivery limit when none is declared (RabbitMQ 4).
pub(crate) const DEFAULT_DELIVERY_LIMIT: u64 = 20;

/// A quorum queue: replicated through its own Raft group in a cluster, on
/// the single-node engine otherwise.
pub(super) fn new(
    identity: Identity,
    host: Weak<dyn QueueHost>,
    persistence: Option<Persistence>,
    cluster: Option<&Arc<dyn ClusterLink>>,
) -> Arc<Queue> {
    if let Some(link) = cluster {
        let durability = persistence.map(|p| p.durability.clone());
        return replicated::new(identity, host, link.clone(), durability);
    }
    let rules = Rules {
        default_delivery_limit: Some(DEFAULT_DELIVERY_LIMIT),
        counts_deliveries: true,
    };
    LocalQueue::queue(identity, rules, host, persistence)
}
