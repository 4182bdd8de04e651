//! A classic queue that lives on another node of the cluster, as this node
//! sees it (RabbitMQ's classic queues have one home node; every node knows
//! them, routes to them and serves their consumers). A sibling of the other
//! queue types behind the queue interface: what is published here is
//! forwarded to the home in batches and confirmed once the home stored it;
//! this node's consumers are fed by taking messages from the home as they
//! have credit for them (held there until settled: acks, rejects and
//! requeues are forwarded back); basic.get takes one. The calls and the
//! home's side are in `calls.rs` and `home.rs`.
//!
//! Publishes forwarded and not yet stored at home are bounded
//! (`backlog.rs`): past the limit a publisher waits for the home.
//!
//! What it does not promise (nor does RabbitMQ's): while the home node is
//! down, the queue cannot be used from here; publishes to it are nacked.

pub(crate) mod calls;
mod consumers;
pub(crate) mod earlier_lives;
pub(crate) mod home;
pub(crate) mod stand_ins;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};
use warren_store::{Offset, QueueId, QueueSummary};

use self::calls::{Answer, Call, ConsumerSet, ConsumerStatus, Holder, Outcome, QueueRef};
use self::consumers::Consumers;
use super::backend::{ConsumeRefusal, Enqueued, Head, QueueBackend, Settlement};
use super::backlog::{Backlog, Share, BACKLOG_LIMIT};
use super::{deliver_to, AddedHeader, Consumer, Depth, Identity, Queue, QueueEntry, QueueOf, Ticket};
use crate::message::Message;
use crate::replication::ClusterLink;

/// Messages (and bytes) one forwarded publish carries at most.
const PUBLISH_BATCH: usize = 256;
const PUBLISH_BATCH_BYTES: usize = 4 << 20;
/// Messages one take asks for at most.
const TAKE_MAX: u32 = 256;
/// How long a take waits at the home for a message to arrive.
const TAKE_WAIT_MS: u32 = 1_000;
/// How long taken messages no consumer here can take wait for one before
/// they go back home.
const HOLD_FOR_CONSUMER: Duration = Duration::from_secs(1);
/// How long a call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a settlement is sent again while the home does not answer.
const SETTLE_FOR: Duration = Duration::from_secs(60);
/// How stale a depth reading may be before it is asked for again.
const DEPTH_FRESH: Duration = Duration::from_secs(1);

/// What waits to be sent to the home.
enum Outgoing {
    /// A message, its confirm, and its bytes in the backlog.
    Publish(Vec<u8>, Arc<Ticket>, Share),
    Settle(Vec<u64>, Outcome),
    /// This node's consumers changed.
    Consumers(ConsumerSet),
}

struct Shared {
    home: String,
    target: QueueRef,
    me: Holder,
    link: Arc<dyn ClusterLink>,
    queue: OnceLock<Weak<Queue>>,
    consumers: Mutex<Consumers>,
    /// A consumer came, or credit came back: the taker looks again.
    wake: Notify,
    /// The home's last answer about the queue: ready, consumers, when.
    depth: Mutex<Option<(u64, u64, Instant)>>,
    deleted: AtomicBool,
    /// Takes whose answer was lost while the home seemed down: released
    /// once it answers again (it may have seen this node all along).
    unreleased: Mutex<VecDeque<u64>>,
}

/// The most lost takes kept for release: the first ones, as only a take
/// on its way when the home became unreachable can have reached it.
const UNRELEASED_KEPT: usize = 256;

/// Numbers this node's takes, of every queue (`Call::Release` names one;
/// the home keeps what each take held under its number).
static NEXT_BATCH: AtomicU64 = AtomicU64::new(0);

pub(crate) struct RemoteQueue {
    shared: Arc<Shared>,
    /// Where a durable one's definition is stored (dropped with it).
    persistence: Option<super::Persistence>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Outgoing>>>,
    /// Publishes forwarded and not yet stored at home: past its limit, a
    /// publisher waits.
    backlog: Arc<Backlog>,
}

/// The queue `identity` whose home is `home`, reached through `link`.
pub(crate) fn new(
    identity: Identity,
    home: String,
    link: Arc<dyn ClusterLink>,
    persistence: Option<super::Persistence>,
) -> Arc<Queue> {
    let (node, boot) = link.this_node();
    let target = QueueRef {
        vhost: identity.vhost_name.to_string(),
        name: identity.name.to_string(),
    };
    let (outgoing, inbox) = mpsc::unbounded_channel();
    let backend = RemoteQueue {
        shared: Arc::new(Shared {
            home,
            target,
            me: Holder { node, boot },
            link,
            queue: OnceLock::new(),
            consumers: Mutex::new(Consumers::default()),
            wake: Notify::new(),
            depth: Mutex::new(None),
            deleted: AtomicBool::new(false),
            unreleased: Mutex::new(VecDeque::new()),
        }),
        persistence,
        outgoing,
        inbox: Mutex::new(Some(inbox)),
        backlog: Backlog::new(BACKLOG_LIMIT),
    };
    let queue: Arc<QueueOf<RemoteQueue>> = Arc::new(QueueOf::assemble(identity, backend));
    queue
}

impl Shared {
    async fn call(&self, call: &Call) -> Option<Answer> {
        let request = calls::encode(call);
        match tokio::time::timeout(CALL_TIMEOUT, self.link.call(&self.home, request)).await {
            Ok(Ok(bytes)) => calls::decode(&bytes),
            Ok(Err(e)) => {
                tracing::debug!(queue = %self.target.name, home = %self.home, "a call to the queue's home failed: {e}");
                None
            }
            Err(_) => None,
        }
    }

    /// Sends a settlement until the home has it: a lost one would leave
    /// its messages held there. Settling by id twice is harmless; a home
    /// that stays away gives back what this node held anyway.
    async fn settle(&self, call: &Call) {
        let started = Instant::now();
        while started.elapsed() < SETTLE_FOR {
            if matches!(self.call(call).await, Some(Answer::Done | Answer::NotFound)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tracing::warn!(queue = %self.target.name, home = %self.home, "a settlement never reached the queue's home");
    }

    /// A call made from code that is not async (basic.get, purge, a
    /// declare-ok's count): waits here, the runtime told first.
    fn call_blocking(self: &Arc<Self>, call: Call) -> Option<Answer> {
        let shared = self.clone();
        crate::blocking::wait(async move { shared.call(&call).await }).flatten()
    }

    /// How many messages the home last said were ready.
    fn known_ready(&self) -> u64 {
        self.depth.lock().map_or(0, |(ready, _, _)| ready)
    }

    fn queue(&self) -> Option<Arc<Queue>> {
        self.queue.get()?.upgrade()
    }

    /// How many this node's consumers can take now (and none if none).
    fn wanted(&self) -> u32 {
        self.consumers.lock().room(TAKE_MAX)
    }

    /// A consumer with credit, in turn; its credit taken.
    fn next_consumer(&self) -> Option<Arc<Consumer>> {
        self.consumers.lock().next_with_credit()
    }

    /// A take for this node's consumers (or a basic.get) and its answer,
    /// if one came. A take whose answer never came is released, so that
    /// what it held at home goes back instead of waiting there for this
    /// node to die.
    async fn take_from_home(self: &Arc<Self>, for_consumers: bool, max: u32, wait_ms: u32) -> Option<Answer> {
        let consumers = self.consumer_set();
        let version = consumers.version;
        let batch = NEXT_BATCH.fetch_add(1, Ordering::Relaxed);
        let call = Call::Take {
            queue: self.target.clone(),
            holder: self.me.clone(),
            batch,
            for_consumers,
            max,
            wait_ms,
            consumers,
        };
        let answer = self.call(&call).await;
        match &answer {
            Some(Answer::Taken { consumers, .. }) => {
                self.heard(version, consumers);
                let lost: Vec<u64> = self.unreleased.lock().drain(..).collect();
                for batch in lost {
                    self.release(batch);
                }
            }
            Some(Answer::NotFound) => {}
            // A home that is down holds nothing of it for long (a restart
            // forgets its holds), but one only cut off from this node may
            // still see it running and keep them: released once it answers.
            _ if !self.link.is_running(&self.home) => {
                let mut unreleased = self.unreleased.lock();
                if unreleased.len() < UNRELEASED_KEPT {
                    unreleased.push_back(batch);
                }
            }
            _ => self.release(batch),
        }
        answer
    }

    /// Gives back what take `batch` held at home (sent until it arrives).
    fn release(self: &Arc<Self>, batch: u64) {
        let release = Call::Release {
            queue: self.target.clone(),
            holder: self.me.clone(),
            batch,
        };
        let shared = self.clone();
        tokio::spawn(async move { shared.settle(&release).await });
    }

    /// Tells the home this node's consumers of the queue.
    fn consumers_call(&self, consumers: ConsumerSet) -> Call {
        Call::Consumers {
            queue: self.target.clone(),
            holder: self.me.clone(),
            consumers,
        }
    }

    /// This node's consumers as the home is told them.
    fn consumer_set(&self) -> ConsumerSet {
        self.consumers.lock().set()
    }

    /// Takes in what the home said of the consumer set of `version`: the
    /// ones it refused are cancelled; the taker looks again.
    fn heard(&self, version: u64, status: &ConsumerStatus) {
        let refused = self.consumers.lock().heard(version, status);
        for consumer in refused {
            tracing::info!(queue = %self.target.name, tag = %consumer.tag, "a consumer is cancelled: the queue is in exclusive use on another node");
            consumer.active.store(false, Ordering::Release);
            consumer.sink.cancelled(consumer.channel, consumer.tag.clone());
        }
        self.wake.notify_one();
    }

    fn note_depth(&self, ready: u64, consumers: Option<u64>) {
        let mut depth = self.depth.lock();
        let consumers = consumers.or(depth.map(|(_, c, _)| c)).unwrap_or(0);
        *depth = Some((ready, consumers, Instant::now()));
    }
}

fn entry_of(taken: calls::Taken) -> Option<QueueEntry> {
    let message = Message::decode(taken.message.into_vec())?;
    Some(QueueEntry {
        redelivered: taken.redelivered,
        delivery_count: taken.delivery_count,
        ..QueueEntry::new(message, Offset(taken.id), 0, None)
    })
}

impl RemoteQueue {
    fn send(&self, outgoing: Outgoing) -> bool {
        self.outgoing.send(outgoing).is_ok()
    }

    fn settle_ids(&self, ids: Vec<u64>, outcome: Outcome) {
        if !ids.is_empty() {
            self.send(Outgoing::Settle(ids, outcome));
        }
    }

    /// Sends publishes and settlements to the home, in order, in batches.
    async fn forward(shared: Arc<Shared>, mut inbox: mpsc::UnboundedReceiver<Outgoing>) {
        while let Some(first) = inbox.recv().await {
            let mut batch = vec![first];
            let mut bytes = 0;
            while batch.len() < PUBLISH_BATCH && bytes < PUBLISH_BATCH_BYTES {
                match inbox.try_recv() {
                    Ok(next) => {
                        if let Outgoing::Publish(message, ..) = &next {
                            bytes += message.len();
                        }
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            let mut messages = Vec::new();
            let mut tickets = Vec::new();
            // Left in the backlog until the home answers.
            let mut shares = Vec::new();
            for item in batch {
                match item {
                    Outgoing::Publish(message, ticket, share) => {
                        messages.push(serde_bytes::ByteBuf::from(message));
                        tickets.push(ticket);
                        shares.push(share);
                    }
                    Outgoing::Settle(ids, outcome) => {
                        let call = Call::Settle {
                            queue: shared.target.clone(),
                            holder: shared.me.clone(),
                            ids,
                            outcome,
                        };
                        shared.settle(&call).await;
                    }
                    Outgoing::Consumers(set) => {
                        // Not sent again if lost: every take carries the set.
                        let version = set.version;
                        let call = shared.consumers_call(set);
                        if let Some(Answer::Consumers(status)) = shared.call(&call).await {
                            shared.heard(version, &status);
                        }
                    }
                }
            }
            if messages.is_empty() {
                continue;
            }
            let call = Call::Publish {
                queue: shared.target.clone(),
                messages,
            };
            match shared.call(&call).await {
                Some(Answer::Published(outcomes)) if outcomes.len() == tickets.len() => {
                    for (ticket, stored) in tickets.iter().zip(outcomes) {
                        ticket.settle(stored);
                    }
                }
                _ => tickets.iter().for_each(|t| t.settle(false)),
            }
            drop(shares);
        }
    }

    /// Feeds this node's consumers from the home while it has any.
    async fn take(shared: Arc<Shared>, outgoing: mpsc::UnboundedSender<Outgoing>) {
        // The first call of this life: the home gives back what an earlier
        // life of this node held (a restart quicker than it noticed).
        let _ = shared.take_from_home(true, 0, 0).await;
        loop {
            if shared.deleted.load(Ordering::Acquire) {
                return;
            }
            let wanted = shared.wanted();
            let consumed = !shared.consumers.lock().is_empty();
            if wanted == 0 {
                // Woken by a consumer, by credit coming back, or to look again.
                let woken = tokio::time::timeout(Duration::from_secs(1), shared.wake.notified()).await;
                if woken.is_ok() || !consumed {
                    continue;
                }
                // Consumers here with no room (or none the home lets
                // receive): the home still hears of them each second
                // (`x-expires` counts them as a use) and says who may.
            }
            let wait_ms = if wanted == 0 { 0 } else { TAKE_WAIT_MS };
            let (messages, ready) = match shared.take_from_home(true, wanted, wait_ms).await {
                Some(Answer::Taken { messages, ready, .. }) => (messages, ready),
                Some(Answer::NotFound) => {
                    tracing::warn!(queue = %shared.target.name, home = %shared.home, "the queue is not on its home node");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                _ => {
                    // The home does not answer: try again in a while.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            shared.note_depth(ready, None);
            let Some(queue) = shared.queue() else {
                let ids = messages.iter().map(|m| m.id).collect();
                let _ = outgoing.send(Outgoing::Settle(ids, Outcome::Return));
                return;
            };
            let mut back = Vec::new();
            let mut waiting = VecDeque::new();
            for taken in messages {
                let id = taken.id;
                match entry_of(taken) {
                    Some(entry) => waiting.push_back((id, entry)),
                    None => back.push(id),
                }
            }
            // What no consumer here can take at once waits a moment for
            // one (a consumer cancelled while its Take waited at home, and
            // another one coming): given back at once, a message would
            // reach the queue's next consumer after later ones.
            let until = Instant::now() + HOLD_FOR_CONSUMER;
            loop {
                while let Some((id, entry)) = waiting.pop_front() {
                    let Some(consumer) = shared.next_consumer() else {
                        waiting.push_front((id, entry));
                        break;
                    };
                    if deliver_to(&consumer, &queue, entry).is_err() {
                        consumer.release_credit(1);
                        back.push(id);
                    }
                }
                let left = until.saturating_duration_since(Instant::now());
                if waiting.is_empty() || left.is_zero() || shared.deleted.load(Ordering::Acquire) {
                    break;
                }
                let _ = tokio::time::timeout(left, shared.wake.notified()).await;
            }
            back.extend(waiting.into_iter().map(|(id, _)| id));
            if !back.is_empty() {
                let _ = outgoing.send(Outgoing::Settle(back, Outcome::Return));
                // More was taken than went out (a transit window full, a
                // consumer gone): wait for credit rather than take it again.
                let _ = tokio::time::timeout(Duration::from_secs(1), shared.wake.notified()).await;
            }
        }
    }
}

impl QueueBackend for RemoteQueue {
    fn attach(&self, queue: &Arc<Queue>) {
        let _ = self.shared.queue.set(Arc::downgrade(queue));
        let Some(inbox) = self.inbox.lock().take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(Self::forward(self.shared.clone(), inbox));
                runtime.spawn(Self::take(self.shared.clone(), self.outgoing.clone()));
            }
            Err(_) => tracing::error!("queue '{}' known outside a runtime: it cannot be reached", queue.name),
        }
    }

    fn publish(&self, queue: &Arc<Queue>, message: Arc<Message>) -> Enqueued {
        if !self.shared.link.is_running(&self.shared.home) {
            return Enqueued::Rejected;
        }
        let ticket = Ticket::new();
        let encoded = message.encode();
        let share = self.backlog.add(encoded.len());
        if !self.send(Outgoing::Publish(encoded, ticket.clone(), share)) {
            return Enqueued::Rejected;
        }
        queue.counters.published_locked();
        self.backlog
            .wait_below_limit(|| self.outgoing.is_closed() || self.shared.deleted.load(Ordering::Acquire));
        Enqueued::Replicating(ticket)
    }

    /// Asks the home, which knows every node's consumers, whether it may
    /// join; while the home does not answer, it joins here and the home
    /// hears of it with the next take.
    fn add_consumer(&self, _queue: &Arc<Queue>, consumer: Arc<Consumer>) -> Result<(), ConsumeRefusal> {
        let (key, set) = {
            let mut consumers = self.shared.consumers.lock();
            if consumers.refuses(&consumer) {
                return Err(ConsumeRefusal::ExclusiveInUse);
            }
            let key = consumers.add(consumer);
            (key, consumers.set())
        };
        if self.shared.link.is_running(&self.shared.home) {
            let version = set.version;
            let call = self.shared.consumers_call(set);
            if let Some(Answer::Consumers(status)) = self.shared.call_blocking(call) {
                if status.refused.contains(&key) {
                    self.shared.consumers.lock().remove_key(key);
                    return Err(ConsumeRefusal::ExclusiveInUse);
                }
                self.shared.heard(version, &status);
            }
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    /// The home hears of it before the cancel is answered, so it hands
    /// this node nothing more for it (a single active consumer's successor
    /// starts at the next message); while the home does not answer, it
    /// hears with the next call.
    fn remove_consumer(&self, _queue: &Arc<Queue>, consumer: &Arc<Consumer>) -> bool {
        let set = {
            let mut consumers = self.shared.consumers.lock();
            if !consumers.remove(consumer) {
                return false;
            }
            consumers.set()
        };
        if self.shared.link.is_running(&self.shared.home) {
            let version = set.version;
            let call = self.shared.consumers_call(set.clone());
            if let Some(Answer::Consumers(status)) = self.shared.call_blocking(call) {
                self.shared.heard(version, &status);
                return false;
            }
        }
        self.send(Outgoing::Consumers(set));
        // Auto-delete is the home's to decide (its consumers are not all here).
        false
    }

    fn get(&self, queue: &Arc<Queue>, ack_required: bool) -> Option<(QueueEntry, u64)> {
        let shared = self.shared.clone();
        let answer = crate::blocking::wait(async move { shared.take_from_home(false, 1, 0).await }).flatten();
        let Some(Answer::Taken {
            mut messages, ready, ..
        }) = answer
        else {
            return None;
        };
        self.shared.note_depth(ready, None);
        let taken = messages.pop()?;
        let id = taken.id;
        let Some(entry) = entry_of(taken) else {
            self.settle_ids(vec![id], Outcome::Discard);
            return None;
        };
        queue
            .counters
            .got_locked(entry.redelivered, ack_required, entry.message.body_size());
        if !ack_required {
            self.settle_ids(vec![id], Outcome::Ack);
        }
        Some((entry, ready))
    }

    fn settle(&self, _queue: &Arc<Queue>, entries: Vec<QueueEntry>, settlement: Settlement) {
        let outcome = match settlement {
            Settlement::Ack => Outcome::Ack,
            Settlement::Requeue => Outcome::Requeue,
            Settlement::Discard => Outcome::Discard,
        };
        self.settle_ids(entries.iter().map(|e| e.offset.0).collect(), outcome);
        // Credit came back: more may be taken.
        self.shared.wake.notify_one();
    }

    fn settle_without_ack(&self, _queue: &Arc<Queue>, entry: &QueueEntry) {
        self.settle_ids(vec![entry.offset.0], Outcome::Ack);
        self.shared.wake.notify_one();
    }

    fn return_undelivered(&self, _queue: &Arc<Queue>, entry: QueueEntry) {
        self.settle_ids(vec![entry.offset.0], Outcome::Return);
        self.shared.wake.notify_one();
    }

    fn kick(&self, _queue: &Arc<Queue>) {
        self.shared.wake.notify_one();
    }

    fn purge(&self, _queue: &Arc<Queue>) -> u64 {
        let call = Call::Purge {
            queue: self.shared.target.clone(),
        };
        match self.shared.call_blocking(call) {
            Some(Answer::Purged(count)) => count,
            _ => 0,
        }
    }

    fn arguments_changed(&self, _queue: &Arc<Queue>) {}

    fn delete(&self, queue: &Arc<Queue>) -> u64 {
        self.shared.deleted.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        let consumers = self.shared.consumers.lock().clear();
        for consumer in consumers {
            consumer.active.store(false, Ordering::Release);
            consumer.sink.cancelled(consumer.channel, consumer.tag.clone());
        }
        if let Some(p) = &self.persistence {
            p.drop_queue(queue);
        }
        self.shared.known_ready()
    }

    /// Asked of the home (queue.declare-ok, if-empty): fresh, unless the
    /// home does not answer.
    fn message_count(&self) -> u64 {
        if self.shared.link.is_running(&self.shared.home) {
            let call = Call::Depth {
                queue: self.shared.target.clone(),
            };
            if let Some(Answer::Depth { ready, consumers }) = self.shared.call_blocking(call) {
                self.shared.note_depth(ready, Some(consumers));
            }
        }
        self.shared.known_ready()
    }

    fn depth(&self) -> Depth {
        let known = *self.shared.depth.lock();
        let stale = known.is_none_or(|(_, _, at)| at.elapsed() >= DEPTH_FRESH);
        if stale && !self.shared.deleted.load(Ordering::Acquire) {
            // Asked in the background; this reading gives what was known.
            let shared = self.shared.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                // Marked fresh now, so a burst of readings asks once.
                shared.note_depth(known.map_or(0, |(r, _, _)| r), None);
                runtime.spawn(async move {
                    let call = Call::Depth {
                        queue: shared.target.clone(),
                    };
                    if let Some(Answer::Depth { ready, consumers }) = shared.call(&call).await {
                        shared.note_depth(ready, Some(consumers));
                    }
                });
            }
        }
        let (ready, home_consumers) = known.map_or((0, 0), |(r, c, _)| (r, c));
        Depth {
            ready,
            ready_bytes: 0,
            paged_out: 0,
            paged_out_bytes: 0,
            // The home counts every node's, these among them.
            consumers: home_consumers.max(self.shared.consumers.lock().len() as u64),
        }
    }

    fn head(&self, _now: tokio::time::Instant) -> Head {
        Head::default()
    }

    fn store_position(&self) -> Option<(QueueId, Offset)> {
        None
    }

    /// Asked of the home, which counts every node's consumers (if-unused,
    /// queue.declare-ok); this node's alone while it does not answer.
    fn consumer_count(&self) -> u64 {
        let here = self.shared.consumers.lock().len() as u64;
        if self.shared.link.is_running(&self.shared.home) {
            let call = Call::Depth {
                queue: self.shared.target.clone(),
            };
            if let Some(Answer::Depth { ready, consumers }) = self.shared.call_blocking(call) {
                self.shared.note_depth(ready, Some(consumers));
                return consumers.max(here);
            }
        }
        here
    }

    fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.shared.consumers.lock().all()
    }

    fn touch(&self) {}

    fn added_header(&self, _entry: &QueueEntry) -> Option<AddedHeader> {
        None
    }

    fn restore(&self, _queue: &Arc<Queue>, _summary: QueueSummary, _delivered_below: Offset) {}
}
