//! The interface between a queue and the rest of the broker: what a
//! channel needs from a queue of any type ([`QueueBackend`]), and what a
//! queue needs from the vhost it lives in ([`QueueHost`]).

use std::sync::Arc;

use warren_protocol::{BasicProperties, ContentHeader, FieldValue};
use warren_store::{Offset, QueueId, QueueSummary};

use super::{Consumer, Depth, Queue, QueueEntry, Ticket};
use crate::message::Message;

/// What became of a publish.
#[derive(Debug, Clone)]
pub(crate) enum Enqueued {
    Accepted,
    /// Accepted and written to the store: a confirm waits for the next sync.
    Stored,
    /// Proposed to a replicated queue's group: a confirm waits for the
    /// ticket (a majority has it, or the group failed).
    Replicating(Arc<Ticket>),
    /// Refused (`x-overflow` reject-publish, or the store failed): the
    /// publisher gets a nack.
    Rejected,
}

/// Why a consumer could not attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsumeRefusal {
    /// Another consumer holds the queue exclusively, or this one asked for
    /// exclusivity and others exist.
    ExclusiveInUse,
}

/// How a client settled deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// basic.ack: done with.
    Ack,
    /// basic.nack/reject with requeue, recover, or the channel closing: the
    /// messages go back, marked redelivered.
    Requeue,
    /// basic.nack/reject without requeue: the messages die (dead-lettered
    /// if the queue has a dead-letter exchange).
    Discard,
}

/// What a queue knows of its head (oldest ready) message.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Head {
    /// How long it has waited, if known.
    pub age: Option<std::time::Duration>,
    /// Its `timestamp` property.
    pub timestamp: Option<u64>,
}

/// A queue type. Every method gets the queue's handle, for its identity
/// (name, arguments) and to hand to the deliveries it makes.
pub(crate) trait QueueBackend: Send + Sync {
    /// Called once, right after the queue is created (to start timers).
    fn attach(&self, queue: &Arc<Queue>);
    /// Enqueues a newly published message and delivers what it can.
    fn publish(&self, queue: &Arc<Queue>, message: Arc<Message>) -> Enqueued;
    fn add_consumer(&self, queue: &Arc<Queue>, consumer: Arc<Consumer>) -> Result<(), ConsumeRefusal>;
    /// True when the queue should now be auto-deleted.
    fn remove_consumer(&self, queue: &Arc<Queue>, consumer: &Arc<Consumer>) -> bool;
    /// basic.get: the next message and how many remain after it.
    fn get(&self, queue: &Arc<Queue>, ack_required: bool) -> Option<(QueueEntry, u64)>;
    fn settle(&self, queue: &Arc<Queue>, entries: Vec<QueueEntry>, settlement: Settlement);
    /// `consumer` acked its delivery of the message at `offset` (streams
    /// track consumers' offsets; other types need not know).
    fn consumer_acked(&self, _consumer: &Consumer, _offset: Offset) {}
    fn settle_without_ack(&self, queue: &Arc<Queue>, entry: &QueueEntry);
    fn return_undelivered(&self, queue: &Arc<Queue>, entry: QueueEntry);
    fn kick(&self, queue: &Arc<Queue>);
    /// Drops every ready message; returns how many.
    fn purge(&self, queue: &Arc<Queue>) -> u64;
    /// Memory is high: moves what it holds beyond its in-memory window to
    /// disk, if its type pages. May block (called on a thread of its own).
    fn relieve_memory(&self, _queue: &Arc<Queue>) {}
    /// Its effective arguments changed (a policy): enforce new limits,
    /// rearm timers.
    fn arguments_changed(&self, queue: &Arc<Queue>);
    /// Cancels every consumer and drops every message (and the queue's
    /// place in the store); returns how many messages were ready.
    fn delete(&self, queue: &Arc<Queue>) -> u64;
    /// Ready messages.
    fn message_count(&self) -> u64;
    /// What it holds and how many consume it, in one reading.
    fn depth(&self) -> Depth;
    /// Its oldest ready message, for consumer lag.
    fn head(&self, now: tokio::time::Instant) -> Head;
    /// A durable queue's id in the store and the offset its next message
    /// takes (for moves between queues, `warren_store::MoveRecord`).
    fn store_position(&self) -> Option<(QueueId, Offset)>;
    fn consumer_count(&self) -> u64;
    /// Its consumers now.
    fn consumers(&self) -> Vec<Arc<Consumer>>;
    /// Notes a use (redeclaration), for `x-expires`.
    fn touch(&self);
    /// The header entry a delivery goes out with besides the published
    /// ones, if any (quorum queues add `x-delivery-count`, streams
    /// `x-stream-offset`).
    fn added_header(&self, entry: &QueueEntry) -> Option<AddedHeader>;
    /// Where its copies are, if it is replicated.
    fn replicas(&self) -> Option<crate::replication::Replicas> {
        None
    }
    /// Takes over what the store recovered for this queue at start.
    fn restore(&self, queue: &Arc<Queue>, summary: QueueSummary, delivered_below: Offset);
}

/// A `headers` entry a queue type adds to its deliveries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AddedHeader {
    pub key: &'static str,
    pub value: FieldValue,
}

impl AddedHeader {
    /// `header` with the entry added (replacing one of its name).
    pub(crate) fn added_to(&self, header: &ContentHeader) -> ContentHeader {
        header.with_header(self.key, &self.value)
    }
}

/// What a queue needs from the vhost it belongs to.
pub(crate) trait QueueHost: Send + Sync {
    /// Routes a message as if published to `exchange`: the queues it
    /// reaches are added to `queues`. False if the exchange does not exist.
    fn route_to(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: &BasicProperties,
        queues: &mut Vec<Arc<Queue>>,
    ) -> bool;
    /// Deletes a queue whose `x-expires` ran out.
    fn delete_expired(&self, queue: &Arc<Queue>);
}
