//! A channel: the unit of work inside a connection, following
//! `rabbit_channel.erl`'s semantics.
//!
//! The connection task owns its channels and calls into them one frame at a
//! time, so channel state needs no locks. Each concern lives in its own
//! file: content assembly, publishing and confirms, consuming and
//! deliveries, acknowledgements, declarations, transactions.

mod ack;
mod consume;
mod content;
mod declare;
mod direct_reply;
mod publish;
mod sources;
mod tx;

use std::collections::VecDeque;
use std::sync::Arc;

use foldhash::HashMap;
use warren_protocol::*;

use crate::access::{Grant, Operation, ResourceKind};
use crate::broker::Broker;
use crate::client_capabilities::ClientCapabilities;
use crate::connections::{ChannelInfo, ConnectionInfo};
use crate::error::{AmqpError, AmqpResult};
use crate::ids::{ConnectionId, ConnectionName};
use crate::outbound::ConnectionHandle;
use crate::queue::{Credit, DeliverySink, Queue, ReporterId};
use crate::vhost::VHost;

pub(crate) use ack::Unacked;
use consume::ChannelConsumer;
use content::PendingContent;
pub(crate) use content::UnfinishedBytes;
use direct_reply::ReplyConsumer;
use publish::ConfirmState;
use sources::Sources;
use tx::TxState;

/// What channels share from their connection.
pub(crate) struct ConnCtx {
    pub broker: Arc<Broker>,
    pub vhost: Arc<VHost>,
    pub conn_id: ConnectionId,
    pub handle: ConnectionHandle,
    /// The same handle, as its consumers' delivery sink.
    pub sink: Arc<dyn DeliverySink>,
    pub out: WriteBuffer,
    pub frame_max: u32,
    pub caps: ClientCapabilities,
    pub user: String,
    /// What the user may do here (permission checks).
    pub grant: Grant,
    /// This connection in the broker's registry.
    pub info: Arc<ConnectionInfo>,
    /// Reused for routing so publishing allocates no vector per message.
    pub route_scratch: Vec<Arc<Queue>>,
    /// Channels with publisher confirms waiting to be sent.
    pub confirms_pending: Vec<u16>,
    /// Channels with confirms waiting for the store to sync or for
    /// replicated queues to commit.
    pub sync_waiting: Vec<u16>,
    /// Woken when a replicated queue settles a ticket a confirm waits for.
    pub replicated: Arc<tokio::sync::Notify>,
    /// Set once the connection publishes; the disk alarm blocks only these.
    pub has_published: bool,
    /// The time, read once per batch of work rather than per message.
    pub now: std::time::Instant,
    /// The connection's name (`peer -> local`), for log lines.
    pub name: ConnectionName,
    /// Body bytes its channels' unfinished messages announce, and how many
    /// they may (`content.rs`).
    pub unfinished: UnfinishedBytes,
    pub unfinished_limit: u64,
    /// Consumers of channels released (closed) since the connection last
    /// looked: detached only once what its inbox held for them went back,
    /// so that with a single active consumer the next in line starts from
    /// the first message the leaving one did not ack ([`ConnCtx::detach_leaving`]).
    pub leaving: Vec<ChannelConsumer>,
}

impl ConnCtx {
    /// Detaches the consumers of released channels (auto-deleting a queue
    /// whose last consumer went). The connection calls it once the
    /// deliveries waiting for them in its inbox went back to their queues.
    pub(crate) fn detach_leaving(&mut self) {
        for leaving in std::mem::take(&mut self.leaving) {
            Channel::detach(self, &leaving);
        }
    }

    pub(crate) fn send(&mut self, channel: u16, method: impl Into<Method>) {
        encode_method(self.out.buf(), channel, &method.into());
    }
}

pub(crate) struct Channel {
    pub id: u16,
    /// Set after the server sent channel.close; only close-ok is awaited.
    pub closing: bool,
    content: Option<PendingContent>,
    consumers: HashMap<ShortStr, ChannelConsumer>,
    unacked: VecDeque<Unacked>,
    /// The queues and consumers `unacked` came from.
    sources: Sources,
    next_delivery_tag: u64,
    /// basic.qos global=false: the window given to consumers created next.
    consumer_prefetch: u32,
    /// basic.qos global=true: one window shared by the channel's consumers.
    channel_credit: Arc<Credit>,
    confirm: Option<ConfirmState>,
    tx: Option<TxState>,
    /// The queue an empty queue name refers to (the last one declared).
    last_queue: Option<ShortStr>,
    /// The consumer of `amq.rabbitmq.reply-to`, if any.
    reply_consumer: Option<ReplyConsumer>,
    /// What the management API shows of it.
    pub info: Arc<ChannelInfo>,
    /// Names this channel's reports of its oldest deliveries to queues.
    reporter: ReporterId,
    /// The queues it has reported an oldest unacknowledged delivery to.
    reported: Vec<Arc<Queue>>,
}

impl Channel {
    pub(crate) fn new(id: u16) -> Channel {
        Channel {
            id,
            closing: false,
            content: None,
            consumers: HashMap::default(),
            unacked: VecDeque::new(),
            sources: Sources::default(),
            next_delivery_tag: 1,
            consumer_prefetch: 0,
            channel_credit: Arc::new(Credit::new(0)),
            confirm: None,
            tx: None,
            last_queue: None,
            reply_consumer: None,
            info: Arc::new(ChannelInfo::new(id)),
            reporter: ReporterId::next(),
            reported: Vec::new(),
        }
    }

    /// Handles one frame for this open channel.
    pub(crate) fn handle_frame(&mut self, ctx: &mut ConnCtx, frame: Frame) -> AmqpResult<()> {
        match frame {
            Frame::Method(_, method) => {
                if let Some(pending) = &self.content {
                    return Err(AmqpError::unexpected_frame(pending.expectation()));
                }
                let ids = method.ids();
                // basic.publish changes none of the figures (and is the
                // one method on the hot path).
                let publish = matches!(method, Method::BasicPublish(_));
                let handled = self.handle_method(ctx, method).map_err(|e| e.on_method(ids));
                if !publish {
                    self.note_figures();
                }
                handled
            }
            Frame::Header(_, header) => self.content_header(ctx, header),
            Frame::Body(_, body) => self.content_body(ctx, body),
            Frame::Heartbeat(_) => Ok(()),
        }
    }

    fn handle_method(&mut self, ctx: &mut ConnCtx, method: Method) -> AmqpResult<()> {
        match method {
            Method::ChannelOpen(_) => Err(AmqpError::channel_error("second 'channel.open' seen")),
            Method::ChannelFlow(m) => {
                if !m.active {
                    return Err(AmqpError::not_implemented("active=false"));
                }
                ctx.send(self.id, ChannelFlowOk { active: true });
                Ok(())
            }
            Method::ChannelFlowOk(_) => Ok(()),

            Method::ExchangeDeclare(m) => self.exchange_declare(ctx, m),
            Method::ExchangeDelete(m) => self.exchange_delete(ctx, m),
            Method::ExchangeBind(m) => self.exchange_bind(ctx, m),
            Method::ExchangeUnbind(m) => self.exchange_unbind(ctx, m),
            Method::QueueDeclare(m) => self.queue_declare(ctx, m),
            Method::QueueBind(m) => self.queue_bind(ctx, m),
            Method::QueueUnbind(m) => self.queue_unbind(ctx, m),
            Method::QueuePurge(m) => self.queue_purge(ctx, m),
            Method::QueueDelete(m) => self.queue_delete(ctx, m),

            Method::BasicQos(m) => self.basic_qos(ctx, m),
            Method::BasicConsume(m) => self.basic_consume(ctx, m),
            Method::BasicCancel(m) => self.basic_cancel(ctx, m),
            Method::BasicPublish(m) => self.basic_publish(ctx, m),
            Method::BasicGet(m) => self.basic_get(ctx, m),
            Method::BasicAck(m) => self.basic_ack(ctx, m.delivery_tag, m.multiple),
            Method::BasicReject(m) => self.basic_reject(ctx, m.delivery_tag, false, m.requeue),
            Method::BasicNack(m) => self.basic_reject(ctx, m.delivery_tag, m.multiple, m.requeue),
            Method::BasicRecover(m) => {
                self.basic_recover(ctx, m.requeue)?;
                ctx.send(self.id, BasicRecoverOk {});
                Ok(())
            }
            Method::BasicRecoverAsync(m) => self.basic_recover(ctx, m.requeue),

            Method::ConfirmSelect(m) => self.confirm_select(ctx, m),
            Method::TxSelect(_) => self.tx_select(ctx),
            Method::TxCommit(_) => self.tx_commit(ctx),
            Method::TxRollback(_) => self.tx_rollback(ctx),

            // Server-side methods and connection methods on a channel.
            _ => Err(AmqpError::command_invalid("unimplemented method")),
        }
    }

    /// Releases what the channel holds: consumers are cancelled and unacked
    /// messages go back to their queues. Called when the channel closes for
    /// any reason, including its connection closing.
    pub(crate) fn release(&mut self, ctx: &mut ConnCtx) {
        self.content = None;
        if let Some(tx) = self.tx.take() {
            // Acks not committed never happened (as in RabbitMQ): those
            // deliveries go back to their queues with the other unacked.
            for (deliveries, _) in tx.acks {
                self.restore_unacked(deliveries);
            }
        }
        self.release_replies(ctx);
        let consumers: Vec<ChannelConsumer> = self.consumers.drain().map(|(_, c)| c).collect();
        // Unacked messages go back before the consumers leave (and the
        // connection detaches them once its inbox's deliveries for them
        // went back too): with a single active consumer, the next in line
        // then starts from them, in order, not from the messages after
        // them, as in RabbitMQ. Meanwhile the leaving consumers take nothing.
        for consumer in &consumers {
            consumer
                .consumer
                .active
                .store(false, std::sync::atomic::Ordering::Release);
        }
        self.requeue_all_unacked();
        ctx.leaving.extend(consumers);
        self.report_oldest(&[]);
    }

    /// Resolves the empty queue name to the channel's last declared queue.
    fn queue_name(&self, name: &ShortStr) -> AmqpResult<ShortStr> {
        if !name.is_empty() {
            return Ok(name.clone());
        }
        self.last_queue
            .clone()
            .ok_or_else(|| AmqpError::not_found("no previously declared queue"))
    }

    /// Updates what the management API shows after a method.
    fn note_figures(&self) {
        ChannelInfo::set(&self.info.unacked, self.unacked.len());
        ChannelInfo::set(&self.info.consumers, self.consumers.len());
        self.info
            .confirm
            .store(self.confirm.is_some(), std::sync::atomic::Ordering::Relaxed);
        self.info
            .transactional
            .store(self.tx.is_some(), std::sync::atomic::Ordering::Relaxed);
        ChannelInfo::set(&self.info.prefetch, self.consumer_prefetch as usize);
        ChannelInfo::set(&self.info.global_prefetch, self.channel_credit.limit() as usize);
    }

    /// Looks up a queue this connection may read from (consume, get,
    /// purge): read permission first, as RabbitMQ checks it.
    fn usable_queue(&self, ctx: &mut ConnCtx, name: &ShortStr) -> AmqpResult<Arc<Queue>> {
        let name = self.queue_name(name)?;
        ctx.grant.check(Operation::Read, ResourceKind::Queue, &name)?;
        let queue = ctx.vhost.queue_or_404(&name)?;
        ctx.vhost.check_exclusive_access(&queue, ctx.conn_id)?;
        Ok(queue)
    }
}
