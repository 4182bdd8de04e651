//! A replicated quorum queue's state machine: what every member of the
//! queue's Raft group holds, changed only by commands from the log, so that
//! applying the same commands in the same order gives every member the same
//! queue. It is deterministic: no clocks, no randomness, no I/O.
//!
//! Messages wait in `ready` in the order of their sequence numbers (a
//! returned message goes back to its place). A node takes messages for its
//! own consumers with `Checkout`: the machine hands it the head of the
//! queue and notes which node holds each message, so a message is never
//! handed to two nodes at once. `Settle` acks, returns or discards what a
//! node holds; `Reset` returns everything a node's earlier life held (it
//! restarted, or died). Which of a node's consumers gets a message, with
//! what prefetch, is the node's own business (`replicated.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::message::Message;

/// One life of a node: its name and the number it drew when it started.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct NodeLife {
    pub node: String,
    pub boot: u64,
}

/// A message's place in the queue, in publish order.
pub(crate) type Seq = u64;

/// What a node did with messages it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// Done with: removed.
    Ack,
    /// Back to the queue, delivered once more (`x-delivery-count` + 1).
    Return,
    /// Rejected without requeue: removed.
    Discard,
    /// Back to the queue, never delivered (it waited on a node whose
    /// consumers went): not counted as a delivery.
    Release,
}

/// A change to the queue, as the log carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Command {
    /// New messages (each in `Message::encode`'s form).
    Enqueue { messages: Vec<ByteBuf> },
    /// Up to `max` messages from the head for `node`'s consumers.
    Checkout { node: NodeLife, max: u32 },
    /// `limit`: returned more often than this, a message dies
    /// (`x-delivery-limit`), as do discarded ones; the settling node
    /// dead-letters them.
    Settle {
        node: NodeLife,
        seqs: Vec<Seq>,
        outcome: Outcome,
        limit: Option<u64>,
    },
    /// Returns what lives of `node` other than `keep` held (`keep` 0:
    /// every life's).
    Reset { node: String, keep: u64 },
    /// Drops every ready message.
    Purge,
}

/// What a command did, for the node that proposed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Reply {
    Enqueued,
    CheckedOut(Vec<Seq>),
    Settled(u64),
    Reset(u64),
    Purged(u64),
    /// The command could not be read (a newer build's, or damaged).
    Unreadable,
}

/// A message as the machine holds it.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub message: Arc<Message>,
    /// How many times it was returned.
    pub delivery_count: u32,
}

/// What applying a command asks one node to do.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Deliver these messages (a checkout handed them over).
    Deliver { node: NodeLife, messages: Vec<(Seq, Held)> },
    /// Dead-letter this message (discarded, or past the delivery limit).
    DeadLetter { node: NodeLife, held: Held, reason: Death },
}

impl Effect {
    pub(crate) fn node(&self) -> &NodeLife {
        match self {
            Effect::Deliver { node, .. } | Effect::DeadLetter { node, .. } => node,
        }
    }
}

/// Why a message died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Death {
    Rejected,
    DeliveryLimit,
}

/// The replicated queue.
#[derive(Debug, Default)]
pub(crate) struct Machine {
    next_seq: Seq,
    messages: BTreeMap<Seq, Held>,
    ready: BTreeSet<Seq>,
    holders: BTreeMap<Seq, NodeLife>,
    ready_bytes: u64,
}

/// The machine written out (a Raft snapshot).
#[derive(Serialize, Deserialize)]
struct Image {
    next_seq: Seq,
    messages: Vec<(Seq, u32, Option<NodeLife>, ByteBuf)>,
}

impl Machine {
    /// Applies one command; what it asks of nodes (deliveries, dead
    /// letters) is added to `effects` (the caller does what is meant for its
    /// own node).
    pub(crate) fn apply(&mut self, command: Command, effects: &mut Vec<Effect>) -> Reply {
        match command {
            Command::Enqueue { messages } => {
                for bytes in messages {
                    // A message that does not decode was refused by the
                    // proposer's own encoder; it cannot be here. Skipped.
                    if let Some(message) = Message::decode(bytes.into_vec()) {
                        let seq = self.next_seq;
                        self.next_seq += 1;
                        self.ready_bytes += message.body_size() as u64;
                        self.messages.insert(
                            seq,
                            Held {
                                message,
                                delivery_count: 0,
                            },
                        );
                        self.ready.insert(seq);
                    }
                }
                Reply::Enqueued
            }
            Command::Checkout { node, max } => {
                let mut seqs = Vec::new();
                let mut messages = Vec::new();
                while seqs.len() < max as usize {
                    let Some(seq) = self.ready.pop_first() else { break };
                    let Some(held) = self.messages.get(&seq) else { continue };
                    self.ready_bytes -= held.message.body_size() as u64;
                    self.holders.insert(seq, node.clone());
                    messages.push((seq, held.clone()));
                    seqs.push(seq);
                }
                if !messages.is_empty() {
                    effects.push(Effect::Deliver { node, messages });
                }
                Reply::CheckedOut(seqs)
            }
            Command::Settle {
                node,
                seqs,
                outcome,
                limit,
            } => {
                let mut settled = 0;
                for seq in seqs {
                    // Only the holder settles: a node whose messages were
                    // returned (it was thought dead) settles nothing.
                    if self.holders.get(&seq) != Some(&node) {
                        continue;
                    }
                    self.holders.remove(&seq);
                    settled += 1;
                    let died = match outcome {
                        Outcome::Ack => {
                            self.messages.remove(&seq);
                            None
                        }
                        Outcome::Discard => Some(Death::Rejected),
                        Outcome::Release => {
                            self.release_one(seq);
                            None
                        }
                        Outcome::Return => {
                            let count = self.messages.get(&seq).map_or(0, |h| h.delivery_count);
                            if limit.is_some_and(|l| u64::from(count) >= l) {
                                Some(Death::DeliveryLimit)
                            } else {
                                self.return_one(seq);
                                None
                            }
                        }
                    };
                    if let Some(reason) = died {
                        if let Some(mut held) = self.messages.remove(&seq) {
                            if reason == Death::DeliveryLimit {
                                held.delivery_count += 1;
                            }
                            effects.push(Effect::DeadLetter {
                                node: node.clone(),
                                held,
                                reason,
                            });
                        }
                    }
                }
                Reply::Settled(settled)
            }
            Command::Reset { node, keep } => {
                let stale: Vec<Seq> = self
                    .holders
                    .iter()
                    .filter(|(_, life)| life.node == node && (keep == 0 || life.boot != keep))
                    .map(|(seq, _)| *seq)
                    .collect();
                for seq in &stale {
                    self.holders.remove(seq);
                    self.return_one(*seq);
                }
                Reply::Reset(stale.len() as u64)
            }
            Command::Purge => {
                let purged = std::mem::take(&mut self.ready);
                for seq in &purged {
                    self.messages.remove(seq);
                }
                self.ready_bytes = 0;
                Reply::Purged(purged.len() as u64)
            }
        }
    }

    /// Puts a message back without counting a delivery.
    fn release_one(&mut self, seq: Seq) {
        if let Some(held) = self.messages.get(&seq) {
            self.ready_bytes += held.message.body_size() as u64;
            self.ready.insert(seq);
        }
    }

    /// Puts a message back, counting the delivery it had.
    fn return_one(&mut self, seq: Seq) {
        if let Some(held) = self.messages.get_mut(&seq) {
            held.delivery_count += 1;
        }
        self.release_one(seq);
    }

    /// Messages waiting to be checked out.
    pub(crate) fn ready_count(&self) -> u64 {
        self.ready.len() as u64
    }

    /// Body bytes of the ready messages.
    pub(crate) fn ready_bytes(&self) -> u64 {
        self.ready_bytes
    }

    /// Messages some node holds, unsettled.
    #[cfg(test)]
    pub(crate) fn held_count(&self) -> u64 {
        self.holders.len() as u64
    }

    /// The oldest ready message.
    pub(crate) fn head(&self) -> Option<&Held> {
        self.messages.get(self.ready.first()?)
    }

    /// The whole machine as bytes.
    pub(crate) fn image(&self) -> Vec<u8> {
        let image = Image {
            next_seq: self.next_seq,
            messages: self
                .messages
                .iter()
                .map(|(seq, held)| {
                    (
                        *seq,
                        held.delivery_count,
                        self.holders.get(seq).cloned(),
                        ByteBuf::from(held.message.encode()),
                    )
                })
                .collect(),
        };
        bincode::serialize(&image).unwrap_or_default()
    }

    /// The machine an image describes; None if the bytes are not one.
    pub(crate) fn from_image(bytes: &[u8]) -> Option<Machine> {
        let image: Image = bincode::deserialize(bytes).ok()?;
        let mut machine = Machine {
            next_seq: image.next_seq,
            ..Machine::default()
        };
        for (seq, delivery_count, holder, bytes) in image.messages {
            let message = Message::decode(bytes.into_vec())?;
            match holder {
                Some(life) => {
                    machine.holders.insert(seq, life);
                }
                None => {
                    machine.ready_bytes += message.body_size() as u64;
                    machine.ready.insert(seq);
                }
            }
            machine.messages.insert(
                seq,
                Held {
                    message,
                    delivery_count,
                },
            );
        }
        Some(machine)
    }
}

/// Commands as the log carries them: a batch, bincode.
pub(crate) fn encode_commands(commands: &[Command]) -> Vec<u8> {
    bincode::serialize(commands).unwrap_or_default()
}

pub(crate) fn decode_commands(bytes: &[u8]) -> Option<Vec<Command>> {
    bincode::deserialize(bytes).ok()
}

pub(crate) fn encode_replies(replies: &[Reply]) -> Vec<u8> {
    bincode::serialize(replies).unwrap_or_default()
}

pub(crate) fn decode_replies(bytes: &[u8]) -> Option<Vec<Reply>> {
    bincode::deserialize(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_protocol::{BasicProperties, ContentHeader, ShortStr};

    fn message(text: &str) -> ByteBuf {
        let header = ContentHeader::new(60, text.len() as u64, BasicProperties::default());
        let m = Message::new(
            ShortStr::from_static(""),
            ShortStr::from_static("q"),
            header,
            bytes::Bytes::copy_from_slice(text.as_bytes()),
        );
        ByteBuf::from(m.encode())
    }

    fn life(node: &str, boot: u64) -> NodeLife {
        NodeLife {
            node: node.into(),
            boot,
        }
    }

    fn delivered(effect: &Effect) -> &[(Seq, Held)] {
        match effect {
            Effect::Deliver { messages, .. } => messages,
            Effect::DeadLetter { .. } => &[],
        }
    }

    #[test]
    fn past_the_delivery_limit_a_message_dies_on_the_node_that_returned_it() {
        let mut m = Machine::default();
        let mut effects = Vec::new();
        m.apply(
            Command::Enqueue {
                messages: vec![message("poison")],
            },
            &mut effects,
        );
        for round in 0..3 {
            effects.clear();
            m.apply(
                Command::Checkout {
                    node: life("a", 1),
                    max: 1,
                },
                &mut effects,
            );
            assert_eq!(delivered(&effects[0]).len(), 1, "round {round}");
            effects.clear();
            let settle = Command::Settle {
                node: life("a", 1),
                seqs: vec![0],
                outcome: Outcome::Return,
                limit: Some(2),
            };
            m.apply(settle, &mut effects);
        }
        assert_eq!(m.ready_count(), 0);
        match &effects[..] {
            [Effect::DeadLetter { node, held, reason }] => {
                assert_eq!(node, &life("a", 1));
                assert_eq!(*reason, Death::DeliveryLimit);
                assert_eq!(held.delivery_count, 3);
            }
            other => panic!("expected one dead letter, got {other:?}"),
        }
        m.apply(
            Command::Enqueue {
                messages: vec![message("rejected")],
            },
            &mut effects,
        );
        m.apply(
            Command::Checkout {
                node: life("b", 1),
                max: 1,
            },
            &mut effects,
        );
        effects.clear();
        let discard = Command::Settle {
            node: life("b", 1),
            seqs: vec![1],
            outcome: Outcome::Discard,
            limit: Some(2),
        };
        m.apply(discard, &mut effects);
        assert!(matches!(
            &effects[..],
            [Effect::DeadLetter {
                reason: Death::Rejected,
                ..
            }]
        ));
    }

    fn body(held: &Held) -> String {
        String::from_utf8_lossy(&held.message.body).into_owned()
    }

    #[test]
    fn checkouts_hand_each_message_to_one_node_and_returns_keep_order() {
        let mut m = Machine::default();
        let mut handed = Vec::new();
        m.apply(
            Command::Enqueue {
                messages: (0..5).map(|i| message(&format!("m{i}"))).collect(),
            },
            &mut handed,
        );
        assert_eq!(m.ready_count(), 5);
        let a = m.apply(
            Command::Checkout {
                node: life("a", 1),
                max: 2,
            },
            &mut handed,
        );
        let b = m.apply(
            Command::Checkout {
                node: life("b", 1),
                max: 2,
            },
            &mut handed,
        );
        assert_eq!(a, Reply::CheckedOut(vec![0, 1]));
        assert_eq!(b, Reply::CheckedOut(vec![2, 3]));
        assert_eq!(handed.len(), 2);
        assert_eq!(body(&delivered(&handed[1])[0].1), "m2");
        // b cannot settle a's messages; a returns one, acks the other.
        assert_eq!(
            m.apply(
                Command::Settle {
                    node: life("b", 1),
                    seqs: vec![0],
                    outcome: Outcome::Ack,
                    limit: None
                },
                &mut handed
            ),
            Reply::Settled(0)
        );
        m.apply(
            Command::Settle {
                node: life("a", 1),
                seqs: vec![1],
                outcome: Outcome::Ack,
                limit: None,
            },
            &mut handed,
        );
        m.apply(
            Command::Settle {
                node: life("a", 1),
                seqs: vec![0],
                outcome: Outcome::Return,
                limit: None,
            },
            &mut handed,
        );
        handed.clear();
        // The returned message is at the head again, counted.
        m.apply(
            Command::Checkout {
                node: life("b", 1),
                max: 1,
            },
            &mut handed,
        );
        assert_eq!(delivered(&handed[0])[0].0, 0);
        assert_eq!(delivered(&handed[0])[0].1.delivery_count, 1);
        assert_eq!(m.held_count(), 3);
    }

    #[test]
    fn a_restarted_node_gives_back_what_its_earlier_life_held() {
        let mut m = Machine::default();
        let mut handed = Vec::new();
        m.apply(
            Command::Enqueue {
                messages: (0..3).map(|i| message(&format!("m{i}"))).collect(),
            },
            &mut handed,
        );
        m.apply(
            Command::Checkout {
                node: life("a", 1),
                max: 2,
            },
            &mut handed,
        );
        m.apply(
            Command::Checkout {
                node: life("b", 7),
                max: 1,
            },
            &mut handed,
        );
        assert_eq!(
            m.apply(
                Command::Reset {
                    node: "a".into(),
                    keep: 2
                },
                &mut handed
            ),
            Reply::Reset(2)
        );
        assert_eq!(m.ready_count(), 2);
        // a's old life settles nothing any more.
        assert_eq!(
            m.apply(
                Command::Settle {
                    node: life("a", 1),
                    seqs: vec![0, 1],
                    outcome: Outcome::Ack,
                    limit: None
                },
                &mut handed
            ),
            Reply::Settled(0)
        );
        assert_eq!(
            m.apply(
                Command::Reset {
                    node: "b".into(),
                    keep: 0
                },
                &mut handed
            ),
            Reply::Reset(1)
        );
        assert_eq!(m.ready_count(), 3);
    }

    #[test]
    fn an_image_rebuilds_the_same_machine() {
        let mut m = Machine::default();
        let mut handed = Vec::new();
        m.apply(
            Command::Enqueue {
                messages: (0..4).map(|i| message(&format!("m{i}"))).collect(),
            },
            &mut handed,
        );
        m.apply(
            Command::Checkout {
                node: life("a", 1),
                max: 1,
            },
            &mut handed,
        );
        m.apply(
            Command::Settle {
                node: life("a", 1),
                seqs: vec![0],
                outcome: Outcome::Return,
                limit: None,
            },
            &mut handed,
        );
        m.apply(
            Command::Checkout {
                node: life("a", 1),
                max: 2,
            },
            &mut handed,
        );
        let copy = Machine::from_image(&m.image()).expect("an image");
        assert_eq!(copy.ready_count(), m.ready_count());
        assert_eq!(copy.held_count(), 2);
        assert_eq!(copy.ready_bytes(), m.ready_bytes());
        assert_eq!(body(copy.head().expect("a head")), "m2");
        let mut copy = copy;
        m.apply(
            Command::Enqueue {
                messages: vec![message("m4")],
            },
            &mut handed,
        );
        copy.apply(
            Command::Enqueue {
                messages: vec![message("m4")],
            },
            &mut handed,
        );
        assert_eq!(m.image(), copy.image());
        assert_eq!(m.apply(Command::Purge, &mut handed), Reply::Purged(3));
        assert!(Machine::from_image(b"not an image").is_none());
    }
}
