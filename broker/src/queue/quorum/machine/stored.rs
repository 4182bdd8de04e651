//! A message as a quorum queue's machine holds it: the bytes the log
//! carried (`Message::encode`'s form), in memory, or paged out to this
//! node's store.
//!
//! Where a message's bytes are is this node's business, not the group's:
//! every member holds the same messages, each keeps the oldest in memory
//! and the rest in its own store (`paging.rs`), and applying a command
//! never depends on which. The log and the snapshots stay the durable
//! copy; a paged body is a cache, which the store drops when it restarts.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;

use crate::message::{Message, StoredBody};

/// A message the machine holds, its body's size noted. Only the node that
/// delivers or dead-letters it decodes it (a decoded message costs several
/// hundred bytes more, on every member, for as long as it waits).
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    bytes: Place,
    body_size: u64,
}

#[derive(Debug, Clone)]
enum Place {
    Memory(Bytes),
    /// In this node's store; the reference keeps it there.
    Paged(Arc<StoredBody>),
}

impl Stored {
    /// Checks the bytes and notes the body's size: None if they are not a
    /// message.
    pub(crate) fn new(bytes: Bytes) -> Option<(Stored, Arc<Message>)> {
        let message = Message::decode(bytes.clone())?;
        let body_size = message.body_size() as u64;
        Some((
            Stored {
                bytes: Place::Memory(bytes),
                body_size,
            },
            message,
        ))
    }

    /// A decoded message, stored again.
    pub(crate) fn of(message: &Message) -> Stored {
        Stored {
            bytes: Place::Memory(message.encode().into()),
            body_size: message.body_size() as u64,
        }
    }

    /// The message (its body shares the bytes). A paged message is read
    /// back here and now, telling the runtime this thread blocks: callers
    /// on the runtime's threads load it first (`loaded`). None if it does
    /// not decode or its stored copy cannot be read.
    pub(crate) fn decode(&self) -> Option<Arc<Message>> {
        match &self.bytes {
            Place::Memory(bytes) => Message::decode(bytes.clone()),
            Place::Paged(_) => crate::blocking::run(|| self.loaded())?.decode(),
        }
    }

    /// The message if it is in memory (None if paged, or not a message).
    pub(crate) fn decode_in_memory(&self) -> Option<Arc<Message>> {
        match &self.bytes {
            Place::Memory(bytes) => Message::decode(bytes.clone()),
            Place::Paged(_) => None,
        }
    }

    pub(crate) fn body_size(&self) -> u64 {
        self.body_size
    }

    /// The encoded form, read back from the store if paged (blocking).
    pub(crate) fn encoded(&self) -> std::io::Result<Cow<'_, [u8]>> {
        match &self.bytes {
            Place::Memory(bytes) => Ok(Cow::Borrowed(bytes)),
            Place::Paged(body) => body
                .read()
                .map(|bytes| Cow::Owned(bytes.to_vec()))
                .ok_or_else(|| std::io::Error::other(format!("stored message {} could not be read", body.id.0))),
        }
    }

    /// Whether its bytes are in this node's store only.
    pub(crate) fn is_paged(&self) -> bool {
        matches!(self.bytes, Place::Paged(_))
    }

    /// Its stored copy, if paged.
    pub(crate) fn paged(&self) -> Option<&Arc<StoredBody>> {
        match &self.bytes {
            Place::Paged(body) => Some(body),
            Place::Memory(_) => None,
        }
    }

    /// The same message paged out to `body` (its bytes, stored).
    pub(crate) fn paged_to(&self, body: StoredBody) -> Stored {
        Stored {
            bytes: Place::Paged(Arc::new(body)),
            body_size: self.body_size,
        }
    }

    /// The same message in memory again, from `bytes` read back.
    pub(crate) fn in_memory(&self, bytes: Bytes) -> Stored {
        Stored {
            bytes: Place::Memory(bytes),
            body_size: self.body_size,
        }
    }

    /// In memory: itself; paged: read back (blocking). None if the stored
    /// copy cannot be read.
    pub(crate) fn loaded(&self) -> Option<Stored> {
        match &self.bytes {
            Place::Memory(_) => Some(self.clone()),
            Place::Paged(body) => Some(self.in_memory(body.read()?)),
        }
    }

    /// The bytes, if in memory.
    pub(crate) fn memory_bytes(&self) -> Option<&[u8]> {
        match &self.bytes {
            Place::Memory(bytes) => Some(bytes),
            Place::Paged(_) => None,
        }
    }
}
