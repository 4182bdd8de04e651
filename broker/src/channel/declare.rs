//! Declarations: exchange.declare/delete/bind/unbind and
//! queue.declare/bind/unbind/purge/delete, checked as rabbit_channel does.

use warren_protocol::*;

use super::{direct_reply, Channel, ConnCtx};
use crate::access::{Operation, ResourceKind};
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::{unknown_exchange_type, Destination, ExchangeKind, ExchangeSettings};
use crate::names;
use crate::queue::QueueSettings;
use crate::replicated_topology;

fn default_exchange_refused() -> AmqpError {
    AmqpError::access_refused("operation not permitted on the default exchange")
}

impl Channel {
    pub(super) fn exchange_declare(&mut self, ctx: &mut ConnCtx, m: ExchangeDeclare) -> AmqpResult<()> {
        if m.passive {
            if m.exchange.is_empty() {
                return Err(default_exchange_refused());
            }
            ctx.vhost.exchange_or_404(&m.exchange)?;
        } else {
            let Some(kind) = ExchangeKind::parse(&m.kind) else {
                return Err(AmqpError::command_invalid(unknown_exchange_type(&m.kind)));
            };
            ctx.grant
                .check(Operation::Configure, ResourceKind::Exchange, &m.exchange)?;
            if let Some(alternate) = m.arguments.get("alternate-exchange").and_then(|v| v.as_str()) {
                ctx.grant.check(Operation::Read, ResourceKind::Exchange, &m.exchange)?;
                ctx.grant.check(Operation::Write, ResourceKind::Exchange, alternate)?;
            }
            let settings = ExchangeSettings {
                kind,
                durable: m.durable,
                auto_delete: m.auto_delete,
                internal: m.internal,
                arguments: m.arguments,
            };
            replicated_topology::declare_exchange(&ctx.broker, &ctx.vhost, &m.exchange, settings)?;
        }
        if !m.nowait {
            ctx.send(self.id, ExchangeDeclareOk {});
        }
        Ok(())
    }

    pub(super) fn exchange_delete(&mut self, ctx: &mut ConnCtx, m: ExchangeDelete) -> AmqpResult<()> {
        if m.exchange.is_empty() {
            return Err(default_exchange_refused());
        }
        ctx.grant
            .check(Operation::Configure, ResourceKind::Exchange, &m.exchange)?;
        replicated_topology::delete_exchange(&ctx.broker, &ctx.vhost, &m.exchange, m.if_unused)?;
        if !m.nowait {
            ctx.send(self.id, ExchangeDeleteOk {});
        }
        Ok(())
    }

    /// Checks an exchange-to-exchange binding's ends and returns the destination.
    fn exchange_binding_ends(
        &self,
        ctx: &mut ConnCtx,
        source: &str,
        destination: &ShortStr,
        routing_key: &str,
    ) -> AmqpResult<Destination> {
        if source.is_empty() || destination.is_empty() {
            return Err(default_exchange_refused());
        }
        check_binding(ctx, source, ResourceKind::Exchange, destination, routing_key)?;
        ctx.vhost.exchange_or_404(source)?;
        ctx.vhost.exchange_or_404(destination)?;
        Ok(Destination::Exchange(destination.clone()))
    }

    pub(super) fn exchange_bind(&mut self, ctx: &mut ConnCtx, m: ExchangeBind) -> AmqpResult<()> {
        let destination = self.exchange_binding_ends(ctx, &m.source, &m.destination, &m.routing_key)?;
        let (key, args) = (m.routing_key, m.arguments);
        replicated_topology::bind(&ctx.broker, &ctx.vhost, &m.source, destination, key, args)?;
        if !m.nowait {
            ctx.send(self.id, ExchangeBindOk {});
        }
        Ok(())
    }

    pub(super) fn exchange_unbind(&mut self, ctx: &mut ConnCtx, m: ExchangeUnbind) -> AmqpResult<()> {
        if m.source.is_empty() || m.destination.is_empty() {
            return Err(default_exchange_refused());
        }
        check_binding(ctx, &m.source, ResourceKind::Exchange, &m.destination, &m.routing_key)?;
        let destination = Destination::Exchange(m.destination.clone());
        let (key, args) = (m.routing_key, m.arguments);
        replicated_topology::unbind(&ctx.broker, &ctx.vhost, &m.source, destination, key, args)?;
        if !m.nowait {
            ctx.send(self.id, ExchangeUnbindOk {});
        }
        Ok(())
    }

    pub(super) fn queue_declare(&mut self, ctx: &mut ConnCtx, m: QueueDeclare) -> AmqpResult<()> {
        if m.passive && direct_reply::is_reply_address(ctx, &m.queue) {
            if !m.nowait {
                let ok = QueueDeclareOk {
                    queue: m.queue,
                    message_count: 0,
                    consumer_count: 0,
                };
                ctx.send(self.id, ok);
            }
            return Ok(());
        }
        let queue = if m.passive {
            let name = self.queue_name(&m.queue)?;
            let queue = ctx.vhost.queue_or_404(&name)?;
            ctx.vhost.check_exclusive_access(&queue, ctx.conn_id)?;
            // A passive declare is a use too: RabbitMQ restarts the
            // queue's x-expires timer on it.
            queue.touch();
            queue
        } else {
            let name = if m.queue.is_empty() {
                names::queue_name()
            } else {
                if m.queue.starts_with("amq.") {
                    return Err(AmqpError::access_refused(format!(
                        "queue name '{}' contains reserved prefix 'amq.*'",
                        m.queue
                    )));
                }
                m.queue.clone()
            };
            ctx.grant.check(Operation::Configure, ResourceKind::Queue, &name)?;
            ctx.broker.check_queue_limit(&ctx.vhost, &name)?;
            if let Some(dlx) = m.arguments.get("x-dead-letter-exchange").and_then(|v| v.as_str()) {
                ctx.grant.check(Operation::Read, ResourceKind::Queue, &name)?;
                ctx.grant.check(Operation::Write, ResourceKind::Exchange, dlx)?;
            }
            let settings = QueueSettings {
                // An exclusive queue never outlives its connection, so it is
                // never durable, whatever was asked.
                durable: m.durable && !m.exclusive,
                exclusive_owner: m.exclusive.then_some(ctx.conn_id),
                auto_delete: m.auto_delete,
                arguments: m.arguments,
            };
            replicated_topology::declare_queue(&ctx.broker, &ctx.vhost, &name, settings)?
        };
        self.last_queue = Some(queue.name.clone());
        if !m.nowait {
            ctx.send(
                self.id,
                QueueDeclareOk {
                    queue: queue.name.clone(),
                    message_count: queue.message_count() as u32,
                    consumer_count: queue.consumer_count() as u32,
                },
            );
        }
        Ok(())
    }

    /// Resolves and checks the ends of a queue binding.
    fn queue_binding_ends(
        &self,
        ctx: &mut ConnCtx,
        exchange: &str,
        queue: &ShortStr,
        routing_key: &str,
    ) -> AmqpResult<Destination> {
        if exchange.is_empty() {
            return Err(default_exchange_refused());
        }
        let name = self.queue_name(queue)?;
        check_binding(ctx, exchange, ResourceKind::Queue, &name, routing_key)?;
        ctx.vhost.exchange_or_404(exchange)?;
        let queue = ctx.vhost.queue_or_404(&name)?;
        ctx.vhost.check_exclusive_access(&queue, ctx.conn_id)?;
        Ok(Destination::Queue(queue))
    }

    pub(super) fn queue_bind(&mut self, ctx: &mut ConnCtx, m: QueueBind) -> AmqpResult<()> {
        let destination = self.queue_binding_ends(ctx, &m.exchange, &m.queue, &m.routing_key)?;
        let (key, args) = (m.routing_key, m.arguments);
        replicated_topology::bind(&ctx.broker, &ctx.vhost, &m.exchange, destination, key, args)?;
        if !m.nowait {
            ctx.send(self.id, QueueBindOk {});
        }
        Ok(())
    }

    pub(super) fn queue_unbind(&mut self, ctx: &mut ConnCtx, m: QueueUnbind) -> AmqpResult<()> {
        if m.exchange.is_empty() {
            return Err(default_exchange_refused());
        }
        let name = self.queue_name(&m.queue)?;
        check_binding(ctx, &m.exchange, ResourceKind::Queue, &name, &m.routing_key)?;
        let Some(queue) = ctx.vhost.queue(&name) else {
            ctx.send(self.id, QueueUnbindOk {});
            return Ok(());
        };
        ctx.vhost.check_exclusive_access(&queue, ctx.conn_id)?;
        let destination = Destination::Queue(queue);
        let (key, args) = (m.routing_key, m.arguments);
        replicated_topology::unbind(&ctx.broker, &ctx.vhost, &m.exchange, destination, key, args)?;
        ctx.send(self.id, QueueUnbindOk {});
        Ok(())
    }

    pub(super) fn queue_purge(&mut self, ctx: &mut ConnCtx, m: QueuePurge) -> AmqpResult<()> {
        let queue = self.usable_queue(ctx, &m.queue)?;
        if queue.is_stream() {
            return Err(queue.not_for_streams("queue.purge"));
        }
        let count = queue.purge();
        if !m.nowait {
            ctx.send(
                self.id,
                QueuePurgeOk {
                    message_count: count as u32,
                },
            );
        }
        Ok(())
    }

    pub(super) fn queue_delete(&mut self, ctx: &mut ConnCtx, m: QueueDelete) -> AmqpResult<()> {
        let name = self.queue_name(&m.queue)?;
        ctx.grant.check(Operation::Configure, ResourceKind::Queue, &name)?;
        let count = match ctx.vhost.queue(&name) {
            // Deleting a queue that does not exist succeeds, as in RabbitMQ.
            None => 0,
            Some(queue) => {
                ctx.vhost.check_exclusive_access(&queue, ctx.conn_id)?;
                let what = format!("queue '{}' in vhost '{}'", queue.name, ctx.vhost.name);
                if m.if_unused && queue.consumer_count() > 0 {
                    return Err(AmqpError::precondition_failed(format!("{what} in use")));
                }
                if m.if_empty && queue.message_count() > 0 {
                    return Err(AmqpError::precondition_failed(format!("{what} not empty")));
                }
                replicated_topology::delete_queue(&ctx.broker, &ctx.vhost, &queue)?
            }
        };
        if !m.nowait {
            ctx.send(
                self.id,
                QueueDeleteOk {
                    message_count: count as u32,
                },
            );
        }
        Ok(())
    }
}

/// A binding (or unbinding) needs write on its destination and read on
/// its source, and, from a topic exchange, the topic read permission on its
/// routing key (rabbit_channel's `binding_action`).
fn check_binding(
    ctx: &mut ConnCtx,
    source: &str,
    destination_kind: ResourceKind,
    destination: &str,
    routing_key: &str,
) -> AmqpResult<()> {
    ctx.grant.check(Operation::Write, destination_kind, destination)?;
    ctx.grant.check(Operation::Read, ResourceKind::Exchange, source)?;
    if ctx
        .vhost
        .exchange(source)
        .is_some_and(|x| x.kind() == ExchangeKind::Topic)
    {
        ctx.grant.check_topic(Operation::Read, source, routing_key)?;
    }
    Ok(())
}
