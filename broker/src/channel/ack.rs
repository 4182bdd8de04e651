//! Unacknowledged deliveries and their settlement: basic.ack, basic.nack,
//! basic.reject and basic.recover.
//!
//! Deliveries are kept in delivery-tag order, so acking the oldest (the
//! common case) pops from the front and `multiple` drains a prefix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sources::SourceId;
use super::{Channel, ConnCtx};
use crate::error::{AmqpError, AmqpResult};
use crate::message_stats::Event;
use crate::queue::{Queue, QueueEntry, Settlement};
use warren_store::Offset;

/// A delivery the client has not settled yet.
#[derive(Debug)]
pub(crate) struct Unacked {
    pub tag: u64,
    /// The queue it came from and the consumer it went to (none for
    /// basic.get), held in the channel's `sources`.
    pub source: SourceId,
    pub entry: QueueEntry,
    /// When it was delivered, for the consumer (ack) timeout.
    pub delivered_at: Instant,
}

impl Channel {
    /// Records a delivery that needs an ack; `source` was held for it.
    pub(super) fn track_unacked(&mut self, ctx: &ConnCtx, tag: u64, source: SourceId, entry: QueueEntry) {
        self.unacked.push_back(Unacked {
            tag,
            source,
            entry,
            delivered_at: ctx.now,
        });
    }

    /// The queue a delivery came from.
    fn queue_of(&self, delivery: &Unacked) -> Option<&Arc<Queue>> {
        self.sources.get(delivery.source).map(|s| &s.queue)
    }

    /// On the connection's tick, one walk over the unacknowledged
    /// deliveries serves two ends. Each queue it holds deliveries from
    /// learns when the oldest of them was made (consumer lag). And it
    /// returns RabbitMQ's consumer timeout, the 406 to close the channel
    /// with, if a delivery has waited for its ack longer than its queue's
    /// `x-consumer-timeout` (or the broker-wide `default`): the first such
    /// delivery in tag order is always the oldest of its queue, so only
    /// those are looked at.
    pub(crate) fn tick_unacked(&mut self, now: Instant, default: Option<Duration>) -> Option<AmqpError> {
        let mut oldest: Vec<(Arc<Queue>, Instant)> = Vec::new();
        for u in &self.unacked {
            let Some(queue) = self.queue_of(u) else {
                continue;
            };
            // In tag order, so the first seen of a queue is its oldest.
            if !oldest.iter().any(|(q, _)| Arc::ptr_eq(q, queue)) {
                oldest.push((queue.clone(), u.delivered_at));
            }
        }
        self.report_oldest(&oldest);
        if self.closing {
            return None;
        }
        let expired = oldest.iter().find_map(|(queue, at)| {
            let timeout = queue.args().consumer_timeout.map(Duration::from_millis).or(default)?;
            (now.saturating_duration_since(*at) > timeout).then_some(timeout)
        })?;
        Some(AmqpError::precondition_failed(format!(
            "delivery acknowledgement on channel {} timed out. Timeout value used: {} ms. \
             This timeout value can be configured, see consumers doc guide to learn more",
            self.id,
            expired.as_millis()
        )))
    }

    /// Tells each queue in `oldest` when the oldest delivery this channel
    /// holds from it was made, and the queues it reported to before and
    /// holds nothing from now that it holds none.
    pub(super) fn report_oldest(&mut self, oldest: &[(Arc<Queue>, Instant)]) {
        for queue in &self.reported {
            if !oldest.iter().any(|(q, _)| Arc::ptr_eq(q, queue)) {
                queue.unacked_ages.clear(self.reporter);
            }
        }
        for (queue, at) in oldest {
            queue.unacked_ages.report(self.reporter, *at);
        }
        self.reported = oldest.iter().map(|(q, _)| q.clone()).collect();
    }

    /// Removes the deliveries an ack/nack/reject refers to, or fails with
    /// RabbitMQ's 406 "unknown delivery tag".
    fn take_unacked(&mut self, tag: u64, multiple: bool) -> AmqpResult<Vec<Unacked>> {
        if multiple && tag == 0 {
            return Ok(self.unacked.drain(..).collect());
        }
        let index = self
            .unacked
            .binary_search_by_key(&tag, |u| u.tag)
            .map_err(|_| AmqpError::precondition_failed(format!("unknown delivery tag {tag}")))?;
        if multiple {
            Ok(self.unacked.drain(..=index).collect())
        } else {
            Ok(self.unacked.remove(index).into_iter().collect())
        }
    }

    pub(super) fn basic_ack(&mut self, ctx: &mut ConnCtx, tag: u64, multiple: bool) -> AmqpResult<()> {
        let deliveries = self.take_unacked(tag, multiple)?;
        ctx.info.counters.count(Event::Acknowledged, deliveries.len() as u64);
        match self.tx.as_mut() {
            Some(tx) => tx.acks.push((deliveries, Settlement::Ack)),
            None => self.settle(deliveries, Settlement::Ack),
        }
        Ok(())
    }

    pub(super) fn basic_reject(
        &mut self,
        _ctx: &mut ConnCtx,
        tag: u64,
        multiple: bool,
        requeue: bool,
    ) -> AmqpResult<()> {
        let deliveries = self.take_unacked(tag, multiple)?;
        let stream = deliveries
            .iter()
            .filter_map(|d| self.queue_of(d))
            .find(|q| q.is_stream());
        if let Some(stream) = stream {
            let error = stream.not_for_streams("basic.nack and basic.reject");
            self.restore_unacked(deliveries);
            return Err(error);
        }
        let settlement = if requeue {
            Settlement::Requeue
        } else {
            Settlement::Discard
        };
        match self.tx.as_mut() {
            Some(tx) => tx.acks.push((deliveries, settlement)),
            None => self.settle(deliveries, settlement),
        }
        Ok(())
    }

    pub(super) fn basic_recover(&mut self, _ctx: &mut ConnCtx, requeue: bool) -> AmqpResult<()> {
        if !requeue {
            return Err(AmqpError::not_implemented("requeue=false"));
        }
        self.requeue_all_unacked();
        Ok(())
    }

    /// Requeues every unacknowledged delivery (channel closing, recover).
    pub(super) fn requeue_all_unacked(&mut self) {
        let all: Vec<Unacked> = self.unacked.drain(..).collect();
        self.settle(all, Settlement::Requeue);
    }

    /// Puts deliveries back among the unacknowledged (tx.rollback).
    pub(super) fn restore_unacked(&mut self, deliveries: Vec<Unacked>) {
        for delivery in deliveries {
            let at = self.unacked.partition_point(|u| u.tag < delivery.tag);
            self.unacked.insert(at, delivery);
        }
    }

    /// Applies a settlement; frees prefetch credit and lets the queues
    /// dispatch again.
    pub(super) fn settle(&mut self, deliveries: Vec<Unacked>, settlement: Settlement) {
        if deliveries.is_empty() {
            return;
        }
        // Group by queue, keeping order, so each queue is locked once; and
        // by source (queue and consumer), so each consumer gives back its
        // credit (and a stream hears of its furthest ack) once.
        let mut per_queue: Vec<(Arc<Queue>, Vec<QueueEntry>)> = Vec::new();
        let mut per_source: Vec<SourceSettled> = Vec::new();
        for delivery in deliveries {
            let acked = (settlement == Settlement::Ack).then_some(delivery.entry.offset);
            match per_source.iter_mut().find(|s| s.source == delivery.source) {
                Some(settled) => {
                    settled.count += 1;
                    settled.furthest_ack = settled.furthest_ack.max(acked);
                }
                None => per_source.push(SourceSettled {
                    source: delivery.source,
                    count: 1,
                    furthest_ack: acked,
                }),
            }
            let Some(queue) = self.queue_of(&delivery) else {
                tracing::error!(channel = self.id, "a delivery's queue was let go before its settlement");
                continue;
            };
            match per_queue.iter_mut().find(|(q, _)| Arc::ptr_eq(q, queue)) {
                Some((_, entries)) => entries.push(delivery.entry),
                None => per_queue.push((queue.clone(), vec![delivery.entry])),
            }
        }
        for settled in per_source {
            if let Some(source) = self.sources.get(settled.source) {
                if let Some(consumer) = &source.consumer {
                    consumer.release_credit(settled.count);
                    if let Some(offset) = settled.furthest_ack.filter(|_| source.queue.is_stream()) {
                        source.queue.consumer_acked(consumer, offset);
                    }
                }
            }
            self.sources.release(settled.source, settled.count as usize);
        }
        for (queue, entries) in per_queue {
            queue.settle(entries, settlement);
        }
        if self.channel_credit.has_limit() {
            // A shared window may unblock queues this ack did not touch.
            for c in self.consumers.values() {
                c.queue.kick();
            }
        }
    }
}

/// What one settlement gave back to one source's consumer.
struct SourceSettled {
    source: SourceId,
    count: u32,
    /// The furthest offset it acked (a stream tracks it), if it acked.
    furthest_ack: Option<Offset>,
}
