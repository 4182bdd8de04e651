//! A stream consumer's reader: a task that hands the consumer messages
//! from its own position on, as far as its credit (prefetch, and the
//! window to its connection) allows. Messages still in memory go straight
//! out; older ones are read back from the store in batches on a blocking
//! thread, the next batch read while the current one goes out, and what
//! credit did not let out yet kept for later rather than read again. When
//! it has caught up or has no credit, it waits for the stream to change (a
//! message appended, an ack, a kick).
//!
//! A consumer replaying from the store is handed a batch once half its
//! prefetch window is free, not after every ack: a consumer acking every
//! 100 of 1,000 would otherwise be sent 100 at a time, and each hand-over
//! wakes the connection and its writer (batching them cut the broker's CPU
//! a message by a sixth in a 2 M replay). A consumer that stops acking
//! while less than half its window is free is not starved: when no ack
//! came for [`HOLD_AT_MOST`], it is sent what its window takes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use warren_store::Offset;

use super::filter::Filter;
use super::StreamQueue;
use crate::message::Message;
use crate::queue::{deliver_all_to, Consumer, Queue, QueueEntry, QueueOf, StoreLink};

/// The most messages read back from the store at once.
const READ_BATCH: usize = 512;
/// The most body bytes read back at once (at least one message).
const READ_BYTES: usize = 4 << 20;
/// The most messages, and body bytes (at least one message), handed to
/// the consumer's connection in one go: the transit window counts a batch
/// once it is handed over, so a batch may go past it by this much.
const HAND_OVER: usize = 256;
const HAND_OVER_BYTES: usize = 1 << 20;
/// How long a consumer reading back from the store, with less than half
/// its prefetch window free, waits for more acks before it is sent what
/// the window takes (it may be holding its deliveries, waiting for more).
const HOLD_AT_MOST: Duration = Duration::from_millis(2);

/// Deliveries gathered for one hand-over.
#[derive(Default)]
struct Gathered {
    entries: Vec<QueueEntry>,
    bytes: usize,
}

impl Gathered {
    fn push(&mut self, message: Arc<Message>, offset: Offset) {
        self.bytes += message.body_size();
        self.entries.push(QueueEntry::new(message, offset, 0, None));
    }

    fn is_full(&self) -> bool {
        self.entries.len() >= HAND_OVER || self.bytes >= HAND_OVER_BYTES
    }
}

/// Messages read back from the store, with their offsets.
type Batch = Vec<(Offset, Arc<Message>)>;

/// Messages read back from the store ahead of the consumer: one batch in
/// hand, the next one on its way.
struct Ahead {
    ready: VecDeque<(Offset, Arc<Message>)>,
    /// The read of the batch after `ready`, and where it starts.
    reading: Option<(Offset, JoinHandle<Batch>)>,
    /// How messages hold their bytes: slices of each read when the
    /// consumer takes them all in order; copies when a filter lets only
    /// some through (one message kept would keep its whole read).
    link: StoreLink,
}

impl Ahead {
    fn new(filter: &Filter) -> Ahead {
        Ahead {
            ready: VecDeque::new(),
            reading: None,
            link: if filter.is_none() {
                StoreLink::Slice
            } else {
                StoreLink::Copy
            },
        }
    }

    /// Messages from `from` on, read if need be; empty when the store has
    /// none there (retention dropped them meanwhile).
    async fn from(&mut self, stream: &Arc<QueueOf<StreamQueue>>, from: Offset) -> Option<()> {
        while self.ready.front().is_some_and(|(offset, _)| *offset < from) {
            self.ready.pop_front();
        }
        if self.ready.front().is_some_and(|(offset, _)| *offset != from) {
            // A gap (the filter, or retention): read from `from` again.
            self.ready.clear();
        }
        if self.ready.is_empty() {
            let early = match self.reading.take() {
                Some((at, read)) if at == from => read.await.ok()?,
                other => {
                    if let Some((_, read)) = other {
                        read.abort();
                    }
                    Vec::new()
                }
            };
            // An early read that found nothing may have run ahead of the
            // stream's end: only a read made now tells retention apart.
            let batch = if early.is_empty() {
                read(stream, from, self.link).await.ok()?
            } else {
                early
            };
            self.ready.extend(batch);
        }
        if self.reading.is_none() {
            if let Some((last, _)) = self.ready.back() {
                let next = last.next();
                self.reading = Some((next, read(stream, next, self.link)));
            }
        }
        Some(())
    }
}

fn read(stream: &Arc<QueueOf<StreamQueue>>, from: Offset, link: StoreLink) -> JoinHandle<Batch> {
    let stream = stream.clone();
    tokio::task::spawn_blocking(move || read_back(&stream, from, READ_BATCH, link))
}

impl Drop for Ahead {
    fn drop(&mut self) {
        if let Some((_, read)) = self.reading.take() {
            read.abort();
        }
    }
}

pub(super) fn spawn(
    stream: Arc<QueueOf<StreamQueue>>,
    consumer: Arc<Consumer>,
    start: Offset,
    filter: Filter,
    changes: watch::Receiver<u64>,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(run(stream, consumer, start, filter, changes));
}

/// What one pass over the stream found.
enum Pass {
    /// Delivered something: look again at once.
    Delivered,
    /// Nothing to do until the stream changes.
    Wait,
    /// The next messages are only on disk, from this offset.
    Behind(Offset),
    /// The consumer or the stream is gone.
    Done,
}

async fn run(
    stream: Arc<QueueOf<StreamQueue>>,
    consumer: Arc<Consumer>,
    mut position: Offset,
    filter: Filter,
    mut changes: watch::Receiver<u64>,
) {
    let queue: Arc<Queue> = stream.clone();
    let mut ahead = Ahead::new(&filter);
    // No ack came while waiting for half the window: send what it takes.
    let mut held_long_enough = false;
    loop {
        changes.borrow_and_update();
        match from_memory(&stream, &queue, &consumer, &filter, &mut position) {
            Pass::Delivered => continue,
            Pass::Done => return,
            Pass::Wait => {
                if changes.changed().await.is_err() {
                    return;
                }
            }
            Pass::Behind(_) if !consumer.has_credit() => {
                if changes.changed().await.is_err() {
                    return;
                }
            }
            Pass::Behind(_) if !held_long_enough && !half_free(&consumer) => {
                match tokio::time::timeout(HOLD_AT_MOST, changes.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => held_long_enough = true,
                }
            }
            Pass::Behind(from) => {
                held_long_enough = false;
                if ahead.from(&stream, from).await.is_none() {
                    return;
                }
                if ahead.ready.is_empty() {
                    // Dropped by retention meanwhile: skip to what is kept.
                    let first = stream.backend.state.lock().first();
                    position = position.max(first).max(from.next());
                    continue;
                }
                let mut batch = Gathered::default();
                // Credit is taken for many deliveries at once (the atomic
                // counters are shared with the connection acking), and
                // what is left over given back below.
                let mut credit = 0u32;
                while let Some((offset, message)) = ahead.ready.front() {
                    let (offset, message) = (*offset, message.clone());
                    if !consumer.is_active() || stream.backend.is_deleted() {
                        // What was gathered never goes out: its credit
                        // (a channel-wide prefetch is shared) comes back.
                        consumer.release_credit(batch.entries.len() as u32 + credit);
                        return;
                    }
                    if filter.accepts(&message) {
                        if credit == 0 {
                            let want = (HAND_OVER - batch.entries.len()).min(ahead.ready.len());
                            credit = consumer.take_credit(want as u32);
                        }
                        // Out of credit: the rest waits here for the next pass.
                        if credit == 0 {
                            break;
                        }
                        credit -= 1;
                        batch.push(message, offset);
                    }
                    ahead.ready.pop_front();
                    position = offset.next();
                    if batch.is_full() {
                        break;
                    }
                }
                if credit > 0 {
                    consumer.release_credit(credit);
                }
                if !hand_over(&stream, &queue, &consumer, batch.entries) {
                    return;
                }
            }
        }
    }
}

/// Whether at least half the consumer's prefetch window is free (always,
/// without a prefetch limit; with a window of one, when it is free).
fn half_free(consumer: &Consumer) -> bool {
    let credit = &consumer.credit;
    credit.room() >= credit.limit().div_ceil(2)
}

/// Hands out what is in memory from `position` on, while credit lasts.
fn from_memory(
    stream: &Arc<QueueOf<StreamQueue>>,
    queue: &Arc<Queue>,
    consumer: &Arc<Consumer>,
    filter: &Filter,
    position: &mut Offset,
) -> Pass {
    if !consumer.is_active() || stream.backend.is_deleted() {
        return Pass::Done;
    }
    let state = stream.backend.state.lock();
    if !state.consumers.iter().any(|c| Arc::ptr_eq(c, consumer)) {
        return Pass::Done;
    }
    let first = state.first();
    if *position < first {
        *position = first;
    }
    if *position >= state.next {
        return Pass::Wait;
    }
    if *position < state.tail_from {
        return Pass::Behind(*position);
    }
    let mut batch = Gathered::default();
    while *position < state.next && !batch.is_full() {
        let Some(message) = state.in_memory(*position).cloned() else {
            break;
        };
        if !filter.accepts(&message) {
            *position = position.next();
            continue;
        }
        if !consumer.try_take_credit() {
            break;
        }
        batch.push(message, *position);
        *position = position.next();
    }
    if batch.entries.is_empty() {
        Pass::Wait
    } else if deliver(queue, consumer, batch.entries) {
        Pass::Delivered
    } else {
        Pass::Done
    }
}

/// Reads up to `limit` messages from `from` back from the store.
fn read_back(stream: &QueueOf<StreamQueue>, from: Offset, limit: usize, link: StoreLink) -> Batch {
    let Some((p, id)) = stream.backend.store_id() else {
        return Vec::new();
    };
    let entries = match p.read_back(id, from, limit, READ_BYTES, link) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(queue = %stream.name, "reading the stream back failed: {e}");
            return Vec::new();
        }
    };
    entries
        .into_iter()
        .filter_map(|(offset, _, message)| match message {
            Ok(message) => Some((offset, message)),
            Err(e) => {
                tracing::error!(queue = %stream.name, offset = offset.0, "a stream message could not be read: {e}");
                None
            }
        })
        .collect()
}

/// Hands over messages read back from the store (counted under the
/// stream's lock, where the counters' writes belong).
fn hand_over(
    stream: &Arc<QueueOf<StreamQueue>>,
    queue: &Arc<Queue>,
    consumer: &Arc<Consumer>,
    batch: Vec<QueueEntry>,
) -> bool {
    let _state = stream.backend.state.lock();
    deliver(queue, consumer, batch)
}

/// Sends deliveries to the consumer's connection in one go (call with the
/// stream's lock held); false if the connection is gone.
fn deliver(queue: &Arc<Queue>, consumer: &Arc<Consumer>, batch: Vec<QueueEntry>) -> bool {
    match deliver_all_to(consumer, queue, batch) {
        Ok(()) => true,
        Err(back) => {
            consumer.release_credit(back.len() as u32);
            false
        }
    }
}
