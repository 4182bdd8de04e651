//! A replicated quorum queue: the [`QueueBackend`] of a quorum queue in a
//! cluster. Its messages live in a deterministic state machine
//! (`machine.rs`) that every member of the queue's Raft group applies in
//! the same order; this node only proposes commands and serves its own
//! consumers.
//!
//! - A publish is proposed as `Enqueue`; its confirm waits for the ticket,
//!   settled once a majority of the group has the message on disk.
//! - While this node's consumers have credit and the queue has ready
//!   messages, the driver proposes `Checkout`s; when a checkout is applied
//!   here, the messages handed to this node wait in `buffer` and go to its
//!   consumers as their credit allows.
//! - Acks, rejects and requeues are proposed as `Settle`; a node that
//!   restarts first proposes `Reset`, which returns what its earlier life
//!   held.
//!
//! Every proposal goes through one driver task per queue (`driver.rs`), in
//! order and in batches (one publisher's messages keep their order). What
//! waits to be committed is bounded (`backlog.rs`): past 16 MiB of
//! proposed publishes, a publisher waits for the group. What waits in a
//! deep queue is bounded too: past a window, in this node's store
//! (`paged.rs`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use serde_bytes::ByteBuf;
use tokio::sync::{mpsc, oneshot, Notify};
use warren_store::{Offset, QueueId, QueueSummary};

use super::machine::{
    self, Clock, Command, ConsumerKey, Death, Effect, Held, Limits, Machine, NodeLife, Outcome, Reply, Seq, Stored,
};
use super::DEFAULT_DELIVERY_LIMIT;
use crate::clock::now_ms;
use crate::durability::Durability;
use crate::message::Message;
use crate::queue::backlog::{Backlog, Share, BACKLOG_LIMIT};
use crate::queue::dead_letter::{self, DeathReason};
use crate::queue::local::delivery_count;
use crate::queue::{
    deliver_to, AddedHeader, ConsumeRefusal, Consumer, Depth, Enqueued, Head, Identity, Overflow, Queue, QueueBackend,
    QueueEntry, QueueHost, QueueOf, Settlement, Ticket,
};
use crate::replication::{ClusterLink, LeaderStamp, MachineImage, ReplicatedGroup, ReplicatedMachine};

mod driver;
mod paged;

/// Most messages a checkout asks for at once.
const CHECKOUT_MAX: u32 = 256;

/// A command waiting to be proposed, and who waits for its reply.
struct Pending {
    command: Command,
    reply: Option<oneshot::Sender<Option<Reply>>>,
    ticket: Option<Arc<Ticket>>,
    /// A publish's bytes in the queue's backlog, until it is answered.
    share: Option<Share>,
}

impl Pending {
    /// A command nobody waits on.
    fn unanswered(command: Command) -> Pending {
        Pending {
            command,
            reply: None,
            ticket: None,
            share: None,
        }
    }
}

/// What this node holds of the queue beside the machine.
#[derive(Default)]
struct Local {
    consumers: Vec<Arc<Consumer>>,
    /// Messages checked out to this node, not yet delivered.
    buffer: VecDeque<(Seq, Held)>,
    /// Messages asked for by checkouts not yet answered.
    requested: u32,
    /// Where the next round of delivery starts among the consumers.
    next: usize,
    /// basic.gets waiting for their checkout to land in `buffer`.
    gets_waiting: u32,
}

/// The part the group's state machine and the backend share.
struct Shared {
    me: NodeLife,
    /// Itself, for work handed to other threads.
    this: Weak<Shared>,
    /// This node's store, where messages past the window are paged out
    /// (none: a node without a data directory keeps them in memory).
    durability: Option<Arc<Durability>>,
    /// Paged-out messages are being read back.
    reading: AtomicBool,
    /// This life's checkouts the driver saw committed, and those applied
    /// here (a follower applies an entry after its leader answered it):
    /// a consumer leaves the single-active-consumer line only once every
    /// checkout made for it landed here (`driver.rs`).
    checkouts_answered: AtomicU64,
    checkouts_applied: AtomicU64,
    /// Notified when a checkout of this node's is applied here, or a
    /// leaving consumer's delivery comes back.
    checkout_landed: Notify,
    /// Consumers of a single-active-consumer queue gone from here whose
    /// leaving the line is not proposed yet: deliveries on their way to
    /// them come back into the buffer, to go back to the queue before they
    /// leave it.
    leaving: Mutex<Vec<Arc<Consumer>>>,
    machine: Mutex<Machine>,
    local: Mutex<Local>,
    queue: OnceLock<Weak<Queue>>,
    /// Where dead letters are routed.
    host: Weak<dyn QueueHost>,
    /// Something changed that may call for a checkout.
    wake: Notify,
    /// The driver's inbox, weakly: the backend's sender keeps the driver
    /// alive, and the driver holds this struct.
    proposals: mpsc::WeakUnboundedSender<Pending>,
}

pub(crate) struct ReplicatedQueue {
    shared: Arc<Shared>,
    link: Arc<dyn ClusterLink>,
    group_name: String,
    /// How many members vote in the group (every member when None).
    group_size: Option<std::num::NonZeroUsize>,
    group: OnceLock<Arc<dyn ReplicatedGroup>>,
    proposals: mpsc::UnboundedSender<Pending>,
    /// Publishes proposed and not yet committed: past its limit, a
    /// publisher waits.
    backlog: Arc<Backlog>,
    /// The driver's end, until `attach` starts it.
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Pending>>>,
}

/// The group's name for a queue: fixed by its vhost and name, so every
/// member finds the same group.
fn group_name(vhost: &str, name: &str) -> String {
    format!(
        "q{:016x}",
        xxhash_rust::xxh3::xxh3_64(format!("{vhost}\0{name}").as_bytes())
    )
}

pub(super) fn new(
    identity: Identity,
    host: Weak<dyn QueueHost>,
    link: Arc<dyn ClusterLink>,
    durability: Option<Arc<Durability>>,
) -> Arc<Queue> {
    let (node, boot) = link.this_node();
    let (proposals, inbox) = mpsc::unbounded_channel();
    // This life's first word to the group: what earlier lives held goes back.
    let _ = proposals.send(Pending::unanswered(Command::Reset {
        node: node.clone(),
        keep: boot,
    }));
    let backend = ReplicatedQueue {
        group_name: group_name(&identity.vhost_name, &identity.name),
        group_size: identity.args.initial_group_size,
        shared: Arc::new_cyclic(|this| Shared {
            me: NodeLife { node, boot },
            this: this.clone(),
            durability,
            reading: AtomicBool::new(false),
            checkouts_answered: AtomicU64::new(0),
            checkouts_applied: AtomicU64::new(0),
            checkout_landed: Notify::new(),
            leaving: Mutex::new(Vec::new()),
            machine: Mutex::new(Machine::default()),
            local: Mutex::new(Local::default()),
            queue: OnceLock::new(),
            host,
            wake: Notify::new(),
            proposals: proposals.downgrade(),
        }),
        link,
        group: OnceLock::new(),
        proposals,
        backlog: Backlog::new(BACKLOG_LIMIT),
        inbox: Mutex::new(Some(inbox)),
    };
    let queue: Arc<QueueOf<ReplicatedQueue>> = Arc::new(QueueOf::assemble(identity, backend));
    queue
}

impl ReplicatedMachine for Shared {
    fn apply(&self, stamp: &LeaderStamp, entry: &[u8]) -> Vec<u8> {
        let Some(commands) = machine::decode_commands(entry) else {
            return machine::encode_replies(&[Reply::Unreadable]);
        };
        let clock = Clock {
            now_ms: stamp.at_ms,
            leader: NodeLife {
                node: stamp.node.clone(),
                boot: stamp.boot,
            },
        };
        let mine = commands
            .iter()
            .filter(|c| matches!(c, Command::Checkout { node, .. } if *node == self.me))
            .count() as u64;
        let mut effects = Vec::new();
        let (replies, paged, mut read_back): (Vec<Reply>, bool, bool) = {
            let mut machine = self.machine.lock();
            let replies = commands
                .into_iter()
                .map(|c| machine.apply(c, &clock, &mut effects))
                .collect();
            let paged = self.page_out(&mut machine);
            (replies, paged, machine.paged_ready().0 > 0)
        };
        if let (true, Some(durability)) = (paged, &self.durability) {
            durability.wrote();
            // The flusher writes what waits; never waited for here (an
            // apply that waited for a failing disk would hold up the acks
            // that free it).
            durability.nudge();
        }
        for effect in effects.into_iter().filter(|e| *e.node() == self.me) {
            match effect {
                Effect::Deliver { messages, .. } => {
                    read_back |= messages.iter().any(|(_, held)| held.message.is_paged());
                    self.local.lock().buffer.extend(messages);
                }
                Effect::DeadLetter { held, reason, .. } => self.dead_letter(&held, reason),
            }
        }
        if mine > 0 {
            self.checkouts_applied.fetch_add(mine, Ordering::AcqRel);
            self.checkout_landed.notify_waiters();
        }
        self.dispatch();
        self.release_orphans();
        if read_back {
            self.read_ahead();
        }
        self.wake.notify_one();
        machine::encode_replies(&replies)
    }

    fn image(&self) -> Box<dyn MachineImage> {
        Box::new(self.machine.lock().view())
    }

    fn restore(&self, image: &[u8]) {
        match Machine::from_image(image) {
            Some(mut machine) => {
                machine.page_past_window();
                let paged = self.page_out(&mut machine);
                *self.machine.lock() = machine;
                if let (true, Some(durability)) = (paged, &self.durability) {
                    durability.wrote();
                }
            }
            None => return tracing::error!("a quorum queue's snapshot does not decode; keeping the state it had"),
        }
        // Checkouts for this node inside the image never reached its buffer:
        // everything it holds goes back (at least once, never stranded).
        self.local.lock().buffer.clear();
        self.checkouts_applied
            .fetch_max(self.checkouts_answered.load(Ordering::Acquire), Ordering::AcqRel);
        self.checkout_landed.notify_waiters();
        if let Some(proposals) = self.proposals.upgrade() {
            let _ = proposals.send(Pending::unanswered(Command::Reset {
                node: self.me.node.clone(),
                keep: 0,
            }));
        }
    }
}

impl Shared {
    fn queue(&self) -> Option<Arc<Queue>> {
        self.queue.get()?.upgrade()
    }

    /// Publishes a message that died here to the dead-letter exchange (at
    /// most once, as RabbitMQ's quorum queues do by default).
    fn dead_letter(&self, held: &Held, reason: Death) {
        let (Some(queue), Some(host)) = (self.queue(), self.host.upgrade()) else {
            return;
        };
        let Some(dlx) = queue.args().dead_letter_exchange.clone() else {
            return;
        };
        let reason = match reason {
            Death::Rejected => DeathReason::Rejected,
            Death::DeliveryLimit => DeathReason::DeliveryLimit,
            Death::Expired => DeathReason::Expired,
            Death::MaxLen => DeathReason::MaxLen,
        };
        match held.message.decode() {
            Some(message) => dead_letter::republish(&queue, &*host, &dlx, &message, reason),
            None => tracing::error!("a quorum queue's message does not decode: not dead-lettered"),
        }
    }

    /// A message this node holds and cannot decode (the machine accepted
    /// only messages that do: never expected) goes, rather than wait here
    /// for ever.
    fn unreadable(&self, seq: Seq) {
        tracing::error!("a quorum queue's message {seq} does not decode: discarded");
        // Removed as if acked: it could not be dead-lettered either.
        self.settle_here(vec![seq], Outcome::Ack);
    }

    /// Settles messages this node holds and no consumer of it will settle.
    fn settle_here(&self, seqs: Vec<Seq>, outcome: Outcome) {
        if let (false, Some(proposals)) = (seqs.is_empty(), self.proposals.upgrade()) {
            let _ = proposals.send(Pending::unanswered(Command::Settle {
                node: self.me.clone(),
                seqs,
                outcome,
                limit: None,
            }));
        }
    }

    /// The log's name for one of this node's consumers.
    fn key(&self, consumer: &Consumer) -> ConsumerKey {
        ConsumerKey {
            node: self.me.clone(),
            id: format!("{}/{}/{}", consumer.connection.0, consumer.channel, consumer.tag),
        }
    }

    /// With a single active consumer: the one that may receive (None when
    /// it is another node's). Without: None, every consumer may.
    fn eligible(&self, queue: &Queue) -> Option<Option<ConsumerKey>> {
        if !queue.args().single_active_consumer {
            return None;
        }
        let active = self.machine.lock().active_consumer().cloned();
        Some(active.filter(|key| key.node == self.me))
    }

    /// Whether `consumer` may receive now.
    fn may_receive(&self, consumer: &Consumer, eligible: &Option<Option<ConsumerKey>>) -> bool {
        consumer.active.load(Ordering::Acquire)
            && match eligible {
                None => true,
                Some(active) => active.as_ref() == Some(&self.key(consumer)),
            }
    }

    /// Hands buffered messages to consumers with credit, in turn.
    fn dispatch(&self) {
        let Some(queue) = self.queue() else { return };
        let eligible = self.eligible(&queue);
        let mut local = self.local.lock();
        while !local.buffer.is_empty() && !local.consumers.is_empty() {
            if local.buffer.front().is_some_and(|(_, held)| held.message.is_paged()) {
                // Read back first, off this thread; dispatch goes on then.
                drop(local);
                self.read_ahead();
                return;
            }
            let count = local.consumers.len();
            let Some(at) = (0..count)
                .map(|i| (local.next + i) % count)
                .find(|&i| self.may_receive(&local.consumers[i], &eligible) && local.consumers[i].try_take_credit())
            else {
                break;
            };
            local.next = (at + 1) % count;
            let consumer = local.consumers[at].clone();
            let Some((seq, held)) = local.buffer.pop_front() else {
                break;
            };
            let Some(entry) = held.entry(seq) else {
                consumer.release_credit(1);
                self.unreadable(seq);
                continue;
            };
            if let Err(back) = deliver_to(&consumer, &queue, entry) {
                // The connection is gone: the message waits for another.
                consumer.release_credit(1);
                local.consumers.retain(|c| !Arc::ptr_eq(c, &consumer));
                local.buffer.push_front((back.offset.0, held_of(&back)));
            }
        }
    }

    /// Whether, by this node's clock, the head's TTL ran out.
    fn expiry_due(&self) -> bool {
        self.machine.lock().next_expiry().is_some_and(|at| at < now_ms())
    }

    /// `x-expires`: whether, by this node's clock, no node's consumer used
    /// the queue for that long.
    fn queue_unused(&self) -> bool {
        let Some(expires) = self.queue().and_then(|q| q.args().expires) else {
            return false;
        };
        self.machine.lock().unused_for(expires, now_ms())
    }

    /// Gives back what waits here for nobody: a checkout that landed after
    /// the consumers it was for went (their channel closed, a partition
    /// delayed it), or a basic.get that stopped waiting. Held by this
    /// living node, it would otherwise never go to anyone.
    fn release_orphans(&self) {
        if !self.leaving.lock().is_empty() {
            // A consumer is leaving the line: the driver releases what
            // waits here in the entry that takes it out (`driver.rs`).
            return;
        }
        let orphans = self.take_orphans();
        self.settle_here(orphans, Outcome::Release);
    }

    /// What waits here for nobody (see `release_orphans`), taken out of
    /// the buffer.
    fn take_orphans(&self) -> Vec<Seq> {
        let eligible = self.queue().and_then(|queue| self.eligible(&queue));
        let mut local = self.local.lock();
        // With a single active consumer, consumers here that are not
        // the active one take nothing either.
        if local.consumers.iter().any(|c| self.may_receive(c, &eligible)) || local.gets_waiting > 0 {
            return Vec::new();
        }
        local.buffer.drain(..).map(|(seq, _)| seq).collect()
    }

    /// Single active consumer: this node's consumers missing from the line
    /// (a member that thought this node gone reset it, in a partition).
    fn unattached(&self) -> Vec<ConsumerKey> {
        let Some(queue) = self.queue() else { return Vec::new() };
        if !queue.args().single_active_consumer {
            return Vec::new();
        }
        let keys: Vec<ConsumerKey> = self.local.lock().consumers.iter().map(|c| self.key(c)).collect();
        let machine = self.machine.lock();
        keys.into_iter().filter(|key| !machine.is_attached(key)).collect()
    }

    /// How many messages to ask for now (and notes them as asked for).
    fn checkout_wanted(&self) -> u32 {
        let ready = self.machine.lock().ready_count();
        let Some(queue) = self.queue() else { return 0 };
        let eligible = self.eligible(&queue);
        let mut local = self.local.lock();
        if ready == 0 || local.consumers.is_empty() {
            return 0;
        }
        let room: u32 = local
            .consumers
            .iter()
            .filter(|c| self.may_receive(c, &eligible))
            .map(|c| {
                if c.no_ack {
                    CHECKOUT_MAX
                } else {
                    c.credit.room().min(c.channel_credit.room())
                }
            })
            .fold(0u32, |sum, r| sum.saturating_add(r))
            .min(CHECKOUT_MAX);
        let waiting = local.buffer.len() as u32 + local.requested;
        let want = room
            .saturating_sub(waiting)
            .min(ready.min(u64::from(CHECKOUT_MAX)) as u32);
        local.requested += want;
        want
    }
}

fn held_of(entry: &QueueEntry) -> Held {
    Held {
        message: Stored::of(&entry.message),
        delivery_count: entry.delivery_count,
        // On this node's buffer, checked out: past expiring.
        expires_at: None,
    }
}

impl Held {
    /// The message at `seq` as a delivery carries it (redelivered once it
    /// came back); None if it does not decode.
    fn entry(self, seq: Seq) -> Option<QueueEntry> {
        Some(QueueEntry {
            redelivered: self.delivery_count > 0,
            delivery_count: self.delivery_count,
            ..QueueEntry::new(self.message.decode()?, Offset(seq), 0, None)
        })
    }
}

impl ReplicatedQueue {
    fn propose(&self, command: Command, ticket: Option<Arc<Ticket>>) -> Option<oneshot::Receiver<Option<Reply>>> {
        let (reply, answer) = oneshot::channel();
        let share = ticket.is_some().then(|| self.backlog.add(command.message_bytes()));
        let sent = self.proposals.send(Pending {
            command,
            reply: Some(reply),
            ticket,
            share,
        });
        sent.ok().map(|()| answer)
    }

    /// `x-expires`: tells every node a consumer here came (`up`) or went,
    /// so that the queue counts as used while any node has one.
    fn report_consumer(&self, queue: &Queue, key: &ConsumerKey, up: bool) {
        if queue.args().expires.is_some() {
            let _ = self.propose(Command::Consumer { key: key.clone(), up }, None);
        }
    }

    fn settle_seqs(&self, seqs: Vec<Seq>, outcome: Outcome) {
        if seqs.is_empty() {
            return;
        }
        let limit = self.shared.queue().and_then(|q| q.args().delivery_limit);
        let limit = Some(limit.unwrap_or(DEFAULT_DELIVERY_LIMIT));
        let _ = self.propose(
            Command::Settle {
                node: self.shared.me.clone(),
                seqs,
                outcome,
                limit,
            },
            None,
        );
    }
}

impl QueueBackend for ReplicatedQueue {
    fn attach(&self, queue: &Arc<Queue>) {
        let _ = self.shared.queue.set(Arc::downgrade(queue));
        let group = self
            .link
            .join_group(&self.group_name, self.group_size, self.shared.clone());
        let _ = self.group.set(group.clone());
        let Some(inbox) = self.inbox.lock().take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(driver::drive(self.shared.clone(), group, self.link.clone(), inbox));
            }
            Err(_) => tracing::error!("quorum queue '{}' started outside a runtime: it cannot run", queue.name),
        }
    }

    fn publish(&self, queue: &Arc<Queue>, message: Arc<Message>) -> Enqueued {
        let ticket = Ticket::new();
        let args = queue.args();
        let command = Command::Enqueue {
            from: self.shared.me.clone(),
            messages: vec![ByteBuf::from(message.encode())],
            limits: Limits {
                max_length: args.max_length,
                max_length_bytes: args.max_length_bytes,
                reject_publish: args.overflow != Overflow::DropHead,
                message_ttl: args.message_ttl,
            },
        };
        if self.propose(command, Some(ticket.clone())).is_none() {
            return Enqueued::Rejected;
        }
        queue.counters.published_locked();
        self.backlog.wait_below_limit(|| self.proposals.is_closed());
        Enqueued::Replicating(ticket)
    }

    fn add_consumer(&self, queue: &Arc<Queue>, consumer: Arc<Consumer>) -> Result<(), ConsumeRefusal> {
        let key = self.shared.key(&consumer);
        {
            let mut local = self.shared.local.lock();
            if local.consumers.iter().any(|c| c.exclusive) || (consumer.exclusive && !local.consumers.is_empty()) {
                return Err(ConsumeRefusal::ExclusiveInUse);
            }
            local.consumers.push(consumer);
        }
        self.report_consumer(queue, &key, true);
        if queue.args().single_active_consumer {
            // In line with every node's consumers; active once first.
            let _ = self.propose(Command::Attach(key), None);
        }
        self.shared.dispatch();
        self.shared.wake.notify_one();
        Ok(())
    }

    fn remove_consumer(&self, queue: &Arc<Queue>, consumer: &Arc<Consumer>) -> bool {
        let key = self.shared.key(consumer);
        self.shared.local.lock().consumers.retain(|c| !Arc::ptr_eq(c, consumer));
        // What was checked out for it (the last consumer here, or the
        // active one) goes back before it leaves the line.
        self.shared.release_orphans();
        self.report_consumer(queue, &key, false);
        if queue.args().single_active_consumer {
            // After the release: the next in line finds them in order
            // (the driver waits for what is on its way to it, `driver.rs`).
            self.shared.leaving.lock().push(consumer.clone());
            let _ = self.propose(Command::Detach(key), None);
        }
        self.shared.dispatch();
        false
    }

    fn get(&self, queue: &Arc<Queue>, ack_required: bool) -> Option<(QueueEntry, u64)> {
        if queue.args().expires.is_some() {
            let _ = self.propose(Command::Touch, None);
        }
        let taken = self.shared.local.lock().buffer.pop_front();
        let (seq, held) = match taken {
            Some(taken) => taken,
            None => {
                self.shared.local.lock().gets_waiting += 1;
                let answer = self.propose(
                    Command::Checkout {
                        node: self.shared.me.clone(),
                        max: 1,
                    },
                    None,
                );
                let shared = self.shared.clone();
                let fetched = crate::blocking::wait(async move {
                    let Ok(Some(Reply::CheckedOut(seqs))) = answer?.await else {
                        return None;
                    };
                    let seq = *seqs.first()?;
                    // The checkout lands in the buffer once applied here.
                    for _ in 0..100 {
                        {
                            let mut local = shared.local.lock();
                            if let Some(at) = local.buffer.iter().position(|(s, _)| *s == seq) {
                                return local.buffer.remove(at);
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    None
                });
                self.shared.local.lock().gets_waiting -= 1;
                // A checkout that lands later goes back to the queue.
                self.shared.release_orphans();
                fetched.flatten()?
            }
        };
        let paged = held.message.is_paged();
        let Some(entry) = held.entry(seq) else {
            if paged {
                // This node's copy could not be read: back to the queue.
                self.shared.settle_here(vec![seq], Outcome::Release);
            } else {
                self.shared.unreadable(seq);
            }
            return None;
        };
        queue
            .counters
            .got_locked(entry.redelivered, ack_required, entry.message.body_size());
        if !ack_required {
            self.settle_seqs(vec![seq], Outcome::Ack);
        }
        let remaining = self.shared.machine.lock().ready_count();
        Some((entry, remaining))
    }

    fn settle(&self, _queue: &Arc<Queue>, entries: Vec<QueueEntry>, settlement: Settlement) {
        let outcome = match settlement {
            Settlement::Ack => Outcome::Ack,
            Settlement::Requeue => Outcome::Return,
            Settlement::Discard => Outcome::Discard,
        };
        self.settle_seqs(entries.iter().map(|e| e.offset.0).collect(), outcome);
        // Credit came back: what waits here goes out, then more is asked for.
        self.shared.dispatch();
        self.shared.wake.notify_one();
    }

    fn settle_without_ack(&self, _queue: &Arc<Queue>, entry: &QueueEntry) {
        self.settle_seqs(vec![entry.offset.0], Outcome::Ack);
    }

    fn return_undelivered(&self, _queue: &Arc<Queue>, entry: QueueEntry) {
        let seq = entry.offset.0;
        {
            let leaving = !self.shared.leaving.lock().is_empty();
            let mut local = self.shared.local.lock();
            if !local.consumers.is_empty() || leaving {
                // Back to this node's buffer, in its place: it is still
                // checked out here (a leaving consumer's goes back to the
                // queue before it leaves the line).
                let at = local.buffer.partition_point(|(s, _)| *s < seq);
                local.buffer.insert(at, (seq, held_of(&entry)));
                drop(local);
                self.shared.checkout_landed.notify_waiters();
                self.shared.dispatch();
                return;
            }
        }
        // Nobody here takes it: back to the queue for every node.
        self.settle_seqs(vec![seq], Outcome::Release);
    }

    fn kick(&self, _queue: &Arc<Queue>) {
        self.shared.dispatch();
        self.shared.wake.notify_one();
    }

    fn purge(&self, _queue: &Arc<Queue>) -> u64 {
        let Some(answer) = self.propose(Command::Purge, None) else {
            return 0;
        };
        match crate::blocking::wait(answer) {
            Some(Ok(Some(Reply::Purged(count)))) => count,
            _ => 0,
        }
    }

    fn arguments_changed(&self, _queue: &Arc<Queue>) {}

    fn delete(&self, _queue: &Arc<Queue>) -> u64 {
        let consumers = std::mem::take(&mut self.shared.local.lock().consumers);
        for consumer in consumers {
            consumer.active.store(false, Ordering::Release);
            consumer.sink.cancelled(consumer.channel, consumer.tag.clone());
        }
        let count = self.shared.machine.lock().ready_count();
        if let Some(group) = self.group.get() {
            group.leave();
        }
        count
    }

    fn message_count(&self) -> u64 {
        self.shared.machine.lock().ready_count()
    }

    fn depth(&self) -> Depth {
        let (ready, ready_bytes, (paged_out, paged_out_bytes)) = {
            let machine = self.shared.machine.lock();
            (machine.ready_count(), machine.ready_bytes(), machine.paged_ready())
        };
        Depth {
            ready,
            ready_bytes,
            paged_out,
            paged_out_bytes,
            consumers: self.consumer_count(),
        }
    }

    fn head(&self, _now: tokio::time::Instant) -> Head {
        let machine = self.shared.machine.lock();
        Head {
            age: None,
            timestamp: machine
                .head()
                .and_then(|h| h.message.decode_in_memory())
                .and_then(|m| m.header.properties().timestamp),
        }
    }

    fn store_position(&self) -> Option<(QueueId, Offset)> {
        None
    }

    fn consumer_count(&self) -> u64 {
        self.shared.local.lock().consumers.len() as u64
    }

    fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.shared.local.lock().consumers.clone()
    }

    fn touch(&self) {}

    fn added_header(&self, entry: &QueueEntry) -> Option<AddedHeader> {
        Some(delivery_count(entry))
    }

    fn replicas(&self) -> Option<crate::replication::Replicas> {
        self.group.get().map(|group| group.replicas())
    }

    fn restore(&self, _queue: &Arc<Queue>, _summary: QueueSummary, _delivered_below: Offset) {
        // The group's log and snapshot rebuild the machine, not the store.
    }
}
