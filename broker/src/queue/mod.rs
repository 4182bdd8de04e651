//! Queues: the handle the rest of the broker holds ([`Queue`]) and the
//! interface every queue type implements ([`QueueBackend`]).
//!
//! A queue's identity (name, vhost, declared settings and arguments) is
//! the same for every type and lives in the handle; what a queue does with
//! messages lives in its type's backend, one folder per type:
//! - `classic/`: RabbitMQ's classic queue (priorities, paging, no delivery
//!   limit);
//! - `quorum/`: the quorum queue's rules (delivery limit, `x-delivery-count`);
//!   on one node it runs on the same engine as the classic queue;
//! - `local/`: that engine, a single-node queue in memory with a window
//!   paged to the store.
//!
//! Channels, vhosts and exchanges see only the handle's methods, which
//! forward to the backend, so a new type (streams, replicated quorum queues)
//! is a new folder that implements [`QueueBackend`]. A queue reaches its
//! vhost (dead-lettering, deleting itself on expiry) through [`QueueHost`]
//! and its consumers' connections through [`DeliverySink`], never through
//! their types, so nothing here imports the layers above.

mod arguments;
mod backend;
mod backlog;
mod classic;
mod consumer;
mod dead_letter;
mod effective;
mod entry;
mod lag;
mod local;
mod quorum;
pub(crate) mod remote;
mod stats;
pub(crate) mod stream;
mod ticket;
mod transit;

use std::borrow::Cow;
use std::sync::{Arc, Weak};

use arc_swap::{ArcSwap, Guard};

use warren_protocol::{ContentHeader, FieldTable, ShortStr};

pub(crate) use arguments::{type_name, Overflow, QueueArguments, QueueType};
pub(crate) use backend::{AddedHeader, ConsumeRefusal, Enqueued, Head, QueueBackend, QueueHost, Settlement};
pub(crate) use consumer::{deliver_all_to, deliver_to, Consumer, Credit, Deliveries, Delivery, DeliverySink};
pub(crate) use entry::QueueEntry;
pub(crate) use lag::{ReporterId, UnackedAges};
pub(crate) use local::{Persistence, StoreLink};
pub(crate) use stats::{Depth, QueueCounters, QueueStats};
pub(crate) use ticket::Ticket;
pub(crate) use transit::Transit;

use crate::ids::ConnectionId;
use crate::message::Message;
use crate::policy::Applied;
use crate::replication::ClusterLink;
use effective::effective_arguments;
pub(crate) use effective::effective_definition;
use warren_store::{Offset, QueueSummary};

/// How far behind a queue's consumers are.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct QueueLag {
    /// How long its oldest ready message has waited (None: no ready
    /// message, or its arrival is unknown, as after a restart).
    pub oldest_ready: Option<std::time::Duration>,
    /// How long its oldest unacknowledged delivery has waited for its ack.
    pub oldest_unacked: Option<std::time::Duration>,
    /// The `timestamp` property of its head message, if it has one.
    pub head_timestamp: Option<u64>,
}

/// The declared properties of a queue, fixed at declaration.
#[derive(Debug, Clone)]
pub(crate) struct QueueSettings {
    pub durable: bool,
    pub exclusive_owner: Option<ConnectionId>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

impl QueueSettings {
    /// Its arguments, checked as queue.declare checks them (`what` names
    /// the queue in the refusal).
    pub(crate) fn parse_arguments(&self, what: &str) -> crate::error::AmqpResult<QueueArguments> {
        QueueArguments::parse(
            &self.arguments,
            what,
            self.durable,
            self.exclusive_owner.is_some(),
            self.auto_delete,
        )
    }
}

/// A queue as the rest of the broker holds it: `QueueOf` over the
/// interface, the backend living in the same allocation as the identity
/// (one pointer from a route or a delivery to the queue's state, not two).
pub(crate) type Queue = QueueOf<dyn QueueBackend>;

/// A queue's identity and its type's backend `B`. Built with the concrete
/// backend (`Arc<QueueOf<LocalQueue>>`, which the backend keeps a weak
/// reference to for its background work) and handed out as [`Queue`].
pub(crate) struct QueueOf<B: ?Sized> {
    pub name: ShortStr,
    pub vhost_name: Arc<str>,
    pub settings: QueueSettings,
    /// The typed form of `settings.arguments` (the client's own).
    pub declared_args: QueueArguments,
    /// What it runs with: the declared arguments completed by the
    /// policies that apply to it (`effective.rs`); replaced when they change.
    args: ArcSwap<QueueArguments>,
    /// The policies that apply to it now.
    applied: ArcSwap<Applied>,
    /// What the management API shows of it.
    pub counters: QueueCounters,
    /// Its channels' oldest unacknowledged deliveries, for consumer lag.
    pub unacked_ages: UnackedAges,
    /// Its home node, when every node of the cluster knows it.
    pub home: Option<Home>,
    backend: B,
}

/// What every queue is made of before its backend.
pub(crate) struct Identity {
    pub name: ShortStr,
    pub vhost_name: Arc<str>,
    pub settings: QueueSettings,
    /// The declared arguments, typed.
    pub args: QueueArguments,
    /// The policies that apply to it.
    pub applied: Applied,
    /// Its home node, when it was declared on every node of a cluster.
    pub home: Option<Home>,
}

/// The node a classic queue declared through the cluster's log lives on
/// (named as `--node-name` names it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Home {
    /// This node: the queue is here, and other nodes forward to it.
    Here(String),
    /// Another node: this node knows the queue and forwards to it.
    Elsewhere(String),
}

impl Home {
    /// `node`'s home as this node (`this_node`) sees it.
    pub(crate) fn seen_from(node: String, this_node: &str) -> Home {
        if node == this_node {
            Home::Here(node)
        } else {
            Home::Elsewhere(node)
        }
    }

    pub(crate) fn node(&self) -> &str {
        match self {
            Home::Here(node) | Home::Elsewhere(node) => node,
        }
    }
}

impl<B> QueueOf<B> {
    fn assemble(identity: Identity, backend: B) -> QueueOf<B> {
        let effective = effective_arguments(&identity.args, &identity.settings.arguments, &identity.applied);
        QueueOf {
            name: identity.name,
            vhost_name: identity.vhost_name,
            settings: identity.settings,
            declared_args: identity.args,
            args: ArcSwap::from_pointee(effective),
            applied: ArcSwap::from_pointee(identity.applied),
            counters: QueueCounters::default(),
            unacked_ages: UnackedAges::default(),
            home: identity.home,
            backend,
        }
    }
}

impl<B: ?Sized> QueueOf<B> {
    /// The arguments it runs with now (declared, and from policies).
    pub(crate) fn args(&self) -> Guard<Arc<QueueArguments>> {
        self.args.load()
    }

    /// The policies that apply to it now.
    pub(crate) fn applied(&self) -> Arc<Applied> {
        self.applied.load_full()
    }

    /// The backend, typed (for the backend's own background work).
    pub(crate) fn backend(&self) -> &B {
        &self.backend
    }
}

impl<B: ?Sized> std::fmt::Debug for QueueOf<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .field("vhost", &self.vhost_name)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// Creates a queue of the type its arguments ask for. `persistence` is
    /// where a durable queue keeps its messages (None keeps them in memory).
    pub(crate) fn new(
        identity: Identity,
        host: Weak<dyn QueueHost>,
        persistence: Option<Persistence>,
        cluster: Option<&Arc<dyn ClusterLink>>,
    ) -> Arc<Queue> {
        if let (Some(Home::Elsewhere(node)), Some(link)) = (identity.home.clone(), cluster) {
            let queue = remote::new(identity, node, link.clone(), persistence);
            queue.backend.attach(&queue);
            return queue;
        }
        let queue: Arc<Queue> = match identity.args.queue_type {
            QueueType::Classic => classic::new(identity, host, persistence),
            QueueType::Quorum => quorum::new(identity, host, persistence, cluster),
            QueueType::Stream => stream::new(identity, host, persistence),
        };
        queue.backend.attach(&queue);
        queue
    }

    pub(crate) fn publish(self: &Arc<Self>, message: Arc<Message>) -> Enqueued {
        self.backend.publish(self, message)
    }

    pub(crate) fn add_consumer(self: &Arc<Self>, consumer: Arc<Consumer>) -> Result<(), ConsumeRefusal> {
        self.backend.add_consumer(self, consumer)
    }

    /// Detaches a consumer. True when the queue should now be auto-deleted
    /// (it is auto-delete and its last consumer went).
    pub(crate) fn remove_consumer(self: &Arc<Self>, consumer: &Arc<Consumer>) -> bool {
        self.backend.remove_consumer(self, consumer)
    }

    /// basic.get: the next message and how many remain after it.
    /// `ack_required`: it stays unacknowledged until settled.
    pub(crate) fn get(self: &Arc<Self>, ack_required: bool) -> Option<(QueueEntry, u64)> {
        self.backend.get(self, ack_required)
    }

    /// Settles deliveries the client acked, rejected or that go back.
    pub(crate) fn settle(self: &Arc<Self>, entries: Vec<QueueEntry>, settlement: Settlement) {
        let bytes = entries.iter().map(|e| e.message.body_size() as u64).sum();
        self.counters
            .settled(entries.len() as u64, bytes, settlement == Settlement::Ack);
        self.backend.settle(self, entries, settlement)
    }

    /// Whether it is a stream (its type is fixed at declaration: no
    /// atomic load, cheap on the ack path).
    pub(crate) fn is_stream(&self) -> bool {
        self.declared_args.queue_type == QueueType::Stream
    }

    /// Where its copies are, if it is replicated.
    pub(crate) fn replicas(&self) -> Option<crate::replication::Replicas> {
        self.backend.replicas()
    }

    /// Whether it lives on another node (this is how this node reaches it).
    pub(crate) fn is_proxy(&self) -> bool {
        matches!(self.home, Some(Home::Elsewhere(_)))
    }

    /// Whether its declaration went through the cluster's log, so that
    /// every node knows it (a quorum queue, or a classic queue with a home).
    pub(crate) fn declared_everywhere(&self) -> bool {
        self.is_quorum() || self.home.is_some()
    }

    /// Whether it is a quorum queue (replicated, in a cluster).
    pub(crate) fn is_quorum(&self) -> bool {
        self.declared_args.queue_type == QueueType::Quorum
    }

    /// RabbitMQ's 540 for a method streams do not take (`what`, e.g.
    /// "basic.get"), which closes the connection.
    pub(crate) fn not_for_streams(&self, what: &str) -> crate::error::AmqpError {
        crate::error::AmqpError::not_implemented(format!(
            "{what} not supported by stream queues queue '{}' in vhost '{}'",
            self.name, self.vhost_name
        ))
    }

    /// A stream's consumer acked the message at `offset`.
    pub(crate) fn consumer_acked(&self, consumer: &Consumer, offset: Offset) {
        self.backend.consumer_acked(consumer, offset)
    }

    /// A delivery made without an ack (no-ack consumer, basic.get no-ack)
    /// is done with once written.
    pub(crate) fn settle_without_ack(self: &Arc<Self>, entry: &QueueEntry) {
        self.backend.settle_without_ack(self, entry)
    }

    /// A delivery that never reached its consumer (cancelled or its
    /// connection closed on the way): back in place, not a redelivery.
    /// `ack_required`: it was handed out to be acknowledged.
    pub(crate) fn return_undelivered(self: &Arc<Self>, entry: QueueEntry, ack_required: bool) {
        if ack_required {
            self.counters.settled(1, entry.message.body_size() as u64, false);
        }
        self.backend.return_undelivered(self, entry)
    }

    /// The policies that apply changed: it runs with the new effective
    /// arguments from now on (limits are enforced and timers rearmed at once).
    pub(crate) fn apply_policies(self: &Arc<Self>, applied: Applied) {
        let effective = effective_arguments(&self.declared_args, &self.settings.arguments, &applied);
        self.args.store(Arc::new(effective));
        self.applied.store(Arc::new(applied));
        self.backend.arguments_changed(self);
    }

    /// Its depth and counters now.
    pub(crate) fn stats(&self) -> QueueStats {
        self.counters.read(self.backend.depth())
    }

    /// How far its consumers are behind: the ages of its oldest ready
    /// message and oldest unacknowledged delivery, and its head's timestamp.
    pub(crate) fn lag(&self) -> QueueLag {
        let now = tokio::time::Instant::now();
        let head = self.backend.head(now);
        QueueLag {
            oldest_ready: head.age,
            oldest_unacked: self.unacked_ages.oldest(now.into_std()),
            head_timestamp: head.timestamp,
        }
    }

    /// A durable queue's id in the store and the offset its next message
    /// takes.
    pub(crate) fn store_position(&self) -> Option<(warren_store::QueueId, Offset)> {
        self.backend.store_position()
    }

    /// Tries again to deliver, e.g. after a channel-wide window opened.
    pub(crate) fn kick(self: &Arc<Self>) {
        self.backend.kick(self)
    }

    pub(crate) fn purge(self: &Arc<Self>) -> u64 {
        self.backend.purge(self)
    }

    /// Memory is high: pages out what is beyond the in-memory window (may
    /// block).
    pub(crate) fn relieve_memory(self: &Arc<Self>) {
        self.backend.relieve_memory(self)
    }

    /// Marks the queue deleted, cancels its consumers and returns how many
    /// ready messages it held. (The vhost removes it from its tables first.)
    pub(crate) fn delete(self: &Arc<Self>) -> u64 {
        self.backend.delete(self)
    }

    pub(crate) fn message_count(&self) -> u64 {
        self.backend.message_count()
    }

    pub(crate) fn consumer_count(&self) -> u64 {
        self.backend.consumer_count()
    }

    pub(crate) fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.backend.consumers()
    }

    /// Notes a use of the queue (redeclaration), for `x-expires`.
    pub(crate) fn touch(&self) {
        self.backend.touch()
    }

    /// The content header a delivery of `entry` goes out with.
    pub(crate) fn delivery_header<'a>(&self, entry: &'a QueueEntry) -> Cow<'a, ContentHeader> {
        match self.backend.added_header(entry) {
            Some(added) => Cow::Owned(added.added_to(&entry.message.header)),
            None => Cow::Borrowed(&entry.message.header),
        }
    }

    /// The header entry a delivery of `entry` goes out with besides the
    /// published ones, if any.
    pub(crate) fn added_header(&self, entry: &QueueEntry) -> Option<AddedHeader> {
        self.backend.added_header(entry)
    }

    /// Recovery at start: what the store held for this durable queue.
    pub(crate) fn restore(self: &Arc<Self>, summary: QueueSummary, delivered_below: Offset) {
        self.backend.restore(self, summary, delivered_below)
    }
}
