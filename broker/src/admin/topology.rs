//! Queues, exchanges and bindings through the admin interface: listed,
//! declared and deleted with the same checks as their AMQP methods.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use warren_protocol::{FieldTable, ShortStr};

use super::{Admin, AdminError, AdminResult, BindingView, DestinationKind, ExchangeView, QueueView};
use crate::exchange::{unknown_exchange_type, Binding, Destination, Exchange, ExchangeKind, ExchangeSettings};
use crate::json::{json_to_table, sorted_by_key, table_to_json};
use crate::queue::{effective_definition, Queue, QueueSettings};
use crate::replicated_topology;
use crate::vhost::VHost;

fn queue_view(queue: &Queue) -> QueueView {
    let stats = queue.stats();
    let lag = queue.lag();
    let applied = queue.applied();
    QueueView {
        vhost: queue.vhost_name.to_string(),
        name: queue.name.to_string(),
        queue_type: queue.args().queue_type.as_str(),
        durable: queue.settings.durable,
        auto_delete: queue.settings.auto_delete,
        exclusive: queue.settings.exclusive_owner.is_some(),
        arguments: sorted_by_key(table_to_json(&queue.settings.arguments)),
        policy: applied.policy.as_ref().map(|p| p.name.clone()),
        operator_policy: applied.operator_policy.as_ref().map(|p| p.name.clone()),
        effective_policy_definition: effective_definition(&applied),
        consumers: stats.consumers,
        messages_ready: stats.ready,
        messages_ready_bytes: stats.ready_bytes,
        messages_paged_out: stats.paged_out,
        messages_paged_out_bytes: stats.paged_out_bytes,
        messages_unacknowledged: stats.unacked,
        messages_unacknowledged_bytes: stats.unacked_bytes,
        published: stats.published,
        delivered: stats.delivered,
        delivered_no_ack: stats.delivered_no_ack,
        got: stats.got,
        got_no_ack: stats.got_no_ack,
        get_empty: stats.get_empty,
        redelivered: stats.redelivered,
        acked: stats.acked,
        oldest_ready_age: lag.oldest_ready,
        oldest_unacked_age: lag.oldest_unacked,
        head_message_timestamp: lag.head_timestamp,
        replicas: queue.replicas(),
        home: queue.home.as_ref().map(|home| home.node().to_string()),
    }
}

fn exchange_view(vhost: &str, exchange: &Exchange) -> ExchangeView {
    ExchangeView {
        vhost: vhost.to_string(),
        name: exchange.name.to_string(),
        kind: exchange.kind().as_str(),
        durable: exchange.settings.durable,
        auto_delete: exchange.settings.auto_delete,
        internal: exchange.settings.internal,
        arguments: sorted_by_key(table_to_json(&exchange.settings.arguments)),
        policy: exchange.policy().map(|p| p.name.clone()),
    }
}

/// RabbitMQ's `properties_key`: "~" for an empty key without arguments;
/// the key, percent-encoded; and a digest of the arguments after a "~".
pub(crate) fn properties_key(routing_key: &str, arguments: &FieldTable) -> String {
    let key = if routing_key.is_empty() && arguments.is_empty() {
        return "~".to_string();
    } else {
        percent_encode(routing_key)
    };
    if arguments.is_empty() {
        return key;
    }
    let mut encoded = bytes::BytesMut::new();
    arguments.encode(&mut encoded);
    let digest = Sha256::digest(&encoded);
    format!("{key}~{}", URL_SAFE_NO_PAD.encode(&digest[..16]))
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(text: &str) -> String {
    /// What RabbitMQ leaves as it is in a properties key (`~` is encoded).
    const KEPT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.');
    percent_encoding::utf8_percent_encode(text, KEPT).to_string()
}

fn binding_view(vhost: &str, source: &str, binding: &Binding) -> BindingView {
    let destination_kind = match binding.destination {
        Destination::Queue(_) => DestinationKind::Queue,
        Destination::Exchange(_) => DestinationKind::Exchange,
    };
    BindingView {
        vhost: vhost.to_string(),
        source: source.to_string(),
        destination: binding.destination.name().to_string(),
        destination_kind,
        routing_key: binding.routing_key.to_string(),
        arguments: table_to_json(&binding.arguments),
        properties_key: properties_key(&binding.routing_key, &binding.arguments),
    }
}

fn arguments(object: &Map<String, Value>) -> AdminResult<FieldTable> {
    json_to_table(object).map_err(AdminError::BadRequest)
}

impl Admin {
    pub(super) fn vhosts_or_one(&self, vhost: Option<&str>) -> AdminResult<Vec<Arc<VHost>>> {
        match vhost {
            Some(name) => Ok(vec![self.vhost(name)?]),
            None => {
                let mut names = self.broker.vhost_names();
                names.sort();
                Ok(names.iter().filter_map(|n| self.broker.vhost(n)).collect())
            }
        }
    }

    /// Queues of one vhost, or of all, sorted by vhost and name.
    pub fn queues(&self, vhost: Option<&str>) -> AdminResult<Vec<QueueView>> {
        let mut all = Vec::new();
        for v in self.vhosts_or_one(vhost)? {
            let mut queues: Vec<QueueView> = v.queues().iter().map(|q| queue_view(q)).collect();
            queues.sort_by(|a, b| a.name.cmp(&b.name));
            all.extend(queues);
        }
        Ok(all)
    }

    pub fn queue(&self, vhost: &str, name: &str) -> AdminResult<QueueView> {
        let queue = self.vhost(vhost)?.queue(name).ok_or(AdminError::NotFound)?;
        Ok(queue_view(&queue))
    }

    /// Declares a queue as queue.declare would (not exclusive); an
    /// existing one must be equivalent. True if it is new.
    pub fn declare_queue(
        &self,
        vhost: &str,
        name: &str,
        durable: bool,
        auto_delete: bool,
        args: &Map<String, Value>,
    ) -> AdminResult<bool> {
        let v = self.vhost(vhost)?;
        if name.is_empty() || name.len() > 255 {
            return Err(AdminError::BadRequest("queue name must be 1 to 255 bytes".into()));
        }
        if name.starts_with("amq.") {
            return Err(AdminError::Refused {
                code: warren_protocol::reply_code::ACCESS_REFUSED,
                reason: format!("queue name '{name}' contains reserved prefix 'amq.*'"),
            });
        }
        let existed = v.queue(name).is_some();
        self.broker.check_queue_limit(&v, name)?;
        let settings = QueueSettings {
            durable,
            exclusive_owner: None,
            auto_delete,
            arguments: arguments(args)?,
        };
        replicated_topology::declare_queue(&self.broker, &v, &ShortStr::from(name), settings)?;
        Ok(!existed)
    }

    /// Deletes a queue; `if_empty` and `if_unused` as queue.delete's.
    pub fn delete_queue(&self, vhost: &str, name: &str, if_empty: bool, if_unused: bool) -> AdminResult<()> {
        let v = self.vhost(vhost)?;
        let queue = v.queue(name).ok_or(AdminError::NotFound)?;
        let what = format!("queue '{name}' in vhost '{vhost}'");
        if if_unused && queue.consumer_count() > 0 {
            return Err(AdminError::BadRequest(format!("{what} in use")));
        }
        if if_empty && queue.message_count() > 0 {
            return Err(AdminError::BadRequest(format!("{what} not empty")));
        }
        replicated_topology::delete_queue(&self.broker, &v, &queue)?;
        Ok(())
    }

    /// Drops a queue's ready messages; returns how many.
    pub fn purge_queue(&self, vhost: &str, name: &str) -> AdminResult<u64> {
        let queue = self.vhost(vhost)?.queue(name).ok_or(AdminError::NotFound)?;
        Ok(queue.purge())
    }

    pub fn exchanges(&self, vhost: Option<&str>) -> AdminResult<Vec<ExchangeView>> {
        let mut all = Vec::new();
        for v in self.vhosts_or_one(vhost)? {
            let mut exchanges: Vec<ExchangeView> = v.exchanges().iter().map(|x| exchange_view(&v.name, x)).collect();
            exchanges.sort_by(|a, b| a.name.cmp(&b.name));
            all.extend(exchanges);
        }
        Ok(all)
    }

    pub fn exchange(&self, vhost: &str, name: &str) -> AdminResult<ExchangeView> {
        let v = self.vhost(vhost)?;
        let exchange = v.exchange(name).ok_or(AdminError::NotFound)?;
        Ok(exchange_view(vhost, &exchange))
    }

    /// Declares an exchange as exchange.declare would. True if it is new.
    #[allow(clippy::too_many_arguments)]
    pub fn declare_exchange(
        &self,
        vhost: &str,
        name: &str,
        kind: &str,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        args: &Map<String, Value>,
    ) -> AdminResult<bool> {
        let v = self.vhost(vhost)?;
        let kind = ExchangeKind::parse(kind).ok_or_else(|| AdminError::BadRequest(unknown_exchange_type(kind)))?;
        let existed = v.exchange(name).is_some();
        let settings = ExchangeSettings {
            kind,
            durable,
            auto_delete,
            internal,
            arguments: arguments(args)?,
        };
        replicated_topology::declare_exchange(&self.broker, &v, &ShortStr::from(name), settings)?;
        Ok(!existed)
    }

    pub fn delete_exchange(&self, vhost: &str, name: &str, if_unused: bool) -> AdminResult<()> {
        let v = self.vhost(vhost)?;
        if v.exchange(name).is_none() {
            return Err(AdminError::NotFound);
        }
        Ok(replicated_topology::delete_exchange(&self.broker, &v, name, if_unused)?)
    }

    /// Every binding of a vhost (or of all), the default exchange's
    /// implicit ones included, as RabbitMQ lists them.
    pub fn bindings(&self, vhost: Option<&str>) -> AdminResult<Vec<BindingView>> {
        let mut all = Vec::new();
        for v in self.vhosts_or_one(vhost)? {
            let mut queues = v.queues();
            queues.sort_by(|a, b| a.name.cmp(&b.name));
            for queue in &queues {
                all.push(BindingView {
                    vhost: v.name.to_string(),
                    source: String::new(),
                    destination: queue.name.to_string(),
                    destination_kind: DestinationKind::Queue,
                    routing_key: queue.name.to_string(),
                    arguments: Map::new(),
                    properties_key: properties_key(&queue.name, &FieldTable::new()),
                });
            }
            let mut exchanges = v.exchanges();
            exchanges.sort_by(|a, b| a.name.cmp(&b.name));
            for exchange in exchanges.iter().filter(|x| !x.name.is_empty()) {
                for binding in exchange.bindings() {
                    all.push(binding_view(&v.name, &exchange.name, &binding));
                }
            }
        }
        Ok(all)
    }

    /// Binds `source` to a queue or an exchange; returns the binding's
    /// properties key.
    pub fn bind(
        &self,
        vhost: &str,
        source: &str,
        kind: DestinationKind,
        destination: &str,
        routing_key: &str,
        args: &Map<String, Value>,
    ) -> AdminResult<String> {
        let v = self.vhost(vhost)?;
        if source.is_empty() {
            return Err(AdminError::Refused {
                code: warren_protocol::reply_code::ACCESS_REFUSED,
                reason: "operation not permitted on the default exchange".into(),
            });
        }
        v.exchange(source).ok_or(AdminError::NotFound)?;
        let destination = match kind {
            DestinationKind::Queue => Destination::Queue(v.queue(destination).ok_or(AdminError::NotFound)?),
            DestinationKind::Exchange => {
                v.exchange(destination).ok_or(AdminError::NotFound)?;
                Destination::Exchange(ShortStr::from(destination))
            }
        };
        let table = arguments(args)?;
        let key = properties_key(routing_key, &table);
        replicated_topology::bind(
            &self.broker,
            &v,
            source,
            destination,
            ShortStr::from(routing_key),
            table,
        )?;
        Ok(key)
    }

    /// The bindings between two ends.
    pub fn bindings_between(
        &self,
        vhost: &str,
        source: &str,
        kind: DestinationKind,
        destination: &str,
    ) -> AdminResult<Vec<BindingView>> {
        let v = self.vhost(vhost)?;
        v.exchange(source).ok_or(AdminError::NotFound)?;
        let exists = match kind {
            DestinationKind::Queue => v.queue(destination).is_some(),
            DestinationKind::Exchange => v.exchange(destination).is_some(),
        };
        if !exists {
            return Err(AdminError::NotFound);
        }
        Ok(self
            .bindings(Some(vhost))?
            .into_iter()
            .filter(|b| b.source == source && b.destination_kind == kind && b.destination == destination)
            .collect())
    }

    /// Removes the binding between two ends with this properties key.
    pub fn unbind(
        &self,
        vhost: &str,
        source: &str,
        kind: DestinationKind,
        destination: &str,
        properties_key: &str,
    ) -> AdminResult<()> {
        let v = self.vhost(vhost)?;
        let exchange = v.exchange(source).ok_or(AdminError::NotFound)?;
        let binding = exchange
            .bindings()
            .into_iter()
            .find(|b| {
                let view = binding_view(vhost, source, b);
                view.destination_kind == kind
                    && view.destination == destination
                    && view.properties_key == properties_key
            })
            .ok_or(AdminError::NotFound)?;
        let (key, args) = (binding.routing_key, binding.arguments);
        Ok(replicated_topology::unbind(
            &self.broker,
            &v,
            source,
            binding.destination,
            key,
            args,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_keys_as_rabbitmq_shapes_them() {
        assert_eq!(properties_key("", &FieldTable::new()), "~");
        assert_eq!(properties_key("a.b", &FieldTable::new()), "a.b");
        assert_eq!(properties_key("a b/c", &FieldTable::new()), "a%20b%2Fc");
        let mut args = FieldTable::new();
        args.insert("x-match", warren_protocol::FieldValue::LongStr("all".into()));
        let key = properties_key("k", &args);
        assert!(key.starts_with("k~") && key.len() > 3, "{key}");
    }
}
