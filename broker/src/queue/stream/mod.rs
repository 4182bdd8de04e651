//! Streams (`x-queue-type: stream`): an append-only log that consumers
//! read, and re-read, from an offset of their choosing; acks do not remove
//! messages, retention does (`x-max-length-bytes`, `x-max-age`, whole
//! segments at a time, `segments.rs`). As RabbitMQ 3.10's streams over
//! AMQP 0-9-1: durable only, consumers must set a prefetch and ack
//! manually (acks are credit), `x-stream-offset` says where a consumer
//! starts (`offset.rs`), and each delivery carries its `x-stream-offset`.
//! Beyond RabbitMQ 3.10: consumers may filter by a value publishers tag
//! messages with (`filter.rs`, as RabbitMQ 3.13), and the stream can
//! remember where each consumer group got to (`tracking.rs`, as LavinMQ).
//!
//! Every message is written to the store under the stream's id at its
//! offset (so a publish is confirmed once it is on disk, and the log
//! survives restarts); the newest messages are also kept in memory for
//! consumers that keep up. Each consumer has a reader task (`reader.rs`)
//! that hands out messages from memory, or reads older ones back from the
//! store on a blocking thread.

mod filter;
mod offset;
mod reader;
mod segments;
mod tracking;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use warren_protocol::FieldValue;
use warren_store::{EntryRecord, Offset, QueueId, QueueSummary};

pub(crate) use offset::{parse_duration, read_duration, DurationArg, OffsetSpec};
use segments::{Retention, Segments, DEFAULT_SEGMENT_BYTES};

use super::{
    AddedHeader, ConsumeRefusal, Consumer, Depth, Enqueued, Head, Identity, Persistence, Queue, QueueBackend,
    QueueEntry, QueueHost, QueueOf, Settlement,
};
use crate::clock::now_ms;
use crate::message::Message;

/// The newest messages kept in memory for consumers that keep up.
const TAIL_MESSAGES: usize = 4096;
const TAIL_BYTES: usize = 8 * 1024 * 1024;
/// How often retention by age is looked at.
const RETENTION_EVERY: Duration = Duration::from_secs(1);

pub(super) fn new(identity: Identity, _host: Weak<dyn QueueHost>, persistence: Option<Persistence>) -> Arc<Queue> {
    let queue: Arc<QueueOf<StreamQueue>> =
        Arc::new_cyclic(|me| QueueOf::assemble(identity, StreamQueue::new(me.clone(), persistence)));
    queue
}

pub(crate) struct StreamQueue {
    me: Weak<QueueOf<StreamQueue>>,
    /// Where its messages are kept (a stream is always durable).
    persistence: Option<Persistence>,
    state: Mutex<StreamState>,
    deleted: AtomicBool,
    /// Bumped whenever readers may have something to do: a message
    /// appended, credit given back, the stream deleted.
    changes: watch::Sender<u64>,
    /// Offsets of consumers that asked the stream to track them.
    tracking: tracking::Tracking,
}

struct StreamState {
    next: Offset,
    segments: Segments,
    /// The newest messages, from offset `tail_from` on.
    tail: VecDeque<Arc<Message>>,
    tail_from: Offset,
    tail_bytes: usize,
    consumers: Vec<Arc<Consumer>>,
}

impl StreamState {
    fn first(&self) -> Offset {
        self.segments.first(self.next)
    }

    /// The message at `offset`, if it is in memory.
    fn in_memory(&self, offset: Offset) -> Option<&Arc<Message>> {
        let index = offset.0.checked_sub(self.tail_from.0)?;
        self.tail.get(usize::try_from(index).ok()?)
    }
}

impl StreamQueue {
    fn new(me: Weak<QueueOf<StreamQueue>>, persistence: Option<Persistence>) -> StreamQueue {
        StreamQueue {
            me,
            persistence,
            state: Mutex::new(StreamState {
                next: Offset(0),
                segments: Segments::default(),
                tail: VecDeque::new(),
                tail_from: Offset(0),
                tail_bytes: 0,
                consumers: Vec::new(),
            }),
            deleted: AtomicBool::new(false),
            changes: watch::channel(0).0,
            tracking: tracking::Tracking::default(),
        }
    }

    fn store_id(&self) -> Option<(&Persistence, QueueId)> {
        let p = self.persistence.as_ref()?;
        Some((p, p.id()?))
    }

    fn wake_readers(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    fn retention(queue: &Queue) -> (Retention, u64) {
        let args = queue.args();
        let retention = Retention {
            max_bytes: args.max_length_bytes,
            max_age_ms: args.max_age_ms,
        };
        (
            retention,
            args.stream_segment_bytes.unwrap_or(DEFAULT_SEGMENT_BYTES).max(1),
        )
    }

    /// Drops what retention no longer keeps, from memory and the store.
    fn enforce_retention(&self, queue: &Queue) {
        let (retention, _) = Self::retention(queue);
        let mut state = self.state.lock();
        let Some((from, to)) = state.segments.enforce(retention, now_ms()) else {
            return;
        };
        while state.tail_from < to && !state.tail.is_empty() {
            if let Some(m) = state.tail.pop_front() {
                state.tail_bytes -= m.body_size();
            }
            state.tail_from = Offset(state.tail_from.0 + 1);
        }
        if state.tail.is_empty() {
            state.tail_from = state.next;
        }
        drop(state);
        if let Some((p, id)) = self.store_id() {
            if let Err(e) = p.durability.store().remove_entries(id, from, to) {
                tracing::error!(queue = %queue.name, "dropping old stream segments failed: {e}");
            }
            p.durability.wrote();
        }
        tracing::debug!(queue = %queue.name, from = from.0, to = to.0, "stream retention dropped a segment");
    }

    /// Starts the task that applies retention by age and saves tracked
    /// offsets, once a second (from `attach`, which runs once).
    fn start_timer(&self) {
        let me = self.me.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let mut ticker = tokio::time::interval(RETENTION_EVERY);
            loop {
                ticker.tick().await;
                let Some(queue) = me.upgrade() else {
                    return;
                };
                if queue.backend.is_deleted() {
                    return;
                }
                if queue.args().max_age_ms.is_some() {
                    let shared: Arc<Queue> = queue.clone();
                    queue.backend.enforce_retention(&shared);
                }
                queue.backend.save_offsets();
            }
        });
    }

    /// Writes tracked consumers' offsets, if they moved.
    fn save_offsets(&self) {
        if let Some((p, id)) = self.store_id() {
            self.tracking.save(p.durability.store(), id);
        }
    }

    /// Where a consumer with `spec` starts.
    fn start_of(&self, spec: OffsetSpec) -> Offset {
        let state = self.state.lock();
        let (first, next) = (state.first(), state.next);
        match spec {
            OffsetSpec::First => first,
            OffsetSpec::Next => next,
            OffsetSpec::Last => Offset(next.0.saturating_sub(1).max(first.0)),
            OffsetSpec::Offset(n) => Offset(u64::try_from(n).unwrap_or(0).clamp(first.0, next.0)),
            OffsetSpec::Since(ms) => state.segments.offset_at(ms, next).max(first),
        }
    }
}

impl QueueBackend for StreamQueue {
    fn attach(&self, _queue: &Arc<Queue>) {
        self.start_timer();
    }

    fn publish(&self, queue: &Arc<Queue>, message: Arc<Message>) -> Enqueued {
        let Some((p, id)) = self.store_id() else {
            return Enqueued::Rejected;
        };
        // Wait here, not under the lock, if the disk has fallen far behind.
        p.durability.throttle();
        let store = p.durability.shared_store();
        let Ok(body) = message.store_body(store) else {
            return Enqueued::Rejected;
        };
        let (_, segment_bytes) = Self::retention(queue);
        let now = now_ms();
        let size = message.body_size();
        let mut state = self.state.lock();
        let offset = state.next;
        let record = EntryRecord {
            message: body,
            delivery_count: 0,
            body_size: size as u64,
            // A stream's entries have no expiry: the field holds the time
            // the message was appended, for retention by age after a restart.
            expires_at_ms: now,
            transient: false,
            priority: None,
        };
        if store.add_entry(id, offset, &record).is_err() {
            return Enqueued::Rejected;
        }
        p.durability.wrote();
        state.next = offset.next();
        queue.counters.published_locked();
        let rolled = state.segments.append(offset, size as u64, now, segment_bytes);
        if state.tail.is_empty() {
            state.tail_from = offset;
        }
        state.tail.push_back(message);
        state.tail_bytes += size;
        while state.tail.len() > TAIL_MESSAGES || (state.tail_bytes > TAIL_BYTES && state.tail.len() > 1) {
            if let Some(m) = state.tail.pop_front() {
                state.tail_bytes -= m.body_size();
                state.tail_from = state.tail_from.next();
            }
        }
        drop(state);
        // Retention looks again each time a segment is closed.
        if rolled {
            self.enforce_retention(queue);
        }
        self.wake_readers();
        Enqueued::Stored
    }

    fn add_consumer(&self, queue: &Arc<Queue>, consumer: Arc<Consumer>) -> Result<(), ConsumeRefusal> {
        let what = format!("queue '{}' in vhost '{}'", queue.name, queue.vhost_name);
        // Checked by the channel before; a bad value starts at the next.
        let spec = OffsetSpec::from_arguments(&consumer.arguments, &what).unwrap_or(OffsetSpec::Next);
        let mut start = self.start_of(spec);
        if tracking::asked(&consumer.arguments) {
            if let Some((p, id)) = self.store_id() {
                if let Some(resume) = self.tracking.resume_at(p.durability.store(), id, &consumer.tag) {
                    let state = self.state.lock();
                    start = resume.clamp(state.first(), state.next);
                }
            }
        }
        self.state.lock().consumers.push(consumer.clone());
        if let Some(me) = self.me.upgrade() {
            let filter = filter::Filter::from_arguments(&consumer.arguments);
            reader::spawn(me, consumer, start, filter, self.changes.subscribe());
        }
        Ok(())
    }

    fn remove_consumer(&self, _queue: &Arc<Queue>, consumer: &Arc<Consumer>) -> bool {
        self.state.lock().consumers.retain(|c| !Arc::ptr_eq(c, consumer));
        self.wake_readers();
        if tracking::asked(&consumer.arguments) {
            self.save_offsets();
        }
        false
    }

    fn consumer_acked(&self, consumer: &Consumer, offset: Offset) {
        if !tracking::asked(&consumer.arguments) {
            return;
        }
        if let Some((p, id)) = self.store_id() {
            self.tracking.acked(p.durability.store(), id, &consumer.tag, offset);
        }
    }

    fn get(&self, _queue: &Arc<Queue>, _ack_required: bool) -> Option<(QueueEntry, u64)> {
        // Refused by the channel (basic.get is not for streams).
        None
    }

    fn settle(&self, _queue: &Arc<Queue>, _entries: Vec<QueueEntry>, _settlement: Settlement) {
        // Acks are credit: the channel gave it back; readers may go on.
        self.wake_readers();
    }

    fn settle_without_ack(&self, _queue: &Arc<Queue>, _entry: &QueueEntry) {}

    fn return_undelivered(&self, _queue: &Arc<Queue>, _entry: QueueEntry) {
        self.wake_readers();
    }

    fn kick(&self, _queue: &Arc<Queue>) {
        self.wake_readers();
    }

    fn purge(&self, _queue: &Arc<Queue>) -> u64 {
        // Refused by the channel (as RabbitMQ refuses purging a stream).
        0
    }

    fn arguments_changed(&self, queue: &Arc<Queue>) {
        self.enforce_retention(queue);
    }

    fn delete(&self, queue: &Arc<Queue>) -> u64 {
        self.deleted.store(true, Ordering::Release);
        let mut state = self.state.lock();
        for consumer in state.consumers.drain(..) {
            consumer.active.store(false, Ordering::Release);
            consumer.sink.cancelled(consumer.channel, consumer.tag.clone());
        }
        let count = state.segments.count();
        state.segments.clear();
        state.tail.clear();
        drop(state);
        self.wake_readers();
        if let Some((p, id)) = self.store_id() {
            self.tracking.forget(p.durability.store(), id);
            p.drop_queue(queue);
        }
        count
    }

    fn message_count(&self) -> u64 {
        // As RabbitMQ answers queue.declare for a stream.
        0
    }

    fn depth(&self) -> Depth {
        let state = self.state.lock();
        Depth {
            ready: state.segments.count(),
            ready_bytes: state.segments.bytes(),
            paged_out: state.segments.count().saturating_sub(state.tail.len() as u64),
            paged_out_bytes: state.segments.bytes().saturating_sub(state.tail_bytes as u64),
            consumers: state.consumers.len() as u64,
        }
    }

    fn head(&self, _now: tokio::time::Instant) -> Head {
        // Nothing waits in a stream: consumers read at their own offsets.
        Head::default()
    }

    fn store_position(&self) -> Option<(QueueId, Offset)> {
        let (_, id) = self.store_id()?;
        Some((id, self.state.lock().next))
    }

    fn consumer_count(&self) -> u64 {
        self.state.lock().consumers.len() as u64
    }

    fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.state.lock().consumers.clone()
    }

    fn touch(&self) {}

    fn added_header(&self, entry: &QueueEntry) -> Option<AddedHeader> {
        Some(AddedHeader {
            key: "x-stream-offset",
            value: FieldValue::I64(entry.offset.0 as i64),
        })
    }

    fn restore(&self, queue: &Arc<Queue>, summary: QueueSummary, _delivered_below: Offset) {
        // The segments are rebuilt from the index (sizes and append times);
        // this runs while the broker recovers, before it takes connections.
        let Some((p, id)) = self.store_id() else {
            return;
        };
        let store = p.durability.shared_store().clone();
        let (_, segment_bytes) = Self::retention(queue);
        let mut rebuilt = Segments::default();
        let mut from = summary.first_offset;
        loop {
            let entries = match store.entries(id, from, 4096) {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::error!(queue = %queue.name, "reading the stream's index back failed: {e}");
                    break;
                }
            };
            let Some(&(last, _)) = entries.last() else {
                break;
            };
            for (offset, record) in &entries {
                rebuilt.append(*offset, record.body_size, record.expires_at_ms, segment_bytes);
            }
            from = last.next();
        }
        let mut state = self.state.lock();
        state.segments = rebuilt;
        state.next = from.max(summary.next_offset);
        state.tail_from = state.next;
    }
}
