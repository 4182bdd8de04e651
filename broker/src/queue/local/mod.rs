//! The single-node queue engine that classic queues, and quorum queues on
//! one node, run on: ready messages, consumers, and the dispatch that moves
//! one to the other, plus the features beside them: TTLs and expiry
//! (`expiry.rs`), ordered dead-lettering (`dead_letters.rs`), length limits,
//! priorities (`messages.rs`), delivery limits, single active consumer and
//! consumer priorities, and paging to the store (`paging.rs`,
//! `persistence.rs`). What differs between the types is in [`Rules`].
//!
//! A queue's state sits behind one mutex, taken by publishers to enqueue and
//! by channels to ack, get or requeue. Dispatch runs inside that lock: it
//! picks a consumer with prefetch credit (highest priority first,
//! round-robin among equals) and hands the message to the consumer's
//! connection, which assigns delivery tags and writes frames. Dead letters
//! are collected under the lock and published after it is released, so two
//! queues dead-lettering into each other never wait on each other's locks.

mod dead_letters;
mod expiry;
mod messages;
mod paging;
mod persistence;
mod tails;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;
use warren_protocol::{FieldValue, ShortStr};
use warren_store::{Offset, QueueId, QueueSummary};

use super::arguments::Overflow;
use super::dead_letter::DeathReason;
use super::lag::ArrivalClock;
use super::{
    deliver_to, AddedHeader, ConsumeRefusal, Consumer, Depth, Enqueued, Head, Identity, Queue, QueueArguments,
    QueueBackend, QueueEntry, QueueHost, QueueOf, Settlement,
};
use crate::message::Message;
use messages::MessageList;
pub(crate) use persistence::{Persistence, StoreLink};
use tails::PagedTails;

/// What differs between the queue types that run on this engine.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rules {
    /// How many times a message may come back before it is dead-lettered
    /// instead when its arguments set no limit (quorum queues); None: as
    /// often as it likes.
    pub default_delivery_limit: Option<u64>,
    /// Whether deliveries carry `x-delivery-count` and counts survive a
    /// restart (quorum queues).
    pub counts_deliveries: bool,
}

pub(crate) struct LocalQueue {
    /// The queue it is the backend of, for the timer task and read-ahead
    /// (which must not keep it alive).
    me: Weak<QueueOf<LocalQueue>>,
    /// The queue's name, for log lines.
    name: ShortStr,
    rules: Rules,
    /// The vhost, to route dead letters and to delete itself on expiry.
    host: Weak<dyn QueueHost>,
    /// Where its messages are stored: a durable queue's persistent ones,
    /// and any queue's paged-out ones (None without a data directory).
    persistence: Option<Persistence>,
    /// Whether it may keep only a window of its ready messages in memory
    /// (it does once it has a store id: `paging.rs`).
    may_page: bool,
    /// Its priority levels (1 without `x-max-priority`).
    levels: usize,
    state: Mutex<QueueState>,
    deleted: AtomicBool,
    /// Messages that died here, waiting to be dead-lettered in the order
    /// they died, and whether a thread is publishing them now.
    dead_letters: Mutex<VecDeque<(QueueEntry, DeathReason)>>,
    dead_lettering: AtomicBool,
    /// The expiry timer: started on first need, woken when deadlines move.
    timer_started: AtomicBool,
    timer_wake: Arc<Notify>,
}

struct QueueState {
    /// Ready messages in memory (all of them, unless the queue pages).
    ready: MessageList,
    /// Ready messages after those, on disk only.
    paged: PagedTails,
    consumers: Vec<Arc<Consumer>>,
    /// Where the round-robin continues.
    next_consumer: usize,
    next_offset: Offset,
    /// Set once a consumer has attached, for auto-delete.
    had_consumers: bool,
    /// Last declare, get or consumer change, for `x-expires`.
    last_used: Instant,
    /// When offsets were reached, for the age of the oldest ready message.
    arrivals: ArrivalClock,
}

impl QueueState {
    /// Ready messages, in memory and on disk.
    fn ready_count(&self) -> u64 {
        self.ready.len() as u64 + self.paged.count
    }

    fn ready_bytes(&self) -> u64 {
        self.ready.bytes() as u64 + self.paged.bytes
    }
}

/// Messages that died under the lock, to dead-letter after it.
type Dead = Vec<(QueueEntry, DeathReason)>;

impl LocalQueue {
    /// A queue running on this engine with `rules`.
    pub(in crate::queue) fn queue(
        identity: Identity,
        rules: Rules,
        host: Weak<dyn QueueHost>,
        persistence: Option<Persistence>,
    ) -> Arc<Queue> {
        let queue: Arc<QueueOf<LocalQueue>> = Arc::new_cyclic(|me| {
            let backend = LocalQueue::new(me.clone(), &identity, rules, host, persistence);
            QueueOf::assemble(identity, backend)
        });
        queue
    }

    fn new(
        me: Weak<QueueOf<LocalQueue>>,
        identity: &Identity,
        rules: Rules,
        host: Weak<dyn QueueHost>,
        persistence: Option<Persistence>,
    ) -> LocalQueue {
        let args = &identity.args;
        let may_page = persistence.is_some();
        let ready = MessageList::new(args.max_priority);
        let levels = ready.level_count();
        LocalQueue {
            me,
            name: identity.name.clone(),
            rules,
            host,
            persistence,
            may_page,
            levels,
            state: Mutex::new(QueueState {
                ready,
                paged: PagedTails::new(levels),
                consumers: Vec::new(),
                next_consumer: 0,
                next_offset: Offset::default(),
                had_consumers: false,
                last_used: Instant::now(),
                arrivals: ArrivalClock::default(),
            }),
            deleted: AtomicBool::new(false),
            dead_letters: Mutex::new(VecDeque::new()),
            dead_lettering: AtomicBool::new(false),
            timer_started: AtomicBool::new(false),
            timer_wake: Arc::new(Notify::new()),
        }
    }

    fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// The deadline a new message gets from the queue TTL and its own
    /// `expiration` (already validated by the channel).
    fn expiry_for(args: &QueueArguments, message: &Message, now: Instant) -> Option<Instant> {
        let ttl = message.ttl_in(args.message_ttl)?;
        // An expiration too far to represent never comes.
        now.checked_add(Duration::from_millis(ttl))
    }

    /// reject-publish: would this message take the queue over a limit?
    fn would_overflow(args: &QueueArguments, state: &QueueState, message: &Message) -> bool {
        let over_count = args.max_length.is_some_and(|max| state.ready_count() >= max);
        let over_bytes = args
            .max_length_bytes
            .is_some_and(|max| state.ready_bytes() + message.body_size() as u64 > max);
        over_count || over_bytes
    }

    /// drop-head: drops the oldest messages until the queue is within its limits.
    fn enforce_length_limit(&self, args: &QueueArguments, state: &mut QueueState, dead: &mut Dead) {
        let (max_len, max_bytes) = (args.max_length, args.max_length_bytes);
        if max_len.is_none() && max_bytes.is_none() {
            return;
        }
        while max_len.is_some_and(|m| state.ready_count() > m) || max_bytes.is_some_and(|m| state.ready_bytes() > m) {
            let Some(entry) = state.ready.pop_oldest_lowest() else {
                break;
            };
            dead.push((entry, DeathReason::MaxLen));
            self.refill_if_low(state);
        }
    }

    /// Puts delivered-but-unacknowledged messages back, marked redelivered.
    /// A message returned more often than the delivery limit is
    /// dead-lettered instead.
    fn requeue(&self, queue: &Arc<Queue>, entries: Vec<QueueEntry>) {
        if self.is_deleted() {
            return;
        }
        let limit = queue.args().delivery_limit.or(self.rules.default_delivery_limit);
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        for mut entry in entries {
            entry.redelivered = true;
            entry.delivery_count = entry.delivery_count.saturating_add(1);
            if limit.is_some_and(|l| u64::from(entry.delivery_count) > l) {
                dead.push((entry, DeathReason::DeliveryLimit));
            } else {
                if self.rules.counts_deliveries {
                    self.persist_delivery_count(&entry);
                }
                state.ready.requeue(entry);
            }
        }
        self.dispatch(queue, &mut state, Instant::now(), &mut dead);
        self.unlock_and_dead_letter(queue, state, dead);
    }

    /// The next message that has not expired (the oldest of the highest
    /// priority); expired ones go to `dead`. None also while the next one
    /// is still on disk.
    fn pop_live(&self, state: &mut QueueState, now: Instant, dead: &mut Dead) -> Option<QueueEntry> {
        while let Some(level) = state.next_level() {
            let entry = state.ready.pop_level(level);
            self.refill_if_low(state);
            let entry = entry?;
            if entry.is_expired(now) {
                dead.push((entry, DeathReason::Expired));
            } else {
                return Some(entry);
            }
        }
        None
    }

    /// Moves ready messages to consumers with credit.
    fn dispatch(&self, queue: &Arc<Queue>, state: &mut QueueState, now: Instant, dead: &mut Dead) {
        if state.ready.is_empty() || state.consumers.is_empty() {
            return;
        }
        let args = queue.args();
        while !state.ready.is_empty() && !state.consumers.is_empty() {
            let Some(index) = Self::next_consumer_with_credit(&args, state) else {
                return;
            };
            let consumer = state.consumers[index].clone();
            let Some(entry) = self.pop_live(state, now, dead) else {
                consumer.release_credit(1);
                return;
            };
            self.mark_delivered(&entry);
            if let Err(entry) = deliver_to(&consumer, queue, entry) {
                // The connection is gone: its consumer goes too.
                consumer.release_credit(1);
                state.ready.requeue(entry);
                state.consumers.remove(index);
            }
        }
    }

    /// Picks the consumer for the next message and takes its credit: with a
    /// single active consumer only the first may receive; otherwise the
    /// highest `x-priority` among those with credit, round-robin among equals.
    fn next_consumer_with_credit(args: &QueueArguments, state: &mut QueueState) -> Option<usize> {
        if args.single_active_consumer {
            let first = state.consumers.first()?;
            return (first.is_active() && first.try_take_credit()).then_some(0);
        }
        let n = state.consumers.len();
        let top = state
            .consumers
            .iter()
            .filter(|c| c.is_active() && c.has_credit())
            .map(|c| c.priority)
            .max()?;
        for step in 0..n {
            let index = (state.next_consumer + step) % n;
            let consumer = &state.consumers[index];
            if consumer.priority == top && consumer.is_active() && consumer.try_take_credit() {
                state.next_consumer = (index + 1) % n;
                return Some(index);
            }
        }
        None
    }
}

impl QueueBackend for LocalQueue {
    fn attach(&self, queue: &Arc<Queue>) {
        if queue.args().expires.is_some() {
            self.ensure_timer();
        }
    }

    fn arguments_changed(&self, queue: &Arc<Queue>) {
        if self.is_deleted() {
            return;
        }
        let args = queue.args();
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        state.last_used = Instant::now();
        // A lower limit drops the oldest only when the queue drops at all
        // (reject-publish keeps what it holds and refuses what comes).
        if args.overflow == Overflow::DropHead {
            self.enforce_length_limit(&args, &mut state, &mut dead);
        }
        self.dispatch(queue, &mut state, Instant::now(), &mut dead);
        self.unlock_and_dead_letter(queue, state, dead);
        if args.expires.is_some() {
            self.ensure_timer();
        }
        self.timer_wake.notify_one();
    }

    fn publish(&self, queue: &Arc<Queue>, message: Arc<Message>) -> Enqueued {
        let args = queue.args();
        let args: &QueueArguments = &args;
        let now = Instant::now();
        let expires_at = Self::expiry_for(args, &message, now);
        let durable = self.persistence.as_ref().is_some_and(Persistence::is_durable);
        let persistent = message.is_persistent();
        if let Some((p, _)) = self.stored_as() {
            if durable && persistent {
                // A persistent message's body goes to the store before the
                // lock is taken, so publishers to other queues never wait on it.
                if p.store_body_unlocked(&message).is_err() {
                    return Enqueued::Rejected;
                }
            } else {
                // It may be paged out under the lock: wait here, not there,
                // if the disk has fallen far behind.
                p.durability.throttle();
            }
        }
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        if args.overflow != Overflow::DropHead && Self::would_overflow(args, &state, &message) {
            drop(state);
            if args.overflow == Overflow::RejectPublishDlx {
                let entry = QueueEntry::new(message, Offset::default(), 0, expires_at);
                self.dead_letter(queue, vec![(entry, DeathReason::MaxLen)]);
            }
            return Enqueued::Rejected;
        }
        let offset = state.next_offset;
        let priority = state.ready.level_of(message.header.properties().priority.unwrap_or(0));
        let page_out = self.should_page_out(&state, priority);
        let in_store = (durable && persistent) || page_out;
        if in_store && self.persist(queue, &message, offset, expires_at, now).is_err() {
            return Enqueued::Rejected;
        }
        state.next_offset = offset.next();
        state.arrivals.arrived(offset, now);
        queue.counters.published_locked();
        let stored = durable && persistent;
        let mut new_head = false;
        if page_out {
            state.paged.push(priority, offset, message.body_size());
        } else {
            let mut entry = QueueEntry::new(message, offset, priority, expires_at);
            entry.in_store = in_store;
            new_head = state.ready.push_back(entry);
        }
        self.dispatch(queue, &mut state, now, &mut dead);
        self.enforce_length_limit(args, &mut state, &mut dead);
        if expires_at.is_some() {
            self.expire_heads(&mut state, now, &mut dead);
            if new_head {
                self.timer_wake.notify_one();
            }
        }
        self.unlock_and_dead_letter(queue, state, dead);
        if expires_at.is_some() {
            self.ensure_timer();
        }
        if stored {
            Enqueued::Stored
        } else {
            Enqueued::Accepted
        }
    }

    fn add_consumer(&self, queue: &Arc<Queue>, consumer: Arc<Consumer>) -> Result<(), ConsumeRefusal> {
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        if state.consumers.iter().any(|c| c.exclusive) || (consumer.exclusive && !state.consumers.is_empty()) {
            return Err(ConsumeRefusal::ExclusiveInUse);
        }
        state.consumers.push(consumer);
        state.had_consumers = true;
        let now = Instant::now();
        state.last_used = now;
        self.dispatch(queue, &mut state, now, &mut dead);
        self.unlock_and_dead_letter(queue, state, dead);
        Ok(())
    }

    fn remove_consumer(&self, queue: &Arc<Queue>, consumer: &Arc<Consumer>) -> bool {
        let mut state = self.state.lock();
        let before = state.consumers.len();
        state.consumers.retain(|c| !Arc::ptr_eq(c, consumer));
        if state.consumers.len() == before {
            return false;
        }
        state.last_used = Instant::now();
        let auto_delete = queue.settings.auto_delete && state.had_consumers && state.consumers.is_empty();
        // With a single active consumer, the next one takes over now.
        let mut dead = Dead::new();
        if !auto_delete {
            self.dispatch(queue, &mut state, Instant::now(), &mut dead);
        }
        self.unlock_and_dead_letter(queue, state, dead);
        if queue.args().expires.is_some() {
            self.timer_wake.notify_one();
        }
        auto_delete
    }

    fn get(&self, queue: &Arc<Queue>, ack_required: bool) -> Option<(QueueEntry, u64)> {
        loop {
            let now = Instant::now();
            let mut dead = Dead::new();
            let mut state = self.state.lock();
            state.last_used = now;
            let entry = self.pop_live(&mut state, now, &mut dead);
            if let (None, Some((level, from))) = (&entry, state.waiting_on_disk()) {
                // The window ran dry before the read-ahead landed: the next
                // messages are read here (outside the lock), then again.
                self.unlock_and_dead_letter(queue, state, dead);
                self.page_in_now(level, from);
                continue;
            }
            let remaining = state.ready_count();
            if let Some(entry) = &entry {
                self.mark_delivered(entry);
                queue
                    .counters
                    .got_locked(entry.redelivered, ack_required, entry.message.body_size());
            }
            self.unlock_and_dead_letter(queue, state, dead);
            return Some((entry?, remaining));
        }
    }

    fn settle(&self, queue: &Arc<Queue>, entries: Vec<QueueEntry>, settlement: Settlement) {
        match settlement {
            Settlement::Ack => {
                for entry in &entries {
                    self.forget(queue, entry);
                }
            }
            Settlement::Requeue => return self.requeue(queue, entries),
            Settlement::Discard => {
                let dead = entries.into_iter().map(|e| (e, DeathReason::Rejected)).collect();
                self.dead_letter(queue, dead);
            }
        }
        self.kick(queue);
    }

    fn settle_without_ack(&self, queue: &Arc<Queue>, entry: &QueueEntry) {
        self.forget(queue, entry);
    }

    fn return_undelivered(&self, queue: &Arc<Queue>, entry: QueueEntry) {
        if self.is_deleted() {
            return;
        }
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        state.ready.requeue(entry);
        self.dispatch(queue, &mut state, Instant::now(), &mut dead);
        self.unlock_and_dead_letter(queue, state, dead);
    }

    fn relieve_memory(&self, queue: &Arc<Queue>) {
        LocalQueue::relieve_memory(self, queue);
    }

    fn kick(&self, queue: &Arc<Queue>) {
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        if !state.ready.is_empty() {
            self.dispatch(queue, &mut state, Instant::now(), &mut dead);
        }
        self.unlock_and_dead_letter(queue, state, dead);
    }

    fn purge(&self, queue: &Arc<Queue>) -> u64 {
        let mut state = self.state.lock();
        let purged = state.ready.drain();
        let paged = state.paged.clear();
        let end = state.next_offset;
        drop(state);
        for entry in &purged {
            self.forget(queue, entry);
        }
        if !paged.is_empty() {
            self.forget_tails(queue, &paged, end);
        }
        purged.len() as u64 + paged.count
    }

    fn delete(&self, queue: &Arc<Queue>) -> u64 {
        self.deleted.store(true, Ordering::Release);
        self.timer_wake.notify_one();
        let mut state = self.state.lock();
        for consumer in state.consumers.drain(..) {
            consumer.active.store(false, Ordering::Release);
            consumer.sink.cancelled(consumer.channel, consumer.tag.clone());
        }
        let ready = state.ready.drain();
        let paged = state.paged.clear().count;
        drop(state);
        if let Some(p) = &self.persistence {
            p.drop_queue(queue);
        }
        ready.len() as u64 + paged
    }

    fn message_count(&self) -> u64 {
        self.state.lock().ready_count()
    }

    fn depth(&self) -> Depth {
        let state = self.state.lock();
        Depth {
            ready: state.ready_count(),
            ready_bytes: state.ready_bytes(),
            paged_out: state.paged.count,
            paged_out_bytes: state.paged.bytes,
            consumers: state.consumers.len() as u64,
        }
    }

    fn store_position(&self) -> Option<(QueueId, Offset)> {
        let (p, id) = self.stored_as()?;
        p.is_durable().then(|| (id, self.state.lock().next_offset))
    }

    fn head(&self, now: Instant) -> Head {
        let mut state = self.state.lock();
        let oldest = state.ready.oldest();
        let timestamp = oldest.and_then(|e| e.message.header.properties().timestamp);
        let offset = oldest.map(|e| e.offset).or_else(|| state.paged.oldest());
        Head {
            age: offset.and_then(|offset| state.arrivals.age_of(offset, now)),
            timestamp,
        }
    }

    fn consumer_count(&self) -> u64 {
        self.state.lock().consumers.len() as u64
    }

    fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.state.lock().consumers.clone()
    }

    fn touch(&self) {
        let mut state = self.state.lock();
        state.last_used = Instant::now();
        drop(state);
        self.timer_wake.notify_one();
    }

    fn added_header(&self, entry: &QueueEntry) -> Option<AddedHeader> {
        self.rules.counts_deliveries.then(|| delivery_count(entry))
    }

    fn restore(&self, _queue: &Arc<Queue>, summary: QueueSummary, delivered_below: Offset) {
        // What was on disk has waited at least since now (its arrival
        // times are not stored).
        self.state.lock().arrivals.arrived(Offset(0), Instant::now());
        self.restore_from_store(summary, delivered_below);
    }
}

/// A copy of the header with `x-delivery-count` set, as quorum queues report
/// how often a message was delivered before (0 on the first delivery, as
/// RabbitMQ 3.10 sends).
pub(crate) fn delivery_count(entry: &QueueEntry) -> AddedHeader {
    AddedHeader {
        key: "x-delivery-count",
        value: FieldValue::I64(i64::from(entry.delivery_count)),
    }
}

impl LocalQueue {
    /// Releases the queue's lock and dead-letters what died under it. The
    /// dead letters are queued before the lock goes, so they reach the
    /// dead-letter exchange in the order they died, as from RabbitMQ's
    /// single queue process, even when several threads expire, reject or
    /// drop messages of this queue at once.
    fn unlock_and_dead_letter(&self, queue: &Arc<Queue>, state: MutexGuard<'_, QueueState>, dead: Dead) {
        if dead.is_empty() {
            return;
        }
        self.dead_letters.lock().extend(dead);
        drop(state);
        self.publish_queued_dead_letters(queue);
    }

    /// Dead-letters messages that died without the queue's lock held.
    fn dead_letter(&self, queue: &Arc<Queue>, dead: Dead) {
        if dead.is_empty() {
            return;
        }
        self.dead_letters.lock().extend(dead);
        self.publish_queued_dead_letters(queue);
    }
}
