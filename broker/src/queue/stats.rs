//! A queue's counters, kept where the events happen and read by the
//! management API: messages published into it, handed out (delivered or
//! got; of those, delivered without acks and got with and without them, as
//! RabbitMQ's `deliver_no_ack`, `get` and `get_no_ack`), basic.gets that
//! found it empty, redelivered, handed out to be acknowledged
//! ("outstanding"), and settled (acked, rejected or returned), whose
//! difference with outstanding is what is unacknowledged.
//!
//! The costly part of a counter is not the addition but the cache line it
//! lives on. Publishing and dispatching already hold the queue's lock, so
//! their counters are plain loads and stores under it (no locked
//! instruction); what consumers' connections settle lands on a cache line
//! of its own, one atomic add per settlement batch, so the publisher's and
//! the consumers' cores never pass a line back and forth per message.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters written under the queue's lock: one writer at a time.
#[derive(Default)]
struct UnderLock {
    published: AtomicU64,
    delivered: AtomicU64,
    delivered_no_ack: AtomicU64,
    got: AtomicU64,
    got_no_ack: AtomicU64,
    redelivered: AtomicU64,
    outstanding: AtomicU64,
    outstanding_bytes: AtomicU64,
}

/// Counters consumers' connections write, apart from the others.
#[derive(Default)]
#[repr(align(128))]
struct Settled {
    settled: AtomicU64,
    settled_bytes: AtomicU64,
    acked: AtomicU64,
    /// basic.gets that found the queue empty (counted by the channel).
    get_empty: AtomicU64,
}

#[derive(Default)]
pub(crate) struct QueueCounters {
    locked: UnderLock,
    consumers: Settled,
}

/// What a queue holds, read in one go from its backend.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Depth {
    pub ready: u64,
    pub ready_bytes: u64,
    /// Of the ready ones, those on disk only.
    pub paged_out: u64,
    pub paged_out_bytes: u64,
    pub consumers: u64,
}

/// A reading of a queue's counters and depth.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct QueueStats {
    pub ready: u64,
    pub ready_bytes: u64,
    /// Of the ready ones, those on disk only.
    pub paged_out: u64,
    pub paged_out_bytes: u64,
    pub unacked: u64,
    pub unacked_bytes: u64,
    pub consumers: u64,
    pub published: u64,
    /// Handed out in every way (RabbitMQ's `deliver_get`).
    pub delivered: u64,
    pub delivered_no_ack: u64,
    pub got: u64,
    pub got_no_ack: u64,
    pub get_empty: u64,
    pub redelivered: u64,
    pub acked: u64,
}

/// Adds `n` to a counter only one thread writes at a time.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

impl QueueCounters {
    /// A message was enqueued (call with the queue's lock held).
    pub(crate) fn published_locked(&self) {
        bump(&self.locked.published, 1);
    }

    /// A message of `bytes` was handed to a consumer or a basic.get (call
    /// with the queue's lock held); `ack_required` if it stays
    /// unacknowledged until settled.
    pub(crate) fn handed_out_locked(&self, redelivered: bool, ack_required: bool, bytes: usize) {
        self.handed_out_many_locked(1, u64::from(redelivered), ack_required, bytes);
    }

    /// `count` messages (`redelivered` of them redeliveries) of `bytes` in
    /// all were handed to a consumer at once (call with the lock held).
    pub(crate) fn handed_out_many_locked(&self, count: u64, redelivered: u64, ack_required: bool, bytes: usize) {
        if !ack_required {
            bump(&self.locked.delivered_no_ack, count);
        }
        self.out_locked(count, redelivered, ack_required, bytes);
    }

    /// basic.get took a message (call with the lock held).
    pub(crate) fn got_locked(&self, redelivered: bool, ack_required: bool, bytes: usize) {
        bump(
            if ack_required {
                &self.locked.got
            } else {
                &self.locked.got_no_ack
            },
            1,
        );
        self.out_locked(1, u64::from(redelivered), ack_required, bytes);
    }

    /// basic.get found nothing to take.
    pub(crate) fn got_nothing(&self) {
        self.consumers.get_empty.fetch_add(1, Ordering::Relaxed);
    }

    fn out_locked(&self, count: u64, redelivered: u64, ack_required: bool, bytes: usize) {
        bump(&self.locked.delivered, count);
        if redelivered > 0 {
            bump(&self.locked.redelivered, redelivered);
        }
        if ack_required {
            bump(&self.locked.outstanding, count);
            bump(&self.locked.outstanding_bytes, bytes as u64);
        }
    }

    /// `count` deliveries (of `bytes` in all) that awaited an ack were
    /// settled (acked: by basic.ack).
    pub(crate) fn settled(&self, count: u64, bytes: u64, acked: bool) {
        self.consumers.settled.fetch_add(count, Ordering::Relaxed);
        self.consumers.settled_bytes.fetch_add(bytes, Ordering::Relaxed);
        if acked {
            self.consumers.acked.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// The counters, with the depth the queue reports.
    pub(crate) fn read(&self, depth: Depth) -> QueueStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        QueueStats {
            ready: depth.ready,
            ready_bytes: depth.ready_bytes,
            paged_out: depth.paged_out,
            paged_out_bytes: depth.paged_out_bytes,
            unacked: get(&self.locked.outstanding).saturating_sub(get(&self.consumers.settled)),
            unacked_bytes: get(&self.locked.outstanding_bytes).saturating_sub(get(&self.consumers.settled_bytes)),
            consumers: depth.consumers,
            published: get(&self.locked.published),
            delivered: get(&self.locked.delivered),
            delivered_no_ack: get(&self.locked.delivered_no_ack),
            got: get(&self.locked.got),
            got_no_ack: get(&self.locked.got_no_ack),
            get_empty: get(&self.consumers.get_empty),
            redelivered: get(&self.locked.redelivered),
            acked: get(&self.consumers.acked),
        }
    }
}
