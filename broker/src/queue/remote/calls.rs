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
    /// settled; waits up to `wait_ms` for one when none is ready.
    Take {
        queue: QueueRef,
        holder: Holder,
        max: u32,
        wait_ms: u32,
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
    },
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
