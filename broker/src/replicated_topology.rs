//! Topology changes that, in a cluster, go through the metadata log so that
//! every node makes them: exchanges, quorum queues (their messages in their
//! own Raft groups), classic queues (which live on the node that declared
//! them, their home, and are known to the others, which forward to them),
//! and bindings between exchanges or to those queues. Exclusive queues,
//! streams and their bindings stay on the node that declared them.
//! Channels and the admin interface both come here; on a single node
//! nothing goes through a log.
//!
//! Each function makes the whole change: through the log when it
//! replicates (this node applies it with the others), here at once
//! otherwise.

use std::sync::Arc;

use warren_protocol::{FieldTable, ShortStr};

use crate::broker::Broker;
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::{Destination, ExchangeSettings};
use crate::queue::{Queue, QueueSettings, QueueType};
use crate::replication::MetadataChange;
use crate::vhost::definitions::encode_table;
use crate::vhost::VHost;

/// Declares a queue. A new quorum queue in a cluster is declared on every
/// node through the metadata log first (checked before, so every node
/// accepts it); the declaration here then finds it and checks it as any
/// redeclaration.
pub(crate) fn declare_queue(
    broker: &Broker,
    vhost: &Arc<VHost>,
    name: &ShortStr,
    settings: QueueSettings,
) -> AmqpResult<Arc<Queue>> {
    replicate_queue_declaration(broker, vhost, name, &settings)?;
    vhost.declare_queue(name, settings)
}

fn replicate_queue_declaration(
    broker: &Broker,
    vhost: &VHost,
    name: &ShortStr,
    settings: &QueueSettings,
) -> AmqpResult<()> {
    let Some(link) = broker
        .config
        .cluster_link
        .as_ref()
        .filter(|_| vhost.queue(name).is_none())
    else {
        return Ok(());
    };
    let what = format!("queue '{name}' in vhost '{}'", vhost.name);
    let change = match settings.parse_arguments(&what)?.queue_type {
        QueueType::Quorum => MetadataChange::DeclareQueue {
            vhost: vhost.name.to_string(),
            name: name.to_string(),
            arguments: encode_table(&settings.arguments),
        },
        // A classic queue lives here, and every node knows it (as in
        // RabbitMQ); an exclusive one is its connection's alone.
        QueueType::Classic if settings.exclusive_owner.is_none() => MetadataChange::DeclareHomedQueue {
            vhost: vhost.name.to_string(),
            name: name.to_string(),
            home: link.this_node().0,
            durable: settings.durable,
            auto_delete: settings.auto_delete,
            arguments: encode_table(&settings.arguments),
        },
        _ => return Ok(()),
    };
    if !settings.durable {
        // Ordered after the forgetting of this node's earlier lives' ones.
        let forgotten = crate::blocking::wait(broker.earlier_lives.forgotten());
        if let Some(Err(e)) = forgotten {
            return Err(AmqpError::internal_error(format!(
                "the cluster could not make the change: {e}"
            )));
        }
    }
    through_metadata_log(broker, change)
}

/// Deletes a queue: one every node knows (a quorum queue, a classic queue
/// with a home) on every node, through the metadata log; any other here.
/// Returns how many messages it held.
pub(crate) fn delete_queue(broker: &Broker, vhost: &VHost, queue: &Arc<Queue>) -> AmqpResult<u64> {
    if broker.config.cluster_link.is_none() || !queue.declared_everywhere() {
        return Ok(vhost.delete_queue(queue));
    }
    let count = queue.message_count();
    let change = MetadataChange::DeleteQueue {
        vhost: vhost.name.to_string(),
        name: queue.name.to_string(),
    };
    through_metadata_log(broker, change)?;
    Ok(count)
}

/// Declares an exchange: a new one in a cluster on every node first, then
/// here, where it is found and checked as any redeclaration.
pub(crate) fn declare_exchange(
    broker: &Broker,
    vhost: &VHost,
    name: &ShortStr,
    settings: ExchangeSettings,
) -> AmqpResult<()> {
    replicate_exchange_declaration(broker, vhost, name, &settings)?;
    vhost.declare_exchange(name, settings).map(|_| ())
}

fn replicate_exchange_declaration(
    broker: &Broker,
    vhost: &VHost,
    name: &ShortStr,
    settings: &ExchangeSettings,
) -> AmqpResult<()> {
    if broker.config.cluster_link.is_none() || name.is_empty() || vhost.exchange(name).is_some() {
        return Ok(());
    }
    let change = MetadataChange::DeclareExchange {
        vhost: vhost.name.to_string(),
        name: name.to_string(),
        kind: settings.kind.as_str().to_string(),
        durable: settings.durable,
        auto_delete: settings.auto_delete,
        internal: settings.internal,
        arguments: encode_table(&settings.arguments),
    };
    through_metadata_log(broker, change)
}

/// Deletes an exchange: on every node in a cluster; here otherwise, or
/// where the local delete refuses it with RabbitMQ's text (the system
/// exchanges, `if_unused` with bindings, a missing exchange).
pub(crate) fn delete_exchange(broker: &Broker, vhost: &VHost, name: &str, if_unused: bool) -> AmqpResult<()> {
    let replicates = broker.config.cluster_link.is_some()
        && !name.is_empty()
        && !name.starts_with("amq.")
        && vhost.exchange(name).is_some_and(|x| !(if_unused && x.has_bindings()));
    if !replicates {
        return vhost.delete_exchange(name, if_unused);
    }
    let change = MetadataChange::DeleteExchange {
        vhost: vhost.name.to_string(),
        name: name.to_string(),
    };
    through_metadata_log(broker, change)
}

/// Binds: on every node when the destination is an exchange or a quorum
/// queue in a cluster, here otherwise.
pub(crate) fn bind(
    broker: &Broker,
    vhost: &VHost,
    source: &str,
    destination: Destination,
    routing_key: ShortStr,
    arguments: FieldTable,
) -> AmqpResult<()> {
    if !replicate_binding(broker, vhost, true, source, &destination, &routing_key, &arguments)? {
        vhost.bind(source, destination, routing_key, arguments)?;
    }
    Ok(())
}

/// Unbinds, as `bind` binds.
pub(crate) fn unbind(
    broker: &Broker,
    vhost: &VHost,
    source: &str,
    destination: Destination,
    routing_key: ShortStr,
    arguments: FieldTable,
) -> AmqpResult<()> {
    if !replicate_binding(broker, vhost, false, source, &destination, &routing_key, &arguments)? {
        vhost.unbind(source, destination, routing_key, arguments);
    }
    Ok(())
}

/// Proposes a binding change when it replicates; false when it does not.
fn replicate_binding(
    broker: &Broker,
    vhost: &VHost,
    bound: bool,
    source: &str,
    destination: &Destination,
    routing_key: &ShortStr,
    arguments: &FieldTable,
) -> AmqpResult<bool> {
    if broker.config.cluster_link.is_none() {
        return Ok(false);
    }
    let (to_queue, name) = match destination {
        Destination::Queue(queue) if queue.declared_everywhere() => (true, queue.name.to_string()),
        Destination::Queue(_) => return Ok(false),
        Destination::Exchange(name) => (false, name.to_string()),
    };
    let change = MetadataChange::Binding {
        bound,
        vhost: vhost.name.to_string(),
        source: source.to_string(),
        to_queue,
        destination: name,
        routing_key: routing_key.to_string(),
        arguments: encode_table(arguments),
    };
    through_metadata_log(broker, change).map(|()| true)
}

/// Proposes a change to the cluster and waits until this node applied it.
fn through_metadata_log(broker: &Broker, change: MetadataChange) -> AmqpResult<()> {
    let Some(link) = broker.config.cluster_link.clone() else {
        return Ok(());
    };
    match crate::blocking::wait(link.propose(change)) {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(AmqpError::internal_error(format!(
            "the cluster could not make the change: {e}"
        ))),
        None => Err(AmqpError::internal_error(
            "a cluster member needs the multi-threaded runtime",
        )),
    }
}
