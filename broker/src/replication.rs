//! What the broker needs from a cluster ([`ClusterLink`]): a metadata log
//! and a Raft group per replicated queue.
//!
//! In a cluster every change to the definitions is proposed to the metadata
//! log instead of being made at once; once the change is committed on a
//! majority of the nodes, each node applies it (through
//! `Admin::apply_committed`), in the log's order, so every node holds the
//! same definitions. A single node has no log and applies a change as soon
//! as it is checked.
//!
//! A replicated queue hands its state machine ([`ReplicatedMachine`]) to a
//! group of its own ([`ReplicatedGroup`]): commands proposed to the group
//! are applied to the machine on every member, in the same order.
//!
//! The cluster layer (the `warren-cluster` crate, above the broker)
//! implements these traits; the broker only calls them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A change to the replicated definitions. Each is checked before it is
/// proposed, so applying it on every node gives the same result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MetadataChange {
    /// Names the cluster (`PUT /api/cluster-name`).
    ClusterName(String),
    /// Creates a vhost or replaces its metadata; a new vhost's `creator`
    /// gets every permission on it.
    PutVhost {
        name: String,
        description: String,
        tags: Vec<String>,
        default_queue_type: Option<String>,
        creator: Option<String>,
    },
    DeleteVhost {
        name: String,
    },
    /// Creates or replaces a user (its password already hashed, so every
    /// node keeps the same salt).
    PutUser {
        name: String,
        password_hash: String,
        hashing_algorithm: String,
        tags: Vec<String>,
    },
    DeleteUser {
        name: String,
    },
    SetPermissions {
        vhost: String,
        user: String,
        configure: String,
        write: String,
        read: String,
    },
    ClearPermissions {
        vhost: String,
        user: String,
    },
    SetTopicPermissions {
        vhost: String,
        user: String,
        exchange: String,
        write: String,
        read: String,
    },
    /// Clears one exchange's topic permissions, or all of them.
    ClearTopicPermissions {
        vhost: String,
        user: String,
        exchange: Option<String>,
    },
    /// Adds or replaces a policy (`operator`: an operator policy); the
    /// definition as JSON text.
    PutPolicy {
        operator: bool,
        vhost: String,
        name: String,
        pattern: String,
        apply_to: String,
        priority: i64,
        definition: String,
    },
    DeletePolicy {
        operator: bool,
        vhost: String,
        name: String,
    },
    /// Declares a replicated (quorum) queue on every node; its arguments
    /// as the store encodes a field table.
    DeclareQueue {
        vhost: String,
        name: String,
        arguments: Vec<u8>,
    },
    /// Deletes a replicated queue on every node.
    DeleteQueue {
        vhost: String,
        name: String,
    },
    /// Declares an exchange on every node (arguments encoded as above).
    DeclareExchange {
        vhost: String,
        name: String,
        kind: String,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: Vec<u8>,
    },
    DeleteExchange {
        vhost: String,
        name: String,
    },
    /// Binds (`bound`) or unbinds an exchange to another exchange
    /// (`to_queue` false) or to a replicated queue, on every node.
    Binding {
        bound: bool,
        vhost: String,
        source: String,
        to_queue: bool,
        destination: String,
        routing_key: String,
        arguments: Vec<u8>,
    },
    /// Sets (Some) or clears (None) a vhost's (`vhost`) or a user's limit.
    SetLimit {
        vhost: bool,
        name: String,
        limit: String,
        value: Option<i64>,
    },
    /// Declares a classic queue on every node: it lives on
    /// `home` (the node it was declared on, as in RabbitMQ); the others
    /// know it, route to it and forward to it over the cluster port.
    /// (Added after the others: the log encodes a change by its variant's position.)
    DeclareHomedQueue {
        vhost: String,
        name: String,
        home: String,
        durable: bool,
        auto_delete: bool,
        arguments: Vec<u8>,
    },
    /// Deletes on every node the non-durable classic queues whose home is
    /// `home`: it started again, and they died with its earlier life (as
    /// RabbitMQ's do with their node). `queue::remote::earlier_lives`.
    /// (Added last, for the same reason as above.)
    ForgetTransientQueues {
        home: String,
    },
}

/// Why a change could not be made through the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicationError {
    /// No majority answers (no leader, or the leader cannot commit).
    #[error("the cluster cannot commit changes now: {0}")]
    Unavailable(String),
}

/// A proposal on its way through the log: resolves once the change is
/// committed and applied on this node.
pub type Proposal = Pin<Box<dyn Future<Output = Result<(), ReplicationError>> + Send>>;

/// A cluster member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    /// The member's node name.
    pub name: String,
    /// Its cluster address (HOST:PORT).
    pub address: String,
    /// Whether it answered lately (this node always does).
    pub running: bool,
    /// Whether it leads the metadata log now, as far as this node knows.
    pub leader: bool,
    /// Whether it is this node.
    pub this_node: bool,
}

/// The cluster, as the broker sees it.
pub trait ClusterLink: Send + Sync + std::fmt::Debug + 'static {
    /// Proposes a change to every node's definitions.
    fn propose(&self, change: MetadataChange) -> Proposal;
    /// The cluster's members and their state.
    fn members(&self) -> Vec<MemberView>;
    /// This node's name, and the number it drew when it started (each
    /// life of a node has its own).
    fn this_node(&self) -> (String, u64);
    /// Sends `request` to the broker of member `node` (which answers it
    /// through `Admin::answer_call`) and returns its answer.
    fn call(&self, node: &str, request: Vec<u8>) -> Replied;
    /// Whether member `node` answers now (this node always does).
    fn is_running(&self, node: &str) -> bool;
    /// Joins (starting it here on first use) the Raft group `group`, which
    /// every member runs, to drive `machine`: `size` members vote in it
    /// (`x-quorum-initial-group-size`; every member when None), the others
    /// follow it without voting.
    fn join_group(
        &self,
        group: &str,
        size: Option<std::num::NonZeroUsize>,
        machine: Arc<dyn ReplicatedMachine>,
    ) -> Arc<dyn ReplicatedGroup>;
}

/// What a group's leader writes on every entry it appends: its clock and
/// which life of which node it is, so that a machine's sense of time (a
/// TTL running out) is the same on every member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderStamp {
    /// The leader's clock, ms since the Unix epoch.
    pub at_ms: u64,
    pub node: String,
    pub boot: u64,
}

/// A replicated state machine, driven by its group's log. Deterministic:
/// the same entries in the same order leave every member in one state.
pub trait ReplicatedMachine: Send + Sync + 'static {
    /// Applies one committed entry, stamped by the leader that wrote it;
    /// returns the answer for its proposer.
    fn apply(&self, stamp: &LeaderStamp, entry: &[u8]) -> Vec<u8>;
    /// The whole state as it is now (between two applies), to be written
    /// out later as a Raft snapshot's image: later applies do not change
    /// it. Cheap: what it shares with the machine is not copied.
    fn image(&self) -> Box<dyn MachineImage>;
    /// Replaces the state with an image.
    fn restore(&self, image: &[u8]);
}

/// A machine's state taken for a snapshot, written out off the runtime.
pub trait MachineImage: Send + Sync + 'static {
    /// Writes the image to `out` (blocking: a file).
    fn write(&self, out: &mut dyn std::io::Write) -> std::io::Result<()>;
}

/// An entry on its way through a group's log: resolves to the machine's
/// answer once it is committed (and applied on the leader).
pub type Replied = Pin<Box<dyn Future<Output = Result<Vec<u8>, ReplicationError>> + Send>>;

/// Where a replicated queue's copies are, as this member sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replicas {
    /// The member that leads its group, if one is known.
    pub leader: Option<String>,
    pub members: Vec<String>,
    /// The members that answer.
    pub online: Vec<String>,
}

/// A replicated queue's Raft group, as this member sees it.
pub trait ReplicatedGroup: Send + Sync + 'static {
    fn propose(&self, entry: Vec<u8>) -> Replied;
    fn replicas(&self) -> Replicas;
    /// Stops the group here and deletes its log (the queue is deleted).
    fn leave(&self);
}
