//! Queues: ready messages, consumers, and the dispatch that moves one to the
//! other.
//!
//! A queue's state sits behind one mutex, taken by publishers to enqueue and
//! by channels to ack, get or requeue. Dispatch runs inside that lock: it
//! picks consumers round-robin among those with prefetch credit and hands
//! each message to the consumer's connection, which assigns delivery tags and
//! writes frames. No task runs per queue.

mod arguments;
mod consumer;
mod entry;
mod messages;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use warren_protocol::{FieldTable, ShortStr};

pub use arguments::{type_name, Overflow, QueueArguments, QueueType};
pub use consumer::{Consumer, Credit};
pub use entry::QueueEntry;
use messages::MessageList;

use crate::connection::handle::{ConnectionId, Outbound};
use crate::message::Message;

/// The declared properties of a queue, fixed at declaration.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    pub durable: bool,
    pub exclusive_owner: Option<ConnectionId>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

#[derive(Debug)]
pub struct Queue {
    pub name: ShortStr,
    pub vhost: Arc<str>,
    pub settings: QueueSettings,
    /// The typed form of `settings.arguments`.
    pub args: QueueArguments,
    state: Mutex<QueueState>,
    deleted: AtomicBool,
}

#[derive(Debug, Default)]
struct QueueState {
    ready: MessageList,
    consumers: Vec<Arc<Consumer>>,
    /// Where the round-robin continues.
    next_consumer: usize,
    next_offset: u64,
    /// Set once a consumer has attached, for auto-delete.
    had_consumers: bool,
}

/// Why a consumer could not attach.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsumeRefusal {
    /// Another consumer holds the queue exclusively, or this one asked for
    /// exclusivity and others exist.
    ExclusiveInUse,
}

impl Queue {
    pub fn new(name: ShortStr, vhost: Arc<str>, settings: QueueSettings, args: QueueArguments) -> Arc<Queue> {
        Arc::new(Queue {
            name,
            vhost,
            settings,
            args,
            state: Mutex::new(QueueState::default()),
            deleted: AtomicBool::new(false),
        })
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn is_exclusive(&self) -> bool {
        self.settings.exclusive_owner.is_some()
    }

    pub fn message_count(&self) -> usize {
        self.state.lock().ready.len()
    }

    /// Total body bytes of the ready messages.
    pub fn message_bytes(&self) -> usize {
        self.state.lock().ready.bytes()
    }

    pub fn consumer_count(&self) -> usize {
        self.state.lock().consumers.len()
    }

    /// Enqueues a newly published message and dispatches what it can.
    pub fn publish(self: &Arc<Self>, message: Arc<Message>) {
        let mut state = self.state.lock();
        let offset = state.next_offset;
        state.next_offset += 1;
        state.ready.push_back(QueueEntry {
            message,
            offset,
            redelivered: false,
        });
        self.dispatch(&mut state);
    }

    /// Puts delivered-but-unacknowledged messages back, marked redelivered.
    pub fn requeue(self: &Arc<Self>, entries: impl IntoIterator<Item = QueueEntry>) {
        if self.is_deleted() {
            return;
        }
        let mut state = self.state.lock();
        for mut entry in entries {
            entry.redelivered = true;
            state.ready.requeue(entry);
        }
        self.dispatch(&mut state);
    }

    /// Hands a message back that never reached its consumer (it was cancelled
    /// or its connection closed on the way). Not counted as a redelivery.
    pub fn return_undelivered(self: &Arc<Self>, entry: QueueEntry) {
        if self.is_deleted() {
            return;
        }
        let mut state = self.state.lock();
        state.ready.requeue(entry);
        self.dispatch(&mut state);
    }

    /// Tries again to dispatch, e.g. after acks freed prefetch credit.
    pub fn kick(self: &Arc<Self>) {
        let mut state = self.state.lock();
        if !state.ready.is_empty() {
            self.dispatch(&mut state);
        }
    }

    /// basic.get: the next ready message and how many remain after it.
    pub fn get(&self) -> Option<(QueueEntry, usize)> {
        let mut state = self.state.lock();
        let entry = state.ready.pop_front()?;
        Some((entry, state.ready.len()))
    }

    pub fn purge(&self) -> usize {
        self.state.lock().ready.purge()
    }

    pub fn add_consumer(self: &Arc<Self>, consumer: Arc<Consumer>) -> Result<(), ConsumeRefusal> {
        let mut state = self.state.lock();
        if state.consumers.iter().any(|c| c.exclusive) || (consumer.exclusive && !state.consumers.is_empty()) {
            return Err(ConsumeRefusal::ExclusiveInUse);
        }
        state.consumers.push(consumer);
        state.had_consumers = true;
        self.dispatch(&mut state);
        Ok(())
    }

    /// Detaches a consumer. Returns true when the queue should now be
    /// auto-deleted (it is auto-delete and its last consumer went).
    pub fn remove_consumer(&self, consumer: &Arc<Consumer>) -> bool {
        let mut state = self.state.lock();
        state.consumers.retain(|c| !Arc::ptr_eq(c, consumer));
        self.settings.auto_delete && state.had_consumers && state.consumers.is_empty()
    }

    /// Marks the queue deleted, tells its consumers, and returns how many
    /// ready messages it held.
    pub fn delete(&self) -> usize {
        self.deleted.store(true, Ordering::Release);
        let mut state = self.state.lock();
        for consumer in state.consumers.drain(..) {
            consumer.active.store(false, Ordering::Release);
            let _ = consumer.connection.send(Outbound::ConsumerCancelled {
                channel: consumer.channel,
                consumer_tag: consumer.tag.clone(),
            });
        }
        state.ready.purge()
    }

    /// Moves ready messages to consumers with credit, round-robin.
    fn dispatch(self: &Arc<Self>, state: &mut QueueState) {
        while !state.ready.is_empty() && !state.consumers.is_empty() {
            let Some(index) = Self::next_consumer_with_credit(state) else {
                return;
            };
            let Some(entry) = state.ready.pop_front() else {
                return;
            };
            let consumer = state.consumers[index].clone();
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

    /// Finds the next consumer in round-robin order that can take a message,
    /// and takes its credit.
    fn next_consumer_with_credit(state: &mut QueueState) -> Option<usize> {
        let n = state.consumers.len();
        for step in 0..n {
            let index = (state.next_consumer + step) % n;
            let consumer = &state.consumers[index];
            if consumer.is_active() && consumer.try_take_credit() {
                state.next_consumer = (index + 1) % n;
                return Some(index);
            }
        }
        None
    }
}
