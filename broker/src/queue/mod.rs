//! Queues: ready messages, consumers, and the dispatch that moves one to the
//! other, plus the features that live beside them: TTLs and expiry
//! (`expiry.rs`), dead-lettering (`dead_letter.rs`), length limits,
//! priorities (`messages.rs`), delivery limits, single active consumer and
//! consumer priorities, and paging to disk (`paging.rs`).
//!
//! A queue's state sits behind one mutex, taken by publishers to enqueue and
//! by channels to ack, get or requeue. Dispatch runs inside that lock: it
//! picks a consumer with prefetch credit (highest priority first,
//! round-robin among equals) and hands the message to the consumer's
//! connection, which assigns delivery tags and writes frames. Dead letters
//! are collected under the lock and published after it is released, so two
//! queues dead-lettering into each other never wait on each other's locks.

mod arguments;
mod consumer;
pub mod dead_letter;
mod entry;
mod expiry;
mod messages;
mod paging;
mod persistence;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;
use warren_protocol::{FieldTable, ShortStr};

pub use arguments::{type_name, Overflow, QueueArguments, QueueType};
pub use consumer::{Consumer, Credit};
pub use dead_letter::DeathReason;
pub use entry::QueueEntry;
use messages::MessageList;
use paging::PagedTail;

use crate::connection::handle::{ConnectionId, Outbound};
use crate::durability::Durability;
use crate::message::Message;
use crate::vhost::VHost;

/// Quorum queues' delivery limit when none is declared (RabbitMQ 4).
pub const QUORUM_DEFAULT_DELIVERY_LIMIT: u64 = 20;

/// The declared properties of a queue, fixed at declaration.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    pub durable: bool,
    pub exclusive_owner: Option<ConnectionId>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

pub struct Queue {
    pub name: ShortStr,
    pub vhost_name: Arc<str>,
    pub settings: QueueSettings,
    /// The typed form of `settings.arguments`.
    pub args: QueueArguments,
    /// The vhost, to route dead letters and to delete itself on expiry.
    vhost: Weak<VHost>,
    /// For a durable queue: where its persistent messages are stored.
    persistence: Option<Persistence>,
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

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

struct QueueState {
    /// Ready messages in memory (all of them, unless the queue pages).
    ready: MessageList,
    /// Ready messages after those, on disk only.
    paged: PagedTail,
    consumers: Vec<Arc<Consumer>>,
    /// Where the round-robin continues.
    next_consumer: usize,
    next_offset: u64,
    /// Set once a consumer has attached, for auto-delete.
    had_consumers: bool,
    /// Last declare, get or consumer change, for `x-expires`.
    last_used: Instant,
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

/// A durable queue's link to the store.
pub struct Persistence {
    pub durability: Arc<Durability>,
    /// The queue's id in the store.
    pub id: u64,
}

/// Why a consumer could not attach.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsumeRefusal {
    /// Another consumer holds the queue exclusively, or this one asked for
    /// exclusivity and others exist.
    ExclusiveInUse,
}

/// What became of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Accepted,
    /// Accepted and written to the store: a confirm waits for the next sync.
    Stored,
    /// Refused by `x-overflow` reject-publish(-dlx): the publisher gets a nack.
    Rejected,
}

impl Queue {
    pub fn new(
        name: ShortStr,
        vhost: &Arc<VHost>,
        settings: QueueSettings,
        args: QueueArguments,
        persistence: Option<Persistence>,
    ) -> Arc<Queue> {
        let queue = Arc::new(Queue {
            name,
            vhost_name: vhost.name.clone(),
            vhost: Arc::downgrade(vhost),
            persistence,
            state: Mutex::new(QueueState {
                ready: MessageList::new(args.max_priority),
                paged: PagedTail::default(),
                consumers: Vec::new(),
                next_consumer: 0,
                next_offset: 0,
                had_consumers: false,
                last_used: Instant::now(),
            }),
            settings,
            args,
            deleted: AtomicBool::new(false),
            dead_letters: Mutex::new(VecDeque::new()),
            dead_lettering: AtomicBool::new(false),
            timer_started: AtomicBool::new(false),
            timer_wake: Arc::new(Notify::new()),
        });
        if queue.args.expires.is_some() {
            queue.ensure_timer();
        }
        queue
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn is_exclusive(&self) -> bool {
        self.settings.exclusive_owner.is_some()
    }

    pub fn is_quorum(&self) -> bool {
        self.args.queue_type == QueueType::Quorum
    }

    /// How many times a message may come back before it is dead-lettered.
    pub fn delivery_limit(&self) -> Option<u64> {
        match self.args.queue_type {
            QueueType::Quorum => Some(self.args.delivery_limit.unwrap_or(QUORUM_DEFAULT_DELIVERY_LIMIT)),
            QueueType::Classic => None,
        }
    }

    pub fn message_count(&self) -> usize {
        self.state.lock().ready_count() as usize
    }

    /// Total body bytes of the ready messages.
    pub fn message_bytes(&self) -> usize {
        self.state.lock().ready_bytes() as usize
    }

    pub fn consumer_count(&self) -> usize {
        self.state.lock().consumers.len()
    }

    /// Notes a use of the queue (redeclaration, get), for `x-expires`.
    pub fn touch(&self) {
        if self.args.expires.is_some() {
            self.state.lock().last_used = Instant::now();
            self.timer_wake.notify_one();
        }
    }

    /// The deadline a new message gets from the queue TTL and its own
    /// `expiration` (already validated by the channel).
    pub(crate) fn expiry_for(&self, message: &Message, now: Instant) -> Option<Instant> {
        let per_message = message.expiration_ms();
        let ttl = match (self.args.message_ttl, per_message) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }?;
        // An expiration too far to represent never comes.
        now.checked_add(Duration::from_millis(ttl))
    }

    /// Enqueues a newly published message and dispatches what it can.
    pub fn publish(self: &Arc<Self>, message: Arc<Message>) -> Enqueued {
        let now = Instant::now();
        let expires_at = self.expiry_for(&message, now);
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        if self.args.overflow != Overflow::DropHead && self.would_overflow(&state, &message) {
            drop(state);
            if self.args.overflow == Overflow::RejectPublishDlx {
                let entry = self.entry(message, 0, None);
                self.dead_letter(vec![(entry, DeathReason::MaxLen)]);
            }
            return Enqueued::Rejected;
        }
        let offset = state.next_offset;
        let page_out = self.should_page_out(&state);
        let persistent = message.is_persistent();
        let in_store = self.persistence.is_some() && (persistent || page_out);
        if in_store && self.persist(&message, offset, expires_at, now).is_err() {
            return Enqueued::Rejected;
        }
        state.next_offset += 1;
        let stored = in_store && persistent;
        let mut new_head = false;
        if page_out {
            state.paged.push(offset, message.body_size());
        } else {
            let priority = state.ready.level_of(message.header.properties().priority.unwrap_or(0));
            new_head = state.ready.push_back(QueueEntry {
                message,
                offset,
                redelivered: false,
                delivery_count: 0,
                priority,
                expires_at,
                in_store,
            });
        }
        self.dispatch(&mut state, now, &mut dead);
        self.enforce_length_limit(&mut state, &mut dead);
        if expires_at.is_some() {
            self.expire_heads(&mut state, now, &mut dead);
            if new_head {
                self.timer_wake.notify_one();
            }
        }
        self.unlock_and_dead_letter(state, dead);
        if expires_at.is_some() {
            self.ensure_timer();
        }
        if stored {
            Enqueued::Stored
        } else {
            Enqueued::Accepted
        }
    }

    fn entry(&self, message: Arc<Message>, offset: u64, expires_at: Option<Instant>) -> QueueEntry {
        QueueEntry {
            message,
            offset,
            redelivered: false,
            delivery_count: 0,
            priority: 0,
            expires_at,
            in_store: false,
        }
    }

    /// reject-publish: would this message take the queue over a limit?
    fn would_overflow(&self, state: &QueueState, message: &Message) -> bool {
        let over_count = self.args.max_length.is_some_and(|max| state.ready_count() >= max);
        let over_bytes = self
            .args
            .max_length_bytes
            .is_some_and(|max| state.ready_bytes() + message.body_size() as u64 > max);
        over_count || over_bytes
    }

    /// drop-head: drops the oldest messages until the queue is within its limits.
    fn enforce_length_limit(&self, state: &mut QueueState, dead: &mut Dead) {
        let (max_len, max_bytes) = (self.args.max_length, self.args.max_length_bytes);
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
    pub fn requeue(self: &Arc<Self>, entries: impl IntoIterator<Item = QueueEntry>) {
        if self.is_deleted() {
            return;
        }
        let limit = self.delivery_limit();
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        for mut entry in entries {
            entry.redelivered = true;
            entry.delivery_count += 1;
            if limit.is_some_and(|l| u64::from(entry.delivery_count) > l) {
                dead.push((entry, DeathReason::DeliveryLimit));
            } else {
                if limit.is_some() {
                    self.persist_delivery_count(&entry);
                }
                state.ready.requeue(entry);
            }
        }
        self.dispatch(&mut state, Instant::now(), &mut dead);
        self.unlock_and_dead_letter(state, dead);
    }

    /// basic.ack: the messages are done with.
    pub fn ack(self: &Arc<Self>, entries: Vec<QueueEntry>) {
        for entry in &entries {
            self.forget(entry);
        }
        self.kick();
    }

    /// A message delivered with no-ack (basic.get or a no-ack consumer) is
    /// done with once it is written: the store lets go of it too.
    pub fn settle_without_ack(&self, entry: &QueueEntry) {
        self.forget(entry);
    }

    /// basic.reject / basic.nack without requeue: the messages die here.
    pub fn reject(self: &Arc<Self>, entries: Vec<QueueEntry>) {
        let dead = entries.into_iter().map(|e| (e, DeathReason::Rejected)).collect();
        self.dead_letter(dead);
        self.kick();
    }

    /// Hands a message back that never reached its consumer (it was cancelled
    /// or its connection closed on the way). Not counted as a redelivery.
    pub fn return_undelivered(self: &Arc<Self>, entry: QueueEntry) {
        if self.is_deleted() {
            return;
        }
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        state.ready.requeue(entry);
        self.dispatch(&mut state, Instant::now(), &mut dead);
        self.unlock_and_dead_letter(state, dead);
    }

    /// Tries again to dispatch, e.g. after acks freed prefetch credit.
    pub fn kick(self: &Arc<Self>) {
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        if !state.ready.is_empty() {
            self.dispatch(&mut state, Instant::now(), &mut dead);
        }
        self.unlock_and_dead_letter(state, dead);
    }

    /// basic.get: the next live message and how many remain after it.
    pub fn get(self: &Arc<Self>) -> Option<(QueueEntry, usize)> {
        let now = Instant::now();
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        state.last_used = now;
        let entry = self.pop_live(&mut state, now, &mut dead);
        let remaining = state.ready_count() as usize;
        if let Some(entry) = &entry {
            self.mark_delivered(entry);
        }
        self.unlock_and_dead_letter(state, dead);
        Some((entry?, remaining))
    }

    pub fn purge(&self) -> usize {
        let mut state = self.state.lock();
        let purged = state.ready.drain();
        let paged = std::mem::take(&mut state.paged.count);
        state.paged.bytes = 0;
        let paged_from = state.paged.from;
        drop(state);
        for entry in &purged {
            self.forget(entry);
        }
        if paged > 0 {
            if let Some(p) = &self.persistence {
                if let Err(e) = p.durability.store().remove_entries_from(p.id, paged_from) {
                    tracing::error!(queue = %self.name, "purging the store failed: {e}");
                }
                p.durability.wrote();
            }
        }
        purged.len() + paged as usize
    }

    pub fn add_consumer(self: &Arc<Self>, consumer: Arc<Consumer>) -> Result<(), ConsumeRefusal> {
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        if state.consumers.iter().any(|c| c.exclusive) || (consumer.exclusive && !state.consumers.is_empty()) {
            return Err(ConsumeRefusal::ExclusiveInUse);
        }
        state.consumers.push(consumer);
        state.had_consumers = true;
        state.last_used = Instant::now();
        self.dispatch(&mut state, Instant::now(), &mut dead);
        self.unlock_and_dead_letter(state, dead);
        Ok(())
    }

    /// Detaches a consumer. Returns true when the queue should now be
    /// auto-deleted (it is auto-delete and its last consumer went).
    pub fn remove_consumer(self: &Arc<Self>, consumer: &Arc<Consumer>) -> bool {
        let mut state = self.state.lock();
        let before = state.consumers.len();
        state.consumers.retain(|c| !Arc::ptr_eq(c, consumer));
        if state.consumers.len() == before {
            return false;
        }
        state.last_used = Instant::now();
        let auto_delete = self.settings.auto_delete && state.had_consumers && state.consumers.is_empty();
        // With a single active consumer, the next one takes over now.
        let mut dead = Dead::new();
        if !auto_delete {
            self.dispatch(&mut state, Instant::now(), &mut dead);
        }
        self.unlock_and_dead_letter(state, dead);
        if self.args.expires.is_some() {
            self.timer_wake.notify_one();
        }
        auto_delete
    }

    /// Marks the queue deleted, tells its consumers, and returns how many
    /// ready messages it held.
    pub fn delete(&self) -> usize {
        self.deleted.store(true, Ordering::Release);
        self.timer_wake.notify_one();
        let mut state = self.state.lock();
        for consumer in state.consumers.drain(..) {
            consumer.active.store(false, Ordering::Release);
            let _ = consumer.connection.send(Outbound::ConsumerCancelled {
                channel: consumer.channel,
                consumer_tag: consumer.tag.clone(),
            });
        }
        let ready = state.ready.drain();
        let paged = std::mem::take(&mut state.paged.count);
        drop(state);
        self.drop_from_store();
        ready.len() + paged as usize
    }

    /// The next message that has not expired; expired ones go to `dead`.
    fn pop_live(&self, state: &mut QueueState, now: Instant, dead: &mut Dead) -> Option<QueueEntry> {
        while let Some(entry) = state.ready.pop_front() {
            self.refill_if_low(state);
            if entry.is_expired(now) {
                dead.push((entry, DeathReason::Expired));
            } else {
                return Some(entry);
            }
        }
        None
    }

    /// Moves ready messages to consumers with credit.
    fn dispatch(self: &Arc<Self>, state: &mut QueueState, now: Instant, dead: &mut Dead) {
        while !state.ready.is_empty() && !state.consumers.is_empty() {
            let Some(index) = self.next_consumer_with_credit(state) else {
                return;
            };
            let consumer = state.consumers[index].clone();
            let Some(entry) = self.pop_live(state, now, dead) else {
                consumer.release_credit(1);
                return;
            };
            self.mark_delivered(&entry);
            let delivery = Outbound::Deliver {
                consumer: consumer.clone(),
                queue: self.clone(),
                entry,
            };
            if let Err(Outbound::Deliver { entry, .. }) = consumer.connection.send(delivery) {
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
    fn next_consumer_with_credit(&self, state: &mut QueueState) -> Option<usize> {
        if self.args.single_active_consumer {
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

    /// Releases the queue's lock and dead-letters what died under it. The
    /// dead letters are queued before the lock goes, so they reach the
    /// dead-letter exchange in the order they died, as from RabbitMQ's
    /// single queue process, even when several threads expire, reject or
    /// drop messages of this queue at once.
    fn unlock_and_dead_letter(&self, state: MutexGuard<'_, QueueState>, dead: Dead) {
        if dead.is_empty() {
            return;
        }
        self.dead_letters.lock().extend(dead);
        drop(state);
        self.publish_queued_dead_letters();
    }

    /// Dead-letters messages that died without the queue's lock held.
    fn dead_letter(&self, dead: Dead) {
        if dead.is_empty() {
            return;
        }
        self.dead_letters.lock().extend(dead);
        self.publish_queued_dead_letters();
    }

    /// Publishes the queued dead letters to the dead-letter exchange, if the
    /// queue has one (otherwise they are dropped, as in RabbitMQ). One thread
    /// at a time does it, so the order holds; one that finds another at it
    /// leaves its letters to that one. No lock is held while publishing, so
    /// two queues dead-lettering into each other never wait on each other.
    fn publish_queued_dead_letters(&self) {
        while !self.dead_lettering.swap(true, Ordering::AcqRel) {
            loop {
                let batch: Dead = self.dead_letters.lock().drain(..).collect();
                if batch.is_empty() {
                    break;
                }
                self.publish_dead_letters(&batch);
                for (entry, _) in &batch {
                    self.forget(entry);
                }
            }
            self.dead_lettering.store(false, Ordering::Release);
            // Letters queued between the last drain and the release above
            // would otherwise wait for the next death.
            if self.dead_letters.lock().is_empty() {
                return;
            }
        }
    }

    fn publish_dead_letters(&self, dead: &Dead) {
        let Some(dlx) = &self.args.dead_letter_exchange else {
            return;
        };
        let Some(vhost) = self.vhost.upgrade() else {
            return;
        };
        let Some(exchange) = vhost.exchange(dlx) else {
            tracing::debug!(queue = %self.name, "dead-letter exchange '{dlx}' does not exist; message dropped");
            return;
        };
        let mut targets = Vec::new();
        for &(ref entry, reason) in dead {
            let (message, keys) = dead_letter::dead_letter_message(
                &entry.message,
                reason,
                &self.name,
                dlx,
                self.args.dead_letter_routing_key.as_ref(),
            );
            targets.clear();
            let headers = message.header.properties().headers.as_ref();
            for key in &keys {
                vhost.route(&exchange, key, headers, &mut targets);
            }
            for (i, queue) in targets.iter().enumerate() {
                if targets[..i].iter().any(|q| Arc::ptr_eq(q, queue)) {
                    continue;
                }
                if reason != DeathReason::Rejected && dead_letter::is_automatic_cycle(&queue.name, &message) {
                    continue;
                }
                queue.publish(message.clone());
            }
        }
    }
}
