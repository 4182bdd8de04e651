//! A queue's counters, kept where the events happen (a relaxed atomic add
//! per event, on the queue's own cache line) and read by the management
//! API: messages published into it, handed out (delivered or got),
//! redelivered, acknowledged, and settled (handed back in any way), whose
//! difference with handed out is what is unacknowledged.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub(crate) struct QueueCounters {
    published: AtomicU64,
    delivered: AtomicU64,
    redelivered: AtomicU64,
    acked: AtomicU64,
    settled: AtomicU64,
}

/// A reading of a queue's counters and depth.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct QueueStats {
    pub ready: u64,
    pub ready_bytes: u64,
    pub unacked: u64,
    pub consumers: u64,
    pub published: u64,
    pub delivered: u64,
    pub redelivered: u64,
    pub acked: u64,
}

impl QueueCounters {
    pub(crate) fn published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn handed_out(&self, redelivered: bool) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if redelivered {
            self.redelivered.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn settled(&self, count: u64, acked: bool) {
        self.settled.fetch_add(count, Ordering::Relaxed);
        if acked {
            self.acked.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// The counters, with the depth the queue reports.
    pub(crate) fn read(&self, ready: u64, ready_bytes: u64, consumers: u64) -> QueueStats {
        let settled = self.settled.load(Ordering::Relaxed);
        let delivered = self.delivered.load(Ordering::Relaxed);
        QueueStats {
            ready,
            ready_bytes,
            unacked: delivered.saturating_sub(settled),
            consumers,
            published: self.published.load(Ordering::Relaxed),
            delivered,
            redelivered: self.redelivered.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
        }
    }
}
