//! What a node asks of a classic queue's (or a stream's) home node over
//! the cluster port, and what the home answers: bincode both ways, opaque
//! to the cluster layer, which only carries them (`ClusterLink::call`).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// One life of one node: what a holder of taken messages is known by (a
/// node that restarts holds nothing of its earlier life).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Holder {
    pub node: String,
    pub boot: u64,
}

/// The queue a call is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct QueueRef {
    pub vhost: String,
    pub name: String,
}

/// How taken messages were settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Outcome {
    Ack,
    Requeue,
    Discard,
    /// Never reached a consumer: back in place, not a redelivery.
    Return,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Call {
    /// Publishes messages (`Message::encode`) to the queue; answered once
    /// they are stored (a persistent message in a durable queue: synced).
    Publish { queue: QueueRef, messages: Vec<ByteBuf> },
    /// Takes up to `max` ready messages for `holder`, held at home until
    /// settled; waits up to `wait_ms` for one when none is ready. Carries
    /// the holder's consumers of the queue, so a home that restarted knows
    /// them again.
    Take {
        queue: QueueRef,
        holder: Holder,
        /// The holder's number for this take, unique among all its takes
        /// of every queue (see `Release`).
        batch: u64,
        /// For the holder's consumers (not a basic.get): only while the
        /// home lets one of them receive (single active consumer; none
        /// cancelled since the take was sent).
        for_consumers: bool,
        max: u32,
        wait_ms: u32,
        consumers: ConsumerSet,
    },
    /// The answer to the holder's take `batch` never reached it: what that
    /// take held goes back in place, and the take holds nothing more if it
    /// is still running at home.
    Release {
        queue: QueueRef,
        holder: Holder,
        batch: u64,
    },
    /// The holder's consumers of the queue changed: the home stands them
    /// in among the queue's own (exclusive use, single active consumer,
    /// auto-delete, if-unused and the consumer count see every node's).
    Consumers {
        queue: QueueRef,
        holder: Holder,
        consumers: ConsumerSet,
    },
    /// Settles messages `holder` took (by the ids `Take` gave them).
    Settle {
        queue: QueueRef,
        holder: Holder,
        ids: Vec<u64>,
        outcome: Outcome,
    },
    /// How many messages are ready and how many consume them at home.
    Depth { queue: QueueRef },
    /// Drops the ready messages; answers how many.
    Purge { queue: QueueRef },
}

/// One node's consumers of one queue, as of `version` (which grows with
/// every change there): the home applies a set only if it is newer than
/// the last it applied, so calls that overtake one another do no harm.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ConsumerSet {
    pub version: u64,
    pub consumers: Vec<RemoteConsumer>,
}

/// A consumer on another node, as its queue's home needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RemoteConsumer {
    /// What its node knows it by (unique there for the node's life).
    pub key: u64,
    pub tag: String,
    pub exclusive: bool,
    pub priority: i64,
}

/// What the home says of a node's consumers after applying their set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ConsumerStatus {
    /// Those that may receive now (with a single active consumer, at most
    /// one; otherwise all the home knows).
    pub active: Vec<u64>,
    /// Those the queue refused (another consumer holds it exclusively):
    /// their node cancels them.
    pub refused: Vec<u64>,
}

/// A message taken from the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Taken {
    /// What the holder settles it by.
    pub id: u64,
    pub message: ByteBuf,
    pub redelivered: bool,
    pub delivery_count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Answer {
    /// Per message published: whether it was stored (false: refused, as
    /// reject-publish or a failed disk refuses; the publisher gets a nack).
    Published(Vec<bool>),
    Taken {
        messages: Vec<Taken>,
        ready: u64,
        consumers: ConsumerStatus,
    },
    Consumers(ConsumerStatus),
    Done,
    Depth {
        ready: u64,
        consumers: u64,
    },
    Purged(u64),
    /// The queue is not (or no longer) on that node.
    NotFound,
    Failed(String),
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain types into a Vec cannot fail.
    bincode::serialize(value).unwrap_or_default()
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    bincode::deserialize(bytes).ok()
}
