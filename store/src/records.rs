//! The records the store keeps, serialised with serde.

use serde::{Deserialize, Serialize};

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
    pub id: u64,
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

/// A message's place in a durable queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRecord {
    pub message: u64,
    pub delivery_count: u32,
}

impl EntryRecord {
    pub(crate) fn to_bytes(self) -> [u8; 12] {
        let mut out = [0; 12];
        out[..8].copy_from_slice(&self.message.to_be_bytes());
        out[8..].copy_from_slice(&self.delivery_count.to_be_bytes());
        out
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<EntryRecord> {
        let message = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let delivery_count = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?);
        Some(EntryRecord {
            message,
            delivery_count,
        })
    }
}

/// Everything needed to rebuild the broker's topology at start.
#[derive(Debug, Default, Clone)]
pub struct Definitions {
    pub vhosts: Vec<String>,
    pub exchanges: Vec<ExchangeRecord>,
    pub queues: Vec<QueueRecord>,
    pub bindings: Vec<BindingRecord>,
}
