//! basic.publish: validating and routing a message once its content has
//! arrived, mandatory returns, and publisher confirms.
//!
//! Confirms are coalesced: acks for the publishes handled in one read from
//! the socket go out as a single `basic.ack` with `multiple` set, sent when
//! the connection flushes.

use std::sync::Arc;

use bytes::Bytes;
use warren_protocol::*;

use super::content::PendingContent;
use super::{direct_reply, Channel, ConnCtx};
use crate::access::{Operation, ResourceKind};
use crate::durability::Synced;
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::ExchangeKind;
use crate::message::Message;
use crate::message_stats::Event;
use crate::queue::{Enqueued, Queue, Ticket};

/// Publisher-confirm bookkeeping of a channel in confirm mode.
#[derive(Debug, Default)]
pub(crate) struct ConfirmState {
    /// Sequence number of the next publish (the first is 1).
    next_seq: u64,
    /// Publishes confirmed but whose ack is not yet written, and the last one.
    unsent: u32,
    unsent_upto: u64,
    /// Publishes written to disk or proposed to replicated queues, in
    /// order, with what they wait for.
    waiting_for_disk: std::collections::VecDeque<Waiting>,
}

/// A publish whose confirm waits.
#[derive(Debug)]
struct Waiting {
    seq: u64,
    /// The epoch whose sync makes it durable (0 for one that only waits
    /// behind others).
    epoch: u64,
    /// The replicated queues' tickets it waits for.
    tickets: Vec<Arc<Ticket>>,
}

impl Waiting {
    /// Some(true) to ack, Some(false) to nack, None to keep waiting.
    fn verdict(&self, synced: Synced) -> Option<bool> {
        let mut ack = synced.verdict(self.epoch)?;
        for ticket in &self.tickets {
            ack &= ticket.outcome()?;
        }
        Some(ack)
    }
}

impl Channel {
    pub(super) fn basic_publish(&mut self, ctx: &mut ConnCtx, m: BasicPublish) -> AmqpResult<()> {
        if m.immediate {
            return Err(AmqpError::not_implemented("immediate=true"));
        }
        ctx.has_published = true;
        self.content = Some(PendingContent::new(m));
        Ok(())
    }

    pub(super) fn publish_complete(
        &mut self,
        ctx: &mut ConnCtx,
        publish: BasicPublish,
        mut header: ContentHeader,
        body: Bytes,
    ) -> AmqpResult<()> {
        ctx.grant
            .check(Operation::Write, ResourceKind::Exchange, &publish.exchange)?;
        let exchange = ctx.vhost.exchange_or_404(&publish.exchange)?;
        if exchange.kind() == ExchangeKind::Topic {
            ctx.grant
                .check_topic(Operation::Write, &exchange.name, &publish.routing_key)?;
        }
        if exchange.settings.internal {
            return Err(AmqpError::access_refused(format!(
                "cannot publish to internal exchange '{}' in vhost '{}'",
                exchange.name, ctx.vhost.name
            )));
        }
        if let Some(user_id) = &header.properties().user_id {
            if user_id.as_str() != ctx.user && !ctx.grant.may_impersonate() {
                return Err(AmqpError::precondition_failed(format!(
                    "user_id property set to '{user_id}' but authenticated user was '{}'",
                    ctx.user
                )));
            }
        }
        if let Some(expiration) = &header.properties().expiration {
            check_expiration(expiration)?;
        }
        self.rewrite_reply_to(&mut header)?;
        let message = Message::new(publish.exchange, publish.routing_key, header, body);
        if exchange.name.is_empty() && message.routing_key.starts_with(direct_reply::REPLY_PREFIX) {
            let delivered = direct_reply::route_reply(ctx, &message.routing_key, &message);
            self.deliver_to_queues(ctx, &message, &[], publish.mandatory && !delivered);
            return Ok(());
        }
        let mut queues = std::mem::take(&mut ctx.route_scratch);
        queues.clear();
        ctx.vhost.route(
            &exchange,
            &message.routing_key,
            message.header.properties(),
            &mut queues,
        );
        if let Some(tx) = self.tx.as_mut() {
            tx.stage_publish(message, &queues, publish.mandatory);
        } else {
            self.deliver_to_queues(ctx, &message, &queues, publish.mandatory);
        }
        queues.clear();
        ctx.route_scratch = queues;
        Ok(())
    }

    /// Enqueues a routed message, returns it if it was mandatory and went
    /// nowhere, and confirms it in confirm mode.
    pub(super) fn deliver_to_queues(
        &mut self,
        ctx: &mut ConnCtx,
        message: &Arc<Message>,
        queues: &[Arc<Queue>],
        mandatory: bool,
    ) {
        let counters = &ctx.info.counters;
        counters.count(Event::Received, 1);
        counters.count(
            match (queues.is_empty(), mandatory) {
                (false, _) => Event::Routed,
                (true, true) => Event::UnroutableReturned,
                (true, false) => Event::UnroutableDropped,
            },
            1,
        );
        let (mut rejected, mut stored) = (false, false);
        let mut tickets = Vec::new();
        for queue in queues {
            match queue.publish(message.clone()) {
                Enqueued::Rejected => rejected = true,
                Enqueued::Stored => stored = true,
                Enqueued::Replicating(ticket) => tickets.push(ticket),
                Enqueued::Accepted => {}
            }
        }
        if queues.is_empty() && mandatory {
            let method = Method::BasicReturn(BasicReturn {
                reply_code: reply_code::NO_ROUTE,
                reply_text: ShortStr::from_static("NO_ROUTE"),
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
        if self.confirm.is_some() {
            if !rejected {
                ctx.info.counters.count(Event::Confirmed, 1);
            }
            self.confirm_publish(ctx, rejected, stored, tickets);
        }
    }

    /// Confirms a publish: a nack if a queue refused it; an ack after the
    /// next sync if it was written to disk; otherwise an ack at the next
    /// flush. Acks never overtake an earlier publish still waiting for disk.
    fn confirm_publish(&mut self, ctx: &mut ConnCtx, rejected: bool, stored: bool, tickets: Vec<Arc<Ticket>>) {
        if rejected {
            // Acks owed for earlier publishes go first, then this nack.
            self.flush_confirms(ctx);
        }
        let Some(confirm) = self.confirm.as_mut() else {
            return;
        };
        confirm.next_seq += 1;
        let seq = confirm.next_seq;
        if rejected {
            ctx.send(
                self.id,
                BasicNack {
                    delivery_tag: seq,
                    multiple: false,
                    requeue: false,
                },
            );
            return;
        }
        if stored || !tickets.is_empty() || !confirm.waiting_for_disk.is_empty() {
            let epoch = if stored {
                let durability = ctx.broker.durability();
                let epoch = durability.wrote();
                durability.request_sync();
                epoch
            } else {
                0
            };
            if confirm.waiting_for_disk.is_empty() {
                ctx.sync_waiting.push(self.id);
            }
            for ticket in &tickets {
                ticket.wake(&ctx.replicated);
            }
            confirm.waiting_for_disk.push_back(Waiting { seq, epoch, tickets });
            return;
        }
        confirm.unsent_upto = seq;
        confirm.unsent += 1;
        if confirm.unsent == 1 {
            ctx.confirms_pending.push(self.id);
        }
    }

    /// The store synced: acks the publishes that waited for it, in order,
    /// and nacks those whose sync failed. Returns whether publishes are
    /// still waiting.
    pub(crate) fn release_durable(&mut self, ctx: &mut ConnCtx, synced: Synced) -> bool {
        self.flush_confirms(ctx);
        let Some(confirm) = self.confirm.as_mut() else {
            return false;
        };
        // Runs of the same verdict go out as one multiple ack (or nack).
        let mut run: Option<(bool, u64, u64)> = None;
        while let Some(waiting) = confirm.waiting_for_disk.front() {
            let Some(ack) = waiting.verdict(synced) else {
                break;
            };
            let seq = waiting.seq;
            confirm.waiting_for_disk.pop_front();
            run = match run {
                Some((kind, first, _)) if kind == ack => Some((kind, first, seq)),
                Some(done) => {
                    send_confirm_run(ctx, self.id, done);
                    Some((ack, seq, seq))
                }
                None => Some((ack, seq, seq)),
            };
        }
        if let Some(done) = run {
            send_confirm_run(ctx, self.id, done);
        }
        !confirm.waiting_for_disk.is_empty()
    }

    /// Writes the coalesced ack for publishes confirmed since the last flush.
    pub(crate) fn flush_confirms(&mut self, ctx: &mut ConnCtx) {
        let Some(confirm) = self.confirm.as_mut().filter(|_| !self.closing) else {
            return;
        };
        if confirm.unsent == 0 {
            return;
        }
        let ack = BasicAck {
            delivery_tag: confirm.unsent_upto,
            multiple: confirm.unsent > 1,
        };
        confirm.unsent = 0;
        ctx.send(self.id, ack);
    }

    pub(super) fn confirm_select(&mut self, ctx: &mut ConnCtx, m: ConfirmSelect) -> AmqpResult<()> {
        if self.tx.is_some() {
            return Err(AmqpError::precondition_failed("cannot switch from tx to confirm mode"));
        }
        if self.confirm.is_none() {
            self.confirm = Some(ConfirmState::default());
        }
        if !m.nowait {
            ctx.send(self.id, ConfirmSelectOk {});
        }
        Ok(())
    }
}

/// Sends one basic.ack (or basic.nack) covering publishes `first..=last`.
fn send_confirm_run(ctx: &mut ConnCtx, channel: u16, (ack, first, last): (bool, u64, u64)) {
    let multiple = last > first;
    if ack {
        ctx.send(
            channel,
            BasicAck {
                delivery_tag: last,
                multiple,
            },
        );
    } else {
        ctx.send(
            channel,
            BasicNack {
                delivery_tag: last,
                multiple,
                requeue: false,
            },
        );
    }
}

/// RabbitMQ's largest per-message expiration: ten years, in milliseconds.
const MAX_EXPIRATION_MS: &str = "315360000000";

/// Validates the `expiration` property as RabbitMQ does (Erlang's
/// `string:to_integer`, then its ten-year bound): a leading integer with
/// nothing after it, not negative, not above the bound. The reply texts are
/// RabbitMQ's, including where Erlang's printer wraps a long term.
fn check_expiration(expiration: &ShortStr) -> AmqpResult<()> {
    let text = expiration.as_str();
    let negative = text.starts_with('-');
    let sign_len = usize::from(text.starts_with(['-', '+']));
    let digits = text[sign_len..].bytes().take_while(u8::is_ascii_digit).count();
    let prefix = format!("invalid expiration '{expiration}': ");
    let invalid = |reason: String| Err(AmqpError::precondition_failed(format!("{prefix}{reason}")));
    if digits == 0 {
        return invalid("no_integer".into());
    }
    let rest = &text[sign_len + digits..];
    if !rest.is_empty() {
        return invalid(format!("{{leftover_string,\"{rest}\"}}"));
    }
    // The integer as Erlang prints it: no '+', no leading zeros.
    let magnitude = text[sign_len..sign_len + digits].trim_start_matches('0');
    let magnitude = if magnitude.is_empty() { "0" } else { magnitude };
    if negative && magnitude != "0" {
        return invalid(format!("{{value_negative,-{magnitude}}}"));
    }
    let too_large = magnitude.len() > MAX_EXPIRATION_MS.len()
        || (magnitude.len() == MAX_EXPIRATION_MS.len() && magnitude > MAX_EXPIRATION_MS);
    if too_large {
        let flat = format!("{{value_too_large,{magnitude}}}");
        // Erlang's ~p breaks a term that would pass column 80 after the
        // first element, indenting to the column after the brace.
        if prefix.chars().count() + flat.len() > 80 {
            let indent = " ".repeat(prefix.chars().count() + 1);
            return invalid(format!("{{value_too_large,\n{indent}{magnitude}}}"));
        }
        return invalid(flat);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(expiration: &str) -> String {
        check_expiration(&ShortStr::from(expiration)).unwrap_err().text
    }

    #[test]
    fn expirations_are_checked_as_erlang_reads_an_integer() {
        for ok in ["0", "-0", "+5", "0010", "315360000000"] {
            assert!(check_expiration(&ShortStr::from(ok)).is_ok(), "{ok}");
        }
        assert_eq!(
            refusal("soon"),
            "PRECONDITION_FAILED - invalid expiration 'soon': no_integer"
        );
        assert_eq!(
            refusal("10s"),
            "PRECONDITION_FAILED - invalid expiration '10s': {leftover_string,\"s\"}"
        );
        assert_eq!(
            refusal("-5"),
            "PRECONDITION_FAILED - invalid expiration '-5': {value_negative,-5}"
        );
        assert_eq!(
            refusal("315360000001"),
            "PRECONDITION_FAILED - invalid expiration '315360000001': {value_too_large,315360000001}"
        );
    }
}
