//! The records the store keeps, serialised with serde.

use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, Offset, QueueId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeRecord {
    pub vhost: String,
    pub name: String,
    pub kind: String,
    pub auto_delete: bool,
    pub internal: bool,
    /// The declaration's arguments, as an encoded AMQP field table.
    pub arguments: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueRecord {
    pub vhost: String,
    pub name: String,
    /// The id its message index is kept under.
    pub id: QueueId,
    pub auto_delete: bool,
    /// The declaration's arguments, as an encoded AMQP field table.
    pub arguments: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingRecord {
    pub vhost: String,
    pub source: String,
    /// "queue" or "exchange".
    pub destination_kind: String,
    pub destination: String,
    pub routing_key: String,
    /// The binding's arguments, as an encoded AMQP field table.
    pub arguments: Vec<u8>,
}

/// A message's place in a durable queue: the index entry under
/// (queue id, offset). It carries what the queue needs to account for the
/// message while its body stays on disk (paged out): its size and its
/// expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRecord {
    /// The id of the stored body ([`crate::Store::append_message`]).
    pub message: MessageId,
    /// How many times it was delivered and came back (quorum queues).
    pub delivery_count: u32,
    /// The body's size in bytes, for length limits in bytes.
    pub body_size: u64,
    /// When its TTL runs out, in milliseconds since the Unix epoch (0: never).
    pub expires_at_ms: u64,
    /// A transient message written only because its queue was paging to
    /// disk: it does not survive a restart.
    pub transient: bool,
    /// The message's priority property (0 when it has none), so a priority
    /// queue can read back one level's messages without their bodies. None
    /// in entries written before it was kept.
    pub priority: Option<u8>,
}

/// What the store found of one durable queue's index when it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSummary {
    /// Entries (ready or unacknowledged messages) it holds.
    pub count: u64,
    /// Their body bytes.
    pub bytes: u64,
    /// The lowest offset held, and one past the highest.
    pub first_offset: Offset,
    pub next_offset: Offset,
}

impl QueueSummary {
    /// Counts in `count` entries at offsets `offset..offset + count`, above
    /// every offset counted so far.
    pub(crate) fn add_run(&mut self, offset: u64, count: u64) {
        if count == 0 {
            return;
        }
        if self.count == 0 {
            self.first_offset = Offset(offset);
        }
        self.count += count;
        self.next_offset = Offset(offset + count);
    }
}

/// Everything needed to rebuild the broker's topology at start.
#[derive(Debug, Default, Clone)]
pub struct Definitions {
    pub vhosts: Vec<String>,
    pub exchanges: Vec<ExchangeRecord>,
    pub queues: Vec<QueueRecord>,
    pub bindings: Vec<BindingRecord>,
    /// Access and configuration records, as (key, value), in key order.
    pub settings: Vec<(String, Vec<u8>)>,
}
