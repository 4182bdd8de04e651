//! What the broker needs from a cluster: a metadata log. In a cluster every
//! change to the definitions is proposed to the log instead of being made at
//! once; once the change is committed on a majority of the nodes, each node
//! applies it (through `Admin::apply_change`), in the log's order, so every
//! node holds the same definitions. A single node has no log and applies a
//! change as soon as it is checked.
//!
//! The cluster layer (the `warren-cluster` crate, above the broker)
//! implements [`MetadataLog`]; the broker only calls it.

use std::future::Future;
use std::pin::Pin;

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
    /// Sets (Some) or clears (None) a vhost's (`vhost`) or a user's limit.
    SetLimit {
        vhost: bool,
        name: String,
        limit: String,
        value: Option<i64>,
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

/// The cluster's metadata log, as the broker sees it.
pub trait MetadataLog: Send + Sync + 'static {
    /// Proposes a change to every node.
    fn propose(&self, change: MetadataChange) -> Proposal;
    /// The cluster's members and their state.
    fn members(&self) -> Vec<MemberView>;
}
