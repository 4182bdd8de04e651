//! A quorum queue machine written out: the image of a Raft snapshot, and
//! the machine rebuilt from one.
//!
//! A snapshot is taken between two applies, but written later, off the
//! runtime: `Machine::view` copies what the machine knows at that moment
//! (its messages shared, not copied), and the view writes each message
//! (as the log carried it) straight into the file, so an image is never
//! whole in memory while it is written.

use std::io::Write;

use bytes::Bytes;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{ConsumerKey, Held, Machine, NodeLife, Seq, Stored};
use crate::replication::MachineImage;

/// One message in an image: its place, delivery count, expiry, holder.
type ImageMessage = (Seq, u32, Option<u64>, Option<NodeLife>, ByteBuf);

/// A message as a view keeps it.
type ViewMessage = (Seq, u32, Option<u64>, Option<NodeLife>, Stored);

/// The machine at one moment, to be written out.
pub(crate) struct ImageView {
    next_seq: Seq,
    now_ms: u64,
    messages: Vec<ViewMessage>,
    attached: Vec<ConsumerKey>,
    once: Vec<(NodeLife, u64)>,
    consumers: Vec<ConsumerKey>,
    last_used_ms: u64,
}

/// A view as an image is written: `Image`'s fields in its order.
#[derive(Serialize)]
struct ImageOut<'a> {
    next_seq: Seq,
    now_ms: u64,
    messages: Messages<'a>,
    attached: &'a [ConsumerKey],
    once: &'a [(NodeLife, u64)],
    consumers: &'a [ConsumerKey],
    last_used_ms: u64,
}

/// A view's messages, each as an `ImageMessage`.
struct Messages<'a>(&'a [ViewMessage]);

impl Serialize for Messages<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .iter()
                .map(|(seq, count, expires, holder, message)| (seq, count, expires, holder, Encoded(message))),
        )
    }
}

/// A message in its encoded form, as a byte string.
struct Encoded<'a>(&'a Stored);

impl Serialize for Encoded<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A paged message is read back from this node's store (an image
        // is written off the runtime).
        let bytes = self.0.encoded().map_err(serde::ser::Error::custom)?;
        serializer.serialize_bytes(&bytes)
    }
}

/// An image as it is read back.
#[derive(Deserialize)]
struct Image {
    next_seq: Seq,
    now_ms: u64,
    messages: Vec<ImageMessage>,
    attached: Vec<ConsumerKey>,
    once: Vec<(NodeLife, u64)>,
    consumers: Vec<ConsumerKey>,
    last_used_ms: u64,
}

impl ImageView {
    fn out(&self) -> ImageOut<'_> {
        ImageOut {
            next_seq: self.next_seq,
            now_ms: self.now_ms,
            messages: Messages(&self.messages),
            attached: &self.attached,
            once: &self.once,
            consumers: &self.consumers,
            last_used_ms: self.last_used_ms,
        }
    }
}

impl MachineImage for ImageView {
    fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        bincode::serialize_into(out, &self.out()).map_err(std::io::Error::other)
    }
}

impl Machine {
    /// What the machine holds now, for an image written later.
    pub(crate) fn view(&self) -> ImageView {
        ImageView {
            next_seq: self.next_seq,
            now_ms: self.now_ms,
            messages: self
                .messages
                .iter()
                .map(|(seq, held)| {
                    (
                        *seq,
                        held.delivery_count,
                        held.expires_at,
                        self.holders.get(seq).cloned(),
                        held.message.clone(),
                    )
                })
                .collect(),
            attached: self.attached.clone(),
            once: self.once.iter().map(|(life, id)| (life.clone(), *id)).collect(),
            consumers: self.consumers.iter().cloned().collect(),
            last_used_ms: self.last_used_ms,
        }
    }

    /// The whole machine as bytes.
    #[cfg(test)]
    pub(crate) fn image(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.view().write(&mut out).expect("an image writes to memory");
        out
    }

    /// The machine an image describes; None if the bytes are not one.
    pub(crate) fn from_image(bytes: &[u8]) -> Option<Machine> {
        let image: Image = bincode::deserialize(bytes).ok()?;
        let mut machine = Machine {
            next_seq: image.next_seq,
            now_ms: image.now_ms,
            attached: image.attached,
            once: image.once.into_iter().collect(),
            consumers: image.consumers.into_iter().collect(),
            last_used_ms: image.last_used_ms,
            ..Machine::default()
        };
        for (seq, delivery_count, expires_at, holder, bytes) in image.messages {
            let (message, _) = Stored::new(Bytes::from(bytes.into_vec()))?;
            match holder {
                Some(life) => {
                    machine.holders.insert(seq, life);
                }
                None => {
                    machine.ready_bytes += message.body_size();
                    machine.ready.insert(seq);
                }
            }
            machine.messages.insert(
                seq,
                Held {
                    message,
                    delivery_count,
                    expires_at,
                },
            );
        }
        Some(machine)
    }
}
