//! Records the store tests build again and again.

use warren_store::{EntryRecord, MessageId, QueueId, QueueRecord};

/// The definition of durable queue `q{id}` in vhost `/`.
pub fn queue(id: u64) -> QueueRecord {
    QueueRecord {
        vhost: "/".into(),
        name: format!("q{id}"),
        id: QueueId(id),
        auto_delete: false,
        arguments: vec![],
    }
}

/// An index entry for a persistent message with no TTL.
pub fn entry(message: MessageId, body_size: u64) -> EntryRecord {
    EntryRecord {
        message,
        delivery_count: 0,
        body_size,
        expires_at_ms: 0,
        transient: false,
        priority: Some(0),
    }
}
