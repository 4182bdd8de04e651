//! A published message, shared by every queue it was routed to, and its
//! form in the store.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
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
    /// Its id in the store, once a durable queue stored it. The body is
    /// stored once, however many durable queues hold the message.
    pub store_id: OnceLock<u64>,
    /// How many durable queue entries refer to the stored body; the last
    /// one to go deletes it.
    pub store_refs: AtomicU32,
}

/// Version byte of the stored form.
const STORED_FORMAT: u8 = 1;

impl Message {
    pub fn new(exchange: ShortStr, routing_key: ShortStr, header: ContentHeader, body: Bytes) -> Arc<Message> {
        Arc::new(Message {
            exchange,
            routing_key,
            header,
            body,
            store_id: OnceLock::new(),
            store_refs: AtomicU32::new(0),
        })
    }

    pub fn is_persistent(&self) -> bool {
        self.header.properties().is_persistent()
    }

    /// The per-message TTL from the `expiration` property, in milliseconds.
    /// The channel refuses invalid values at publish, so anything else here
    /// is treated as no TTL.
    pub fn expiration_ms(&self) -> Option<u64> {
        let text = self.header.properties().expiration.as_ref()?;
        // Validated at publish: only "-0" can carry a minus sign.
        text.trim_start_matches(['+', '-']).parse().ok()
    }

    pub fn body_size(&self) -> usize {
        self.body.len()
    }

    /// Adds a reference from a durable queue entry.
    pub fn add_store_ref(&self) {
        self.store_refs.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops a reference; true if it was the last (delete the stored body).
    pub fn release_store_ref(&self) -> bool {
        self.store_refs
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok_and(|before| before == 1)
    }

    /// The stored form: version, exchange, routing key, header frame payload
    /// (length-prefixed), body.
    pub fn encode_for_store(&self) -> Vec<u8> {
        let mut buf = BytesMut::with_capacity(self.body.len() + 128);
        buf.put_u8(STORED_FORMAT);
        for s in [&self.exchange, &self.routing_key] {
            buf.put_u8(s.len() as u8);
            buf.put_slice(s.as_str().as_bytes());
        }
        let mut header = BytesMut::new();
        self.header.encode(&mut header);
        buf.put_u32(header.len() as u32);
        buf.put_slice(&header);
        buf.put_slice(&self.body);
        buf.to_vec()
    }

    /// Reads a stored message back; None if the bytes are not a valid one.
    pub fn decode_from_store(bytes: Vec<u8>) -> Option<Arc<Message>> {
        let bytes = Bytes::from(bytes);
        if *bytes.first()? != STORED_FORMAT {
            return None;
        }
        let mut pos = 1;
        let short = |pos: &mut usize| -> Option<ShortStr> {
            let len = usize::from(*bytes.get(*pos)?);
            let s = ShortStr::from_bytes(bytes.slice(*pos + 1..(*pos + 1 + len).min(bytes.len())))?;
            *pos += 1 + len;
            Some(s)
        };
        let exchange = short(&mut pos)?;
        let routing_key = short(&mut pos)?;
        let header_len = u32::from_be_bytes(bytes.get(pos..pos + 4)?.try_into().ok()?) as usize;
        pos += 4;
        let header = ContentHeader::decode(&bytes.slice(pos..(pos + header_len).min(bytes.len()))).ok()?;
        pos += header_len;
        let body = bytes.slice(pos.min(bytes.len())..);
        if body.len() as u64 != header.body_size {
            return None;
        }
        Some(Message::new(exchange, routing_key, header, body))
    }
}
