//! Direct reply-to: the `amq.rabbitmq.reply-to` pseudo-queue for RPC, as
//! RabbitMQ implements it.
//!
//! A client consumes from `amq.rabbitmq.reply-to` with no-ack, then publishes
//! requests whose `reply_to` is that name; the broker rewrites it to
//! `amq.rabbitmq.reply-to.<key>`. A reply published to the default exchange
//! with that routing key goes straight to the requesting channel's consumer,
//! never through a queue.

use std::sync::Arc;

use warren_protocol::*;

use super::{Channel, ConnCtx};
use crate::error::{AmqpError, AmqpResult};
use crate::message::Message;
use crate::reply_to::ReplyTarget;

/// The pseudo-queue a client consumes replies from.
pub(super) const REPLY_QUEUE: &str = "amq.rabbitmq.reply-to";
/// The prefix of the rewritten `reply_to` (and of replies' routing keys).
pub(super) const REPLY_PREFIX: &str = "amq.rabbitmq.reply-to.";

/// A channel's reply consumer.
pub(crate) struct ReplyConsumer {
    key: String,
    tag: ShortStr,
}

impl Channel {
    /// basic.consume on `amq.rabbitmq.reply-to`.
    pub(super) fn consume_replies(&mut self, ctx: &mut ConnCtx, m: BasicConsume, tag: ShortStr) -> AmqpResult<()> {
        if !m.no_ack {
            return Err(AmqpError::precondition_failed("reply consumer cannot acknowledge"));
        }
        if self.reply_consumer.is_some() {
            return Err(AmqpError::precondition_failed("reply consumer already set"));
        }
        let key = crate::names::generate("g")
            .as_str()
            .trim_start_matches("g-")
            .to_string();
        ctx.broker.reply_targets.register(
            key.clone(),
            ReplyTarget {
                connection: ctx.handle.clone(),
                channel: self.id,
                consumer_tag: tag.clone(),
            },
        );
        self.reply_consumer = Some(ReplyConsumer { key, tag: tag.clone() });
        if !m.nowait {
            ctx.send(self.id, BasicConsumeOk { consumer_tag: tag });
        }
        Ok(())
    }

    /// Cancels the reply consumer if `tag` is it. Returns whether it was.
    pub(super) fn cancel_replies(&mut self, ctx: &mut ConnCtx, tag: &str) -> bool {
        match &self.reply_consumer {
            Some(reply) if reply.tag.as_str() == tag => {
                ctx.broker.reply_targets.unregister(&reply.key);
                self.reply_consumer = None;
                true
            }
            _ => false,
        }
    }

    pub(super) fn release_replies(&mut self, ctx: &mut ConnCtx) {
        if let Some(reply) = self.reply_consumer.take() {
            ctx.broker.reply_targets.unregister(&reply.key);
        }
    }

    /// Rewrites `reply_to: amq.rabbitmq.reply-to` to this channel's reply
    /// address; refuses it if the channel has no reply consumer.
    pub(super) fn rewrite_reply_to(&self, header: &mut ContentHeader) -> AmqpResult<()> {
        if header.properties().reply_to.as_deref() != Some(REPLY_QUEUE) {
            return Ok(());
        }
        let Some(reply) = &self.reply_consumer else {
            return Err(AmqpError::precondition_failed("fast reply consumer does not exist"));
        };
        header.properties_mut().reply_to = Some(ShortStr::from(format!("{REPLY_PREFIX}{}", reply.key)));
        Ok(())
    }

    /// Writes a reply that arrived for this channel's reply consumer.
    pub(crate) fn deliver_reply(&mut self, ctx: &mut ConnCtx, consumer_tag: &ShortStr, message: &Message) {
        if self.closing || self.reply_consumer.as_ref().is_none_or(|r| r.tag != *consumer_tag) {
            return;
        }
        let tag = self.next_tag();
        let method = Method::BasicDeliver(BasicDeliver {
            consumer_tag: consumer_tag.clone(),
            delivery_tag: tag,
            redelivered: false,
            exchange: message.exchange.clone(),
            routing_key: message.routing_key.clone(),
        });
        encode_content(
            &mut ctx.out,
            self.id,
            &method,
            &message.header,
            &message.body,
            ctx.frame_max,
        );
    }
}

/// Sends a reply to the channel waiting for it. False if nobody waits.
pub(super) fn route_reply(ctx: &ConnCtx, routing_key: &str, message: &Arc<Message>) -> bool {
    routing_key
        .strip_prefix(REPLY_PREFIX)
        .is_some_and(|key| ctx.broker.reply_targets.send(key, message))
}

/// Whether `name` is the reply pseudo-queue or a live reply address (for a
/// passive queue.declare, which RabbitMQ answers for them).
pub(super) fn is_reply_address(ctx: &ConnCtx, name: &str) -> bool {
    name == REPLY_QUEUE
        || name
            .strip_prefix(REPLY_PREFIX)
            .is_some_and(|key| ctx.broker.reply_targets.contains(key))
}
