//! A published message, shared by every queue it was routed to, and its
//! form in the store.

use std::sync::{Arc, OnceLock};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use warren_protocol::{ContentHeader, FieldTable, FieldValue, ShortStr};
use warren_store::{MessageId, Store, StoreResult};

/// What a publisher sent: the exchange and routing key it was published
/// with, its content header and its body. Immutable once routed; queues and
/// deliveries share it through an `Arc`, and its body is never copied.
#[derive(Debug)]
pub(crate) struct Message {
    pub exchange: ShortStr,
    pub routing_key: ShortStr,
    pub header: ContentHeader,
    pub body: Bytes,
    /// Its body in the store, once a durable queue stored it. The body is
    /// stored once, however many durable queues hold the message.
    pub stored: OnceLock<StoredBody>,
    /// What its decoded `headers` table takes in memory, roughly.
    headers_footprint: usize,
}

/// This in-memory message's reference to its stored body: the body stays
/// on disk while the message is in memory anywhere (a queue's window, a
/// delivery waiting for its ack), even once no queue index holds it.
pub(crate) struct StoredBody {
    pub id: MessageId,
    store: Arc<dyn Store>,
}

impl StoredBody {
    /// Stores `bytes` as a message of their own, held by the answer.
    pub(crate) fn write(store: &Arc<dyn Store>, bytes: &[u8]) -> StoreResult<StoredBody> {
        let id = store.append_message(&[bytes])?;
        Ok(StoredBody {
            id,
            store: store.clone(),
        })
    }

    /// Its bytes, read from the store (blocking); None if they cannot be.
    pub(crate) fn read(&self) -> Option<Bytes> {
        match self.store.message(self.id) {
            Ok(Some(bytes)) => Some(Bytes::from(bytes)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!("reading stored message {}: {e}", self.id.0);
                None
            }
        }
    }

    /// The bytes of several stored messages, read together (blocking).
    pub(crate) fn read_many(bodies: &[&StoredBody]) -> Vec<Option<Bytes>> {
        let Some(first) = bodies.first() else {
            return Vec::new();
        };
        let ids: Vec<MessageId> = bodies.iter().map(|b| b.id).collect();
        match first.store.messages(&ids) {
            Ok(read) => read,
            // One bad record fails a read of many: each on its own, so
            // only what is bad is missing.
            Err(e) => {
                tracing::error!(
                    "reading {} stored messages together: {e}; reading them one by one",
                    ids.len()
                );
                bodies.iter().map(|body| body.read()).collect()
            }
        }
    }
}

impl Drop for StoredBody {
    fn drop(&mut self) {
        self.store.release_message(self.id);
    }
}

impl std::fmt::Debug for StoredBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredBody")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A decoded header value in memory: its key and the value.
const HEADER_VALUE_FOOTPRINT: usize = std::mem::size_of::<(ShortStr, FieldValue)>();

/// Version byte of the stored form.
const STORED_FORMAT: u8 = 1;

impl Message {
    pub(crate) fn new(exchange: ShortStr, routing_key: ShortStr, header: ContentHeader, body: Bytes) -> Arc<Message> {
        let values = header.properties().headers.as_ref().map_or(0, FieldTable::value_count);
        Arc::new(Message {
            exchange,
            routing_key,
            header,
            body,
            stored: OnceLock::new(),
            headers_footprint: values * HEADER_VALUE_FOOTPRINT,
        })
    }

    /// What it takes in memory, roughly: its body and its decoded headers
    /// (a header value can take one byte on the wire and tens in memory,
    /// so a queue's window is bounded by this, not by body bytes alone).
    pub(crate) fn footprint(&self) -> usize {
        self.body.len() + self.headers_footprint
    }

    pub(crate) fn is_persistent(&self) -> bool {
        self.header.properties().is_persistent()
    }

    /// The per-message TTL from the `expiration` property, in milliseconds.
    /// The channel refuses invalid values at publish, so anything else here
    /// is treated as no TTL.
    pub(crate) fn expiration_ms(&self) -> Option<u64> {
        let text = self.header.properties().expiration.as_ref()?;
        // Validated at publish: only "-0" can carry a minus sign.
        text.trim_start_matches(['+', '-']).parse().ok()
    }

    /// How long it may wait in a queue whose message TTL is `queue_ttl`:
    /// the shorter of that and its own expiration, in milliseconds.
    pub(crate) fn ttl_in(&self, queue_ttl: Option<u64>) -> Option<u64> {
        match (queue_ttl, self.expiration_ms()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn body_size(&self) -> usize {
        self.body.len()
    }

    /// The id of its stored body, storing it first if no queue has yet.
    pub(crate) fn store_body(&self, store: &Arc<dyn Store>) -> StoreResult<MessageId> {
        if let Some(stored) = self.stored.get() {
            return Ok(stored.id);
        }
        let head = self.stored_head();
        let id = store.append_message(&[&head, &self.body])?;
        let body = StoredBody {
            id,
            store: store.clone(),
        };
        // Routing stores a message from one task at a time, so the cell is
        // empty here; if it were not, `body` is dropped and released.
        Ok(self.stored.get_or_init(|| body).id)
    }

    /// The id of its stored body, if it has one.
    pub(crate) fn store_id(&self) -> Option<MessageId> {
        self.stored.get().map(|s| s.id)
    }

    /// What the store keeps in front of the body: version, exchange,
    /// routing key, header frame payload (length-prefixed).
    fn stored_head(&self) -> BytesMut {
        let mut buf = BytesMut::with_capacity(128);
        buf.put_u8(STORED_FORMAT);
        for s in [&self.exchange, &self.routing_key] {
            buf.put_u8(s.len() as u8);
            buf.put_slice(s.as_str().as_bytes());
        }
        // The header is encoded in place behind its length, patched after.
        let length_at = buf.len();
        buf.put_u32(0);
        self.header.encode(&mut buf);
        let length = (buf.len() - length_at - 4) as u32;
        buf[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        buf
    }

    /// The message stored as `id`, from the bytes read for it; it holds a
    /// reference to its stored body. None if the bytes are not a message or
    /// the body went meanwhile.
    pub(crate) fn from_stored(store: &Arc<dyn Store>, id: MessageId, bytes: Bytes) -> Option<Arc<Message>> {
        let message = Message::decode(bytes)?;
        if !store.retain_message(id) {
            return None;
        }
        let _ = message.stored.set(StoredBody {
            id,
            store: store.clone(),
        });
        Some(message)
    }

    /// The message as one block of bytes (the stored form: head, then
    /// body), as a replicated queue's log carries it.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut bytes = self.stored_head();
        bytes.extend_from_slice(&self.body);
        bytes.into()
    }

    /// Parses the stored form (what the store keeps, what `encode`
    /// writes); None if the bytes are not a valid one.
    pub(crate) fn decode(bytes: impl Into<Bytes>) -> Option<Arc<Message>> {
        // Strings and a short property list are copied out and the body
        // is the buffer itself, advanced: a replayed message costs its
        // (shared) read buffer no reference count traffic here.
        let mut body: Bytes = bytes.into();
        if *body.first()? != STORED_FORMAT {
            return None;
        }
        let mut pos = 1;
        let short = |pos: &mut usize| -> Option<ShortStr> {
            let len = usize::from(*body.get(*pos)?);
            let s = ShortStr::from_utf8(body.get(*pos + 1..*pos + 1 + len)?)?;
            *pos += 1 + len;
            Some(s)
        };
        let exchange = short(&mut pos)?;
        let routing_key = short(&mut pos)?;
        let header_len = u32::from_be_bytes(body.get(pos..pos + 4)?.try_into().ok()?) as usize;
        pos += 4;
        let header = ContentHeader::decode_within(&body, pos..pos + header_len).ok()?;
        body.advance((pos + header_len).min(body.len()));
        if body.len() as u64 != header.body_size {
            return None;
        }
        Some(Message::new(exchange, routing_key, header, body))
    }
}
