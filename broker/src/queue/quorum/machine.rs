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
//!
//! Time comes from the log too: every entry carries the clock of the
//! leader that wrote it (`Clock`), so a message's TTL runs out at the same
//! entry on every member. Length limits (`Limits`) travel with each
//! enqueue, as the proposer's definitions give them (every member has the
//! same definitions, so they agree).
//!
//! With a single active consumer (`x-single-active-consumer`), nodes
//! `Attach` their consumers in the log; the first attached is the active
//! one, and only its node may check messages out. With `x-expires`, nodes
//! report their consumers coming and going (`Consumer`) and basic.gets
//! (`Touch`), so that the machine knows when the queue was last used.
//!
//! A message's bytes are in memory (`stored.rs`) for the oldest ready
//! messages only; past that window each member pages them out to its own
//! store (`paging.rs`), which changes nothing the machine decides.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

pub(crate) use paging::WINDOW_MESSAGES;
pub(crate) use stored::Stored;

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

/// What the leader wrote on an entry: its clock (ms since the Unix epoch)
/// and which life of which node it was (the member that dead-letters what
/// expires).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clock {
    pub now_ms: u64,
    pub leader: NodeLife,
}

/// The queue's limits as the enqueuing node's definitions give them
/// (arguments and policies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Limits {
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    /// `x-overflow: reject-publish`: a message that would go over a limit
    /// is refused (else the oldest ready messages are dropped).
    pub reject_publish: bool,
    /// The queue's message TTL, ms (`x-message-ttl`).
    pub message_ttl: Option<u64>,
}

/// A consumer as the log knows it: its node's life and an id unique on
/// that node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct ConsumerKey {
    pub node: NodeLife,
    pub id: String,
}

/// A change to the queue, as the log carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Command {
    /// New messages (each in `Message::encode`'s form) from `from`, which
    /// dead-letters what they push out at the head.
    Enqueue {
        from: NodeLife,
        messages: Vec<ByteBuf>,
        limits: Limits,
    },
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
    /// Nothing but the entry's time: what is due expires.
    Expire,
    /// A consumer of a single-active-consumer queue, in line.
    Attach(ConsumerKey),
    /// It went (cancelled, or its channel closed).
    Detach(ConsumerKey),
    /// A consumer came (`up`) or went, for `x-expires`.
    Consumer { key: ConsumerKey, up: bool },
    /// The queue was used (a basic.get), for `x-expires`.
    Touch,
    /// A command `by` may propose again after a proposal that failed but
    /// may still have been committed: `id` grows with each of `by`'s such
    /// commands, and each id is applied once.
    Once {
        by: NodeLife,
        id: u64,
        command: Box<Command>,
    },
}

/// What a command did, for the node that proposed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Reply {
    Enqueued,
    /// reject-publish: the queue was full.
    Rejected,
    /// Done, nothing to tell.
    Done,
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
    pub message: Stored,
    /// How many times it was returned.
    pub delivery_count: u32,
    /// When its TTL runs out (leader's clock, ms).
    pub expires_at: Option<u64>,
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
    Expired,
    MaxLen,
}

/// The replicated queue.
#[derive(Debug, Default)]
pub(crate) struct Machine {
    next_seq: Seq,
    messages: BTreeMap<Seq, Held>,
    ready: BTreeSet<Seq>,
    holders: BTreeMap<Seq, NodeLife>,
    ready_bytes: u64,
    /// Of the ready messages, those paged out to this node's store, and
    /// their body bytes (`paging.rs`).
    paged_ready: u64,
    paged_ready_bytes: u64,
    /// Ready messages past the window, still in memory: this node pages
    /// them out after the entry.
    to_page: Vec<Seq>,
    /// The latest leader clock applied (ms): time never goes back here.
    now_ms: u64,
    /// Single-active-consumer queues: the consumers in line, the first
    /// active.
    attached: Vec<ConsumerKey>,
    /// The last `Once` id applied from each proposer.
    once: BTreeMap<NodeLife, u64>,
    /// Every node's consumers, as reported for `x-expires`.
    consumers: BTreeSet<ConsumerKey>,
    /// When the queue was last used (leader's clock, ms): a consumer came
    /// or went, or a basic.get.
    last_used_ms: u64,
}

impl Command {
    /// Whether a proposal that failed should go again (in a `Once`, so
    /// that it is applied once even if the failed one was committed after
    /// all): settlements, resets and the consumer line.
    pub(crate) fn goes_again(&self) -> bool {
        matches!(
            self,
            Command::Settle { .. }
                | Command::Reset { .. }
                | Command::Attach(_)
                | Command::Detach(_)
                | Command::Consumer { .. }
        )
    }

    /// The bytes of the messages it carries.
    pub(crate) fn message_bytes(&self) -> usize {
        match self {
            Command::Enqueue { messages, .. } => messages.iter().map(|m| m.len()).sum(),
            _ => 0,
        }
    }
}

impl Machine {
    /// Applies one command; what it asks of nodes (deliveries, dead
    /// letters) is added to `effects` (the caller does what is meant for its
    /// own node).
    pub(crate) fn apply(&mut self, command: Command, clock: &Clock, effects: &mut Vec<Effect>) -> Reply {
        self.now_ms = self.now_ms.max(clock.now_ms);
        if self.last_used_ms == 0 {
            // The queue's first entry: unused since it was made.
            self.last_used_ms = self.now_ms;
        }
        self.expire(&clock.leader, effects);
        match command {
            Command::Enqueue { from, messages, limits } => {
                let mut reply = Reply::Enqueued;
                for bytes in messages {
                    // A message that does not decode was refused by the
                    // proposer's own encoder; it cannot be here. Skipped.
                    let Some((stored, message)) = Stored::new(Bytes::from(bytes.into_vec())) else {
                        continue;
                    };
                    let size = stored.body_size();
                    if limits.reject_publish && self.would_overflow(&limits, size) {
                        reply = Reply::Rejected;
                        continue;
                    }
                    let ttl = message.ttl_in(limits.message_ttl);
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let held = Held {
                        message: stored,
                        delivery_count: 0,
                        expires_at: ttl.and_then(|ttl| self.now_ms.checked_add(ttl)),
                    };
                    self.messages.insert(seq, held);
                    self.make_ready(seq);
                    if self.past_window() {
                        self.to_page.push(seq);
                    }
                    self.drop_head(&limits, &from, effects);
                }
                reply
            }
            Command::Checkout { node, max } => {
                if self.attached.first().is_some_and(|active| active.node != node) {
                    // Another node's consumer is the active one.
                    return Reply::CheckedOut(Vec::new());
                }
                let mut seqs = Vec::new();
                let mut messages = Vec::new();
                while seqs.len() < max as usize {
                    let Some(seq) = self.ready.pop_first() else { break };
                    let Some(held) = self.messages.get(&seq).cloned() else {
                        continue;
                    };
                    self.left_ready(&held.message);
                    self.holders.insert(seq, node.clone());
                    messages.push((seq, held));
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
                let stale = |life: &NodeLife| life.node == node && (keep == 0 || life.boot != keep);
                self.attached.retain(|c| !stale(&c.node));
                self.once.retain(|life, _| !stale(life));
                let before = self.consumers.len();
                self.consumers.retain(|c| !stale(&c.node));
                if self.consumers.len() != before {
                    self.last_used_ms = self.now_ms;
                }
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
                self.paged_ready = 0;
                self.paged_ready_bytes = 0;
                Reply::Purged(purged.len() as u64)
            }
            Command::Expire => Reply::Done,
            Command::Once { by, id, command } => {
                if self.once.get(&by).is_some_and(|last| id <= *last) {
                    return Reply::Done;
                }
                self.once.insert(by, id);
                self.apply(*command, clock, effects)
            }
            Command::Consumer { key, up } => {
                if up {
                    self.consumers.insert(key);
                } else {
                    self.consumers.remove(&key);
                }
                self.last_used_ms = self.now_ms;
                Reply::Done
            }
            Command::Touch => {
                self.last_used_ms = self.now_ms;
                Reply::Done
            }
            Command::Attach(key) => {
                if !self.attached.contains(&key) {
                    self.attached.push(key);
                }
                Reply::Done
            }
            Command::Detach(key) => {
                self.attached.retain(|c| *c != key);
                Reply::Done
            }
        }
    }

    /// reject-publish: would a message of `size` bytes take the ready
    /// messages over a limit?
    fn would_overflow(&self, limits: &Limits, size: u64) -> bool {
        limits.max_length.is_some_and(|max| self.ready_count() >= max)
            || limits.max_length_bytes.is_some_and(|max| self.ready_bytes + size > max)
    }

    /// drop-head: drops the oldest ready messages until within the limits;
    /// `from` dead-letters them.
    fn drop_head(&mut self, limits: &Limits, from: &NodeLife, effects: &mut Vec<Effect>) {
        let over = |machine: &Machine| {
            limits.max_length.is_some_and(|max| machine.ready_count() > max)
                || limits.max_length_bytes.is_some_and(|max| machine.ready_bytes > max)
        };
        while over(self) {
            let Some(held) = self.remove_head() else { break };
            effects.push(Effect::DeadLetter {
                node: from.clone(),
                held,
                reason: Death::MaxLen,
            });
        }
    }

    /// Drops the ready messages at the head whose TTL ran out (as RabbitMQ,
    /// only from the head); `leader` dead-letters them.
    fn expire(&mut self, leader: &NodeLife, effects: &mut Vec<Effect>) {
        while self
            .head()
            .and_then(|h| h.expires_at)
            .is_some_and(|at| at < self.now_ms)
        {
            let Some(held) = self.remove_head() else { break };
            effects.push(Effect::DeadLetter {
                node: leader.clone(),
                held,
                reason: Death::Expired,
            });
        }
    }

    fn remove_head(&mut self) -> Option<Held> {
        let seq = self.ready.pop_first()?;
        let held = self.messages.remove(&seq)?;
        self.left_ready(&held.message);
        Some(held)
    }

    /// `x-expires`: whether, by `now_ms` (the leader's clock), no consumer
    /// on any node has used the queue for `expires` ms.
    pub(crate) fn unused_for(&self, expires: u64, now_ms: u64) -> bool {
        self.consumers.is_empty() && self.last_used_ms > 0 && now_ms.saturating_sub(self.last_used_ms) >= expires
    }

    /// Whether `key` is in the single-active-consumer line.
    pub(crate) fn is_attached(&self, key: &ConsumerKey) -> bool {
        self.attached.contains(key)
    }

    /// The single active consumer, if consumers are attached.
    pub(crate) fn active_consumer(&self) -> Option<&ConsumerKey> {
        self.attached.first()
    }

    /// When the head's TTL runs out (leader's clock, ms).
    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.head()?.expires_at
    }

    /// Puts a message back without counting a delivery.
    fn release_one(&mut self, seq: Seq) {
        self.make_ready(seq);
    }

    /// A held message (`seq`) waits again.
    fn make_ready(&mut self, seq: Seq) {
        let Some(held) = self.messages.get(&seq) else { return };
        let size = held.message.body_size();
        if held.message.is_paged() {
            self.paged_ready += 1;
            self.paged_ready_bytes += size;
        }
        self.ready_bytes += size;
        self.ready.insert(seq);
    }

    /// A ready message was taken out of `ready`.
    fn left_ready(&mut self, message: &Stored) {
        let size = message.body_size();
        if message.is_paged() {
            self.paged_ready = self.paged_ready.saturating_sub(1);
            self.paged_ready_bytes = self.paged_ready_bytes.saturating_sub(size);
        }
        self.ready_bytes -= size;
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

mod image;
mod paging;
mod stored;
#[cfg(test)]
mod tests;
