//! A published message, shared by every queue it was routed to.

use std::sync::Arc;

use bytes::Bytes;
use warren_protocol::{ContentHeader, ShortStr};

/// What a publisher sent: the exchange and routing key it was published
/// with, its content header and its body. Immutable once routed; queues and
/// deliveries share it through an `Arc`, and its body is never copied.
#[derive(Debug)]
pub struct Message {
    pub exchange: ShortStr,
    pub routing_key: ShortStr,
    pub header: ContentHeader,
    pub body: Bytes,
}

impl Message {
    pub fn new(exchange: ShortStr, routing_key: ShortStr, header: ContentHeader, body: Bytes) -> Arc<Message> {
        Arc::new(Message {
            exchange,
            routing_key,
            header,
            body,
        })
    }

    pub fn is_persistent(&self) -> bool {
        self.header.properties().is_persistent()
    }

    /// The per-message TTL from the `expiration` property, in milliseconds.
    /// The channel refuses invalid values at publish, so anything else here
    /// is treated as no TTL.
    pub fn expiration_ms(&self) -> Option<u64> {
        self.header.properties().expiration.as_ref()?.parse().ok()
    }

    pub fn body_size(&self) -> usize {
        self.body.len()
    }
}
