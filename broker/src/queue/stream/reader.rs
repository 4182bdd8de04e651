//! A stream consumer's reader: a task that hands the consumer messages
//! from its own position on, as far as its credit (prefetch, and the
//! window to its connection) allows. Messages still in memory go straight
//! out; older ones are read back from the store in batches on a blocking
//! thread, the next batch read while the current one goes out, and what
//! credit did not let out yet kept for later rather than read again. When
//! it has caught up or has no credit, it waits for the stream to change (a
//! message appended, an ack, a kick).

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use warren_store::Offset;

use super::filter::Filter;
use super::StreamQueue;
use crate::message::Message;
use crate::queue::{deliver_to, Consumer, Queue, QueueEntry, QueueOf, StoreLink};

/// The most messages read back from the store at once.
const READ_BATCH: usize = 256;
/// The most body bytes read back at once (at least one message).
const READ_BYTES: usize = 4 << 20;

/// Messages read back from the store, with their offsets.
type Batch = Vec<(Offset, Arc<Message>)>;

/// Messages read back from the store ahead of the consumer: one batch in
/// hand, the next one on its way.
#[derive(Default)]
struct Ahead {
    ready: VecDeque<(Offset, Arc<Message>)>,
    /// The read of the batch after `ready`, and where it starts.
    reading: Option<(Offset, JoinHandle<Batch>)>,
}

impl Ahead {
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
                read(stream, from).await.ok()?
            } else {
                early
            };
            self.ready.extend(batch);
        }
        if self.reading.is_none() {
            if let Some((last, _)) = self.ready.back() {
                let next = last.next();
                self.reading = Some((next, read(stream, next)));
            }
        }
        Some(())
    }
}

fn read(stream: &Arc<QueueOf<StreamQueue>>, from: Offset) -> JoinHandle<Batch> {
    let stream = stream.clone();
    tokio::task::spawn_blocking(move || read_back(&stream, from, READ_BATCH))
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
    let mut ahead = Ahead::default();
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
            Pass::Behind(from) => {
                if ahead.from(&stream, from).await.is_none() {
                    return;
                }
                if ahead.ready.is_empty() {
                    // Dropped by retention meanwhile: skip to what is kept.
                    let first = stream.backend.state.lock().first();
                    position = position.max(first).max(from.next());
                    continue;
                }
                while let Some((offset, message)) = ahead.ready.front() {
                    let (offset, message) = (*offset, message.clone());
                    if !consumer.is_active() || stream.backend.is_deleted() {
                        return;
                    }
                    if filter.accepts(&message) {
                        // Out of credit: the rest waits here for the next pass.
                        if !consumer.try_take_credit() {
                            break;
                        }
                        if !hand_over(&stream, &queue, &consumer, offset, message) {
                            return;
                        }
                    }
                    ahead.ready.pop_front();
                    position = offset.next();
                }
            }
        }
    }
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
    let mut delivered = false;
    while *position < state.next {
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
        if !deliver(queue, consumer, *position, message) {
            return Pass::Done;
        }
        delivered = true;
        *position = position.next();
    }
    if delivered {
        Pass::Delivered
    } else {
        Pass::Wait
    }
}

/// Reads up to `limit` messages from `from` back from the store.
fn read_back(stream: &QueueOf<StreamQueue>, from: Offset, limit: usize) -> Batch {
    let Some((p, id)) = stream.backend.store_id() else {
        return Vec::new();
    };
    let entries = match p.read_back(id, from, limit, READ_BYTES, StoreLink::Copy) {
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

/// Hands over one message read back from the store (counted under the
/// stream's lock, where the counters' writes belong).
fn hand_over(
    stream: &Arc<QueueOf<StreamQueue>>,
    queue: &Arc<Queue>,
    consumer: &Arc<Consumer>,
    offset: Offset,
    message: Arc<Message>,
) -> bool {
    let _state = stream.backend.state.lock();
    deliver(queue, consumer, offset, message)
}

/// Sends one delivery to the consumer's connection (call with the
/// stream's lock held); false if the connection is gone.
fn deliver(queue: &Arc<Queue>, consumer: &Arc<Consumer>, offset: Offset, message: Arc<Message>) -> bool {
    let delivered = deliver_to(consumer, queue, QueueEntry::new(message, offset, 0, None)).is_ok();
    if !delivered {
        consumer.release_credit(1);
    }
    delivered
}
