//! Consuming: basic.qos, basic.consume, basic.cancel, basic.get, and writing
//! the deliveries queues hand to this channel's consumers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use warren_protocol::*;

use super::sources::SourceId;
use super::{Channel, ConnCtx};
use crate::connections::ChannelInfo;
use crate::error::{AmqpError, AmqpResult};
use crate::message_stats::Event;
use crate::names;
use crate::queue::stream::OffsetSpec;
use crate::queue::{Consumer, Credit, Deliveries, Delivery, Queue, QueueEntry, Transit};

/// A consumer on this channel and the queue it consumes from.
pub(crate) struct ChannelConsumer {
    pub consumer: Arc<Consumer>,
    pub queue: Arc<Queue>,
}

impl Channel {
    pub(super) fn basic_qos(&mut self, ctx: &mut ConnCtx, m: BasicQos) -> AmqpResult<()> {
        if m.prefetch_size != 0 {
            return Err(AmqpError::not_implemented(format!(
                "prefetch_size!=0 ({})",
                m.prefetch_size
            )));
        }
        let count = u32::from(m.prefetch_count);
        if m.global {
            self.channel_credit.set_limit(count);
            // A larger window may let waiting messages through now.
            for c in self.consumers.values() {
                c.queue.kick();
            }
        } else {
            self.consumer_prefetch = count;
        }
        ctx.send(self.id, BasicQosOk {});
        Ok(())
    }

    pub(super) fn basic_consume(&mut self, ctx: &mut ConnCtx, m: BasicConsume) -> AmqpResult<()> {
        if m.queue.as_str() == super::direct_reply::REPLY_QUEUE {
            let tag = if m.consumer_tag.is_empty() {
                names::consumer_tag()
            } else {
                m.consumer_tag.clone()
            };
            return self.consume_replies(ctx, m, tag);
        }
        let queue = self.usable_queue(ctx, &m.queue)?;
        let tag = if m.consumer_tag.is_empty() {
            names::consumer_tag()
        } else {
            m.consumer_tag
        };
        if let Some(priority) = m.arguments.get("x-priority") {
            if priority.as_i64().is_none() {
                return Err(AmqpError::precondition_failed(format!(
                    "invalid arg 'x-priority' for queue '{}' in vhost '{}': \"expected integer, got {}\"",
                    queue.name,
                    ctx.vhost.name,
                    crate::queue::type_name(priority)
                )));
            }
        }
        if let Some(max) = ctx.broker.config.max_consumers_per_channel {
            if self.consumers.len() >= max as usize {
                return Err(AmqpError::not_allowed(format!(
                    "reached maximum ({max}) of consumers per channel"
                )));
            }
        }
        if self.consumers.contains_key(tag.as_str()) {
            return Err(AmqpError::not_allowed(format!("attempt to reuse consumer tag '{tag}'")));
        }
        if queue.is_stream() {
            // As RabbitMQ: a stream consumer acks manually, within a
            // per-consumer prefetch, and says where it starts.
            let what = format!("queue '{}' in vhost '{}'", queue.name, ctx.vhost.name);
            if self.consumer_prefetch == 0 {
                return Err(AmqpError::precondition_failed(format!(
                    "consumer prefetch count is not set for '{what}'"
                )));
            }
            if m.no_ack {
                return Err(queue.not_for_streams("automatic acknowledgement"));
            }
            OffsetSpec::from_arguments(&m.arguments, &what)?;
        }
        let consumer = Arc::new(Consumer {
            tag: tag.clone(),
            channel: self.id,
            connection: ctx.conn_id,
            arguments: m.arguments.clone(),
            sink: ctx.sink.clone(),
            no_ack: m.no_ack,
            exclusive: m.exclusive,
            priority: m.arguments.get("x-priority").and_then(FieldValue::as_i64).unwrap_or(0),
            credit: Credit::new(self.consumer_prefetch),
            channel_credit: self.channel_credit.clone(),
            transit: Transit::default(),
            active: AtomicBool::new(true),
            stands_in: false,
        });
        if queue.add_consumer(consumer.clone()).is_err() {
            return Err(AmqpError::access_refused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                queue.name, ctx.vhost.name
            )));
        }
        // Deliveries the queue starts sending arrive through the
        // connection's inbox, so this consume-ok is written before them.
        if !m.nowait {
            ctx.send(
                self.id,
                BasicConsumeOk {
                    consumer_tag: tag.clone(),
                },
            );
        }
        self.consumers.insert(tag, ChannelConsumer { consumer, queue });
        Ok(())
    }

    pub(super) fn basic_cancel(&mut self, ctx: &mut ConnCtx, m: BasicCancel) -> AmqpResult<()> {
        if let Some(c) = self.consumers.remove(m.consumer_tag.as_str()) {
            Self::detach(ctx, &c);
        } else {
            self.cancel_replies(ctx, &m.consumer_tag);
        }
        if !m.nowait {
            ctx.send(
                self.id,
                BasicCancelOk {
                    consumer_tag: m.consumer_tag,
                },
            );
        }
        Ok(())
    }

    /// Stops a consumer and auto-deletes its queue if it was the last one.
    pub(super) fn detach(ctx: &mut ConnCtx, c: &ChannelConsumer) {
        c.consumer.active.store(false, Ordering::Release);
        if c.queue.remove_consumer(&c.consumer) {
            ctx.vhost.delete_queue_everywhere(&c.queue);
        }
    }

    /// The queue was deleted under one of our consumers.
    pub(crate) fn consumer_cancelled_by_queue(&mut self, ctx: &mut ConnCtx, tag: ShortStr) {
        if self.consumers.remove(tag.as_str()).is_some() && ctx.caps.consumer_cancel_notify {
            ctx.send(
                self.id,
                BasicCancel {
                    consumer_tag: tag,
                    nowait: true,
                },
            );
        }
    }

    pub(super) fn basic_get(&mut self, ctx: &mut ConnCtx, m: BasicGet) -> AmqpResult<()> {
        let queue = self.usable_queue(ctx, &m.queue)?;
        if queue.is_stream() {
            return Err(queue.not_for_streams("basic.get"));
        }
        let Some((entry, remaining)) = queue.get(!m.no_ack) else {
            ctx.info.counters.count(Event::GetEmpty, 1);
            queue.counters.got_nothing();
            ctx.send(self.id, BasicGetEmpty::default());
            return Ok(());
        };
        let event = if m.no_ack {
            Event::GetAutoAck
        } else {
            Event::GetManualAck
        };
        ctx.info.counters.count(event, 1);
        if entry.redelivered {
            ctx.info.counters.count(Event::Redelivered, 1);
        }
        let tag = self.next_tag();
        let method = Method::BasicGetOk(BasicGetOk {
            delivery_tag: tag,
            redelivered: entry.redelivered,
            exchange: entry.message.exchange.clone(),
            routing_key: entry.message.routing_key.clone(),
            message_count: remaining as u32,
        });
        write_content(ctx, self.id, &method, &queue, &entry);
        if m.no_ack {
            queue.settle_without_ack(&entry);
        } else {
            let source = self.sources.hold(&queue, None, 1);
            self.track_unacked(ctx, tag, source, entry);
        }
        Ok(())
    }

    /// Whether a delivery for this consumer may still be written: the
    /// consumer is active and still this channel's.
    pub(crate) fn accepts_delivery(&self, consumer: &Arc<Consumer>) -> bool {
        !self.closing
            && consumer.is_active()
            && self
                .consumers
                .get(consumer.tag.as_str())
                .is_some_and(|c| Arc::ptr_eq(&c.consumer, consumer))
    }

    /// Writes basic.deliver for a message a queue handed to our consumer.
    pub(crate) fn deliver(&mut self, ctx: &mut ConnCtx, delivery: Delivery) {
        let Delivery { consumer, queue, entry } = delivery;
        let source = self.hold_source(&consumer, &queue, 1);
        self.deliver_entry(ctx, &consumer, &queue, source, entry);
        ChannelInfo::set(&self.info.unacked, self.unacked.len());
    }

    /// [`Self::deliver`] for a batch of messages, in order.
    pub(crate) fn deliver_many(&mut self, ctx: &mut ConnCtx, deliveries: Deliveries) {
        let Deliveries {
            consumer,
            queue,
            entries,
        } = deliveries;
        // Held once for the batch: one lookup, not one a delivery.
        let source = self.hold_source(&consumer, &queue, entries.len());
        for entry in entries {
            self.deliver_entry(ctx, &consumer, &queue, source, entry);
        }
        ChannelInfo::set(&self.info.unacked, self.unacked.len());
    }

    /// The (queue, consumer) pair `deliveries` to a consumer that acks
    /// will refer to until settled; None for a no-ack consumer.
    fn hold_source(&mut self, consumer: &Arc<Consumer>, queue: &Arc<Queue>, deliveries: usize) -> Option<SourceId> {
        (!consumer.no_ack).then(|| self.sources.hold(queue, Some(consumer), deliveries))
    }

    /// `source` is what [`Self::hold_source`] held for this delivery.
    fn deliver_entry(
        &mut self,
        ctx: &mut ConnCtx,
        consumer: &Arc<Consumer>,
        queue: &Arc<Queue>,
        source: Option<SourceId>,
        entry: QueueEntry,
    ) {
        let tag = self.next_tag();
        let method = Method::BasicDeliver(BasicDeliver {
            consumer_tag: consumer.tag.clone(),
            delivery_tag: tag,
            redelivered: entry.redelivered,
            exchange: entry.message.exchange.clone(),
            routing_key: entry.message.routing_key.clone(),
        });
        write_content(ctx, self.id, &method, queue, &entry);
        let event = if consumer.no_ack {
            Event::DeliveredAutoAck
        } else {
            Event::DeliveredManualAck
        };
        ctx.info.counters.count(event, 1);
        if entry.redelivered {
            ctx.info.counters.count(Event::Redelivered, 1);
        }
        match source {
            None => queue.settle_without_ack(&entry),
            Some(source) => self.track_unacked(ctx, tag, source, entry),
        }
    }

    pub(super) fn next_tag(&mut self) -> u64 {
        let tag = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        tag
    }
}

/// Writes a delivery's method, header and body (the header as the queue
/// type sends it: quorum queues add `x-delivery-count`, streams
/// `x-stream-offset`).
fn write_content(ctx: &mut ConnCtx, channel: u16, method: &Method, queue: &Queue, entry: &QueueEntry) {
    let header = &entry.message.header;
    match queue.added_header(entry) {
        None => encode_content(
            &mut ctx.out,
            channel,
            method,
            header,
            &entry.message.body,
            ctx.frame_max,
        ),
        Some(added) => {
            encode_method(ctx.out.buf(), channel, method);
            encode_header_with(ctx.out.buf(), channel, header, added.key, &added.value);
            encode_body(&mut ctx.out, channel, &entry.message.body, ctx.frame_max);
        }
    }
}
