//! A consumer as a queue sees it: where to send deliveries (a
//! [`DeliverySink`], which the consumer's connection implements), and how
//! many it may still take under its prefetch limits.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use warren_protocol::{FieldTable, ShortStr};

use super::{Queue, QueueEntry, Transit};
use crate::ids::ConnectionId;

/// A message a queue hands to one of its consumers.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub consumer: Arc<Consumer>,
    pub queue: Arc<Queue>,
    pub entry: QueueEntry,
}

/// Messages a queue hands to one of its consumers at once, in order (a
/// stream reader's batch: one trip through the connection's inbox).
#[derive(Debug)]
pub(crate) struct Deliveries {
    pub consumer: Arc<Consumer>,
    pub queue: Arc<Queue>,
    pub entries: Vec<QueueEntry>,
}

/// [`deliver_to`] for several entries at once (call with the queue's lock
/// held, as the counters ask); gives them back if the connection is gone.
pub(crate) fn deliver_all_to(
    consumer: &Arc<Consumer>,
    queue: &Arc<Queue>,
    entries: Vec<QueueEntry>,
) -> Result<(), Vec<QueueEntry>> {
    if entries.is_empty() {
        return Ok(());
    }
    let count = entries.len();
    let bytes: usize = entries.iter().map(|e| e.message.body.len()).sum();
    let redelivered = entries.iter().filter(|e| e.redelivered).count();
    consumer.transit.sent_many(count as u32, bytes);
    let deliveries = Deliveries {
        consumer: consumer.clone(),
        queue: queue.clone(),
        entries,
    };
    match consumer.sink.deliver_many(deliveries) {
        Ok(()) => {
            queue
                .counters
                .handed_out_many_locked(count as u64, redelivered as u64, !consumer.no_ack, bytes);
            Ok(())
        }
        Err(back) => Err(back.entries),
    }
}

/// Hands `entry` to `consumer`'s connection (counting it in the transit
/// window and, once handed over, in the queue's counters); gives the entry
/// back if the connection is gone.
pub(crate) fn deliver_to(consumer: &Arc<Consumer>, queue: &Arc<Queue>, entry: QueueEntry) -> Result<(), QueueEntry> {
    let (redelivered, bytes) = (entry.redelivered, entry.message.body.len());
    consumer.transit.sent(bytes);
    let delivery = Delivery {
        consumer: consumer.clone(),
        queue: queue.clone(),
        entry,
    };
    match consumer.sink.deliver(delivery) {
        Ok(()) => {
            queue.counters.handed_out_locked(redelivered, !consumer.no_ack, bytes);
            Ok(())
        }
        Err(back) => Err(back.entry),
    }
}

/// Where a consumer's deliveries go: its connection.
pub(crate) trait DeliverySink: Send + Sync + std::fmt::Debug {
    /// Hands a delivery over; gives it back if the connection is gone.
    fn deliver(&self, delivery: Delivery) -> Result<(), Delivery>;
    /// Hands several deliveries over at once; gives them back if the
    /// connection is gone.
    fn deliver_many(&self, deliveries: Deliveries) -> Result<(), Deliveries>;
    /// The queue was deleted under the consumer (basic.cancel to the client).
    fn cancelled(&self, channel: u16, consumer_tag: ShortStr);
}

/// A prefetch window: how many deliveries may be unacknowledged at once.
///
/// `limit` 0 means unlimited. The queue takes credit when it hands a message
/// to a consumer; the channel gives it back on ack, nack or reject. Credit is
/// taken with a compare-and-swap so two queues feeding the same channel never
/// overshoot a shared (global) window.
#[derive(Debug, Default)]
pub(crate) struct Credit {
    limit: AtomicU32,
    in_flight: AtomicU32,
}

impl Credit {
    pub(crate) fn new(limit: u32) -> Self {
        Credit {
            limit: AtomicU32::new(limit),
            in_flight: AtomicU32::new(0),
        }
    }

    pub(crate) fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Release);
    }

    pub(crate) fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    pub(crate) fn has_limit(&self) -> bool {
        self.limit.load(Ordering::Acquire) != 0
    }

    /// How many more the window takes (no limit: as many as anyone asks).
    pub(crate) fn room(&self) -> u32 {
        match self.limit.load(Ordering::Acquire) {
            0 => u32::MAX,
            limit => limit.saturating_sub(self.in_flight.load(Ordering::Acquire)),
        }
    }

    pub(crate) fn has_room(&self) -> bool {
        let limit = self.limit.load(Ordering::Acquire);
        limit == 0 || self.in_flight.load(Ordering::Acquire) < limit
    }

    /// Takes one unit if the window has room.
    pub(crate) fn try_take(&self) -> bool {
        self.take_up_to(1) == 1
    }

    /// Takes up to `n` units, as many as the window has room for, with
    /// one atomic operation; how many it took.
    pub(crate) fn take_up_to(&self, n: u32) -> u32 {
        let limit = self.limit.load(Ordering::Acquire);
        if limit == 0 {
            self.in_flight.fetch_add(n, Ordering::AcqRel);
            return n;
        }
        match self.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            (v < limit).then(|| v + n.min(limit - v))
        }) {
            Ok(before) => n.min(limit - before),
            Err(_) => 0,
        }
    }

    pub(crate) fn give_back(&self, n: u32) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_sub(n)));
    }
}

/// One `basic.consume` on a queue.
#[derive(Debug)]
pub(crate) struct Consumer {
    pub tag: ShortStr,
    pub channel: u16,
    /// The connection it belongs to (for the management API).
    pub connection: ConnectionId,
    /// basic.consume's arguments, as given.
    pub arguments: FieldTable,
    pub sink: Arc<dyn DeliverySink>,
    pub no_ack: bool,
    pub exclusive: bool,
    /// `x-priority`: higher-priority consumers are served first.
    pub priority: i64,
    /// Per-consumer prefetch (basic.qos global=false).
    pub credit: Credit,
    /// The channel-wide prefetch (basic.qos global=true), shared by the
    /// channel's consumers.
    pub channel_credit: Arc<Credit>,
    /// Deliveries on their way to the connection, not yet written.
    pub transit: Transit,
    /// Cleared when the consumer is cancelled; deliveries already on their
    /// way are then requeued by the channel.
    pub active: AtomicBool,
    /// A consumer on another node standing in at its queue's home
    /// (`remote::stand_ins`): counted, never delivered to.
    pub stands_in: bool,
}

impl Consumer {
    /// Takes credit for one delivery from both windows, or none.
    /// Both need room in the transit window first.
    pub(crate) fn try_take_credit(&self) -> bool {
        self.take_credit(1) == 1
    }

    /// Takes credit for up to `n` deliveries from both windows at once
    /// (one atomic operation each, where [`Self::try_take_credit`] takes
    /// one per delivery); how many. The transit window is asked once, so
    /// the batch may go past it by up to `n`.
    pub(crate) fn take_credit(&self, n: u32) -> u32 {
        if n == 0 || !self.transit.has_room() {
            return 0;
        }
        if self.no_ack {
            return n;
        }
        let took = self.credit.take_up_to(n);
        if took == 0 {
            return 0;
        }
        let both = self.channel_credit.take_up_to(took);
        if both < took {
            self.credit.give_back(took - both);
        }
        both
    }

    /// Whether both windows have room, without taking any.
    pub(crate) fn has_credit(&self) -> bool {
        self.transit.has_room() && (self.no_ack || (self.credit.has_room() && self.channel_credit.has_room()))
    }

    /// Returns credit for deliveries that were acked, nacked or requeued.
    pub(crate) fn release_credit(&self, n: u32) {
        if !self.no_ack {
            self.credit.give_back(n);
            self.channel_credit.give_back(n);
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_of_zero_is_unlimited() {
        let credit = Credit::new(0);
        assert!(!credit.has_limit());
        for _ in 0..10_000 {
            assert!(credit.try_take());
        }
        assert!(credit.has_room());
    }

    #[test]
    fn a_window_gives_what_it_has_and_takes_back_what_is_settled() {
        let credit = Credit::new(2);
        assert!(credit.try_take() && credit.try_take());
        assert!(!credit.try_take() && !credit.has_room());
        credit.give_back(1);
        assert!(credit.try_take());
        credit.give_back(5);
        assert!(
            credit.has_room(),
            "giving back more than was taken saturates at none in flight"
        );
        credit.set_limit(1);
        assert!(credit.try_take() && !credit.try_take());
    }

    #[test]
    fn a_window_gives_a_batch_what_room_it_has() {
        let credit = Credit::new(10);
        assert_eq!(credit.take_up_to(4), 4);
        assert_eq!(credit.take_up_to(8), 6, "only the room left");
        assert_eq!(credit.take_up_to(1), 0);
        credit.give_back(3);
        assert_eq!(credit.take_up_to(5), 3);
        let unlimited = Credit::new(0);
        assert_eq!(unlimited.take_up_to(1000), 1000);
    }
}
