//! Message counters as RabbitMQ's global and channel metrics count them:
//! received, routed, unroutable (dropped or returned), confirmed,
//! delivered (consumed with or without acks, got with or without acks,
//! got empty), redelivered and acknowledged.
//!
//! Each connection owns a [`MessageCounters`] only its own task writes
//! (a plain load and store, no locked instruction); when it closes, its
//! counts move into the broker's, so totals are the broker's plus every
//! open connection's and nothing on the publish path touches shared
//! memory.

use std::sync::atomic::{AtomicU64, Ordering};

/// A reading of message counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageTotals {
    pub received: u64,
    pub routed: u64,
    pub unroutable_dropped: u64,
    pub unroutable_returned: u64,
    pub confirmed: u64,
    pub delivered_manual_ack: u64,
    pub delivered_auto_ack: u64,
    pub get_manual_ack: u64,
    pub get_auto_ack: u64,
    pub get_empty: u64,
    pub redelivered: u64,
    pub acknowledged: u64,
}

impl MessageTotals {
    /// Deliveries and gets, whatever their ack mode.
    pub fn delivered_and_got(&self) -> u64 {
        self.delivered_manual_ack + self.delivered_auto_ack + self.get_manual_ack + self.get_auto_ack
    }

    fn add(&mut self, other: &MessageTotals) {
        self.received += other.received;
        self.routed += other.routed;
        self.unroutable_dropped += other.unroutable_dropped;
        self.unroutable_returned += other.unroutable_returned;
        self.confirmed += other.confirmed;
        self.delivered_manual_ack += other.delivered_manual_ack;
        self.delivered_auto_ack += other.delivered_auto_ack;
        self.get_manual_ack += other.get_manual_ack;
        self.get_auto_ack += other.get_auto_ack;
        self.get_empty += other.get_empty;
        self.redelivered += other.redelivered;
        self.acknowledged += other.acknowledged;
    }
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Received,
    Routed,
    UnroutableDropped,
    UnroutableReturned,
    Confirmed,
    DeliveredManualAck,
    DeliveredAutoAck,
    GetManualAck,
    GetAutoAck,
    GetEmpty,
    Redelivered,
    Acknowledged,
}

const EVENTS: usize = 12;

#[derive(Default)]
pub(crate) struct MessageCounters {
    counts: [AtomicU64; EVENTS],
}

impl MessageCounters {
    /// Counts an event. Only the owning connection's task calls this, so
    /// a load and a store do (other threads only read).
    pub(crate) fn count(&self, event: Event, n: u64) {
        let counter = &self.counts[event as usize];
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> MessageTotals {
        let get = |e: Event| self.counts[e as usize].load(Ordering::Relaxed);
        MessageTotals {
            received: get(Event::Received),
            routed: get(Event::Routed),
            unroutable_dropped: get(Event::UnroutableDropped),
            unroutable_returned: get(Event::UnroutableReturned),
            confirmed: get(Event::Confirmed),
            delivered_manual_ack: get(Event::DeliveredManualAck),
            delivered_auto_ack: get(Event::DeliveredAutoAck),
            get_manual_ack: get(Event::GetManualAck),
            get_auto_ack: get(Event::GetAutoAck),
            get_empty: get(Event::GetEmpty),
            redelivered: get(Event::Redelivered),
            acknowledged: get(Event::Acknowledged),
        }
    }

    /// Adds a closed connection's counts.
    pub(crate) fn absorb(&self, totals: &MessageTotals) {
        let pairs = [
            (Event::Received, totals.received),
            (Event::Routed, totals.routed),
            (Event::UnroutableDropped, totals.unroutable_dropped),
            (Event::UnroutableReturned, totals.unroutable_returned),
            (Event::Confirmed, totals.confirmed),
            (Event::DeliveredManualAck, totals.delivered_manual_ack),
            (Event::DeliveredAutoAck, totals.delivered_auto_ack),
            (Event::GetManualAck, totals.get_manual_ack),
            (Event::GetAutoAck, totals.get_auto_ack),
            (Event::GetEmpty, totals.get_empty),
            (Event::Redelivered, totals.redelivered),
            (Event::Acknowledged, totals.acknowledged),
        ];
        // Many connections close at once: a real atomic add here.
        for (event, n) in pairs {
            self.counts[event as usize].fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Sums readings.
pub(crate) fn sum<'a>(readings: impl IntoIterator<Item = &'a MessageTotals>) -> MessageTotals {
    let mut total = MessageTotals::default();
    for r in readings {
        total.add(r);
    }
    total
}

/// Connection, channel and queue churn (RabbitMQ's `churn_rates` and
/// `*_opened_total` metrics).
#[derive(Default)]
pub(crate) struct ChurnCounters {
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub channels_opened: AtomicU64,
    pub channels_closed: AtomicU64,
    pub queues_declared: AtomicU64,
    pub queues_created: AtomicU64,
    pub queues_deleted: AtomicU64,
}

/// A reading of [`ChurnCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Churn {
    pub connections_opened: u64,
    pub connections_closed: u64,
    pub channels_opened: u64,
    pub channels_closed: u64,
    pub queues_declared: u64,
    pub queues_created: u64,
    pub queues_deleted: u64,
}

impl ChurnCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> Churn {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Churn {
            connections_opened: get(&self.connections_opened),
            connections_closed: get(&self.connections_closed),
            channels_opened: get(&self.channels_opened),
            channels_closed: get(&self.channels_closed),
            queues_declared: get(&self.queues_declared),
            queues_created: get(&self.queues_created),
            queues_deleted: get(&self.queues_deleted),
        }
    }
}
