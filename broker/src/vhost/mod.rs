//! A virtual host: its own exchanges, queues and bindings, apart from every
//! other vhost's. Declarations, deletions and binding changes are checked
//! here with RabbitMQ's rules and reply texts; routing follows exchange-to-
//! exchange bindings and alternate exchanges.

use std::sync::{Arc, Weak};

use dashmap::DashMap;
use warren_protocol::{BasicProperties, FieldTable, FieldValue, ShortStr};

use crate::alarm::MemoryPressure;
use crate::durability::Durability;
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::{Binding, Destination, Exchange, ExchangeKind, ExchangeSettings};
use crate::ids::ConnectionId;
use crate::message_stats::ChurnCounters;
use crate::policy::{Applied, Policies, Policy, Target};
use crate::queue::{type_name, Home, Identity, Queue, QueueArguments, QueueHost, QueueSettings};
use crate::replication::{ClusterLink, MetadataChange};

/// Queue arguments whose values must match on redeclaration (others are
/// ignored, as in RabbitMQ).
const EQUIVALENCE_CHECKED_QUEUE_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    "x-queue-master-locator",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
];

pub(crate) mod definitions;

pub(crate) struct VHost {
    pub name: Arc<str>,
    /// Where durable definitions go; None keeps everything in memory.
    durability: Option<Arc<Durability>>,
    /// When its non-durable queues page.
    memory_pressure: MemoryPressure,
    /// The broker's policies (those of this vhost apply here).
    policies: Arc<Policies>,
    /// Where queue churn is counted.
    churn: Arc<ChurnCounters>,
    /// The cluster, if this node is in one: its quorum queues replicate.
    cluster: Option<Arc<dyn ClusterLink>>,
    exchanges: DashMap<ShortStr, Arc<Exchange>>,
    queues: DashMap<ShortStr, Arc<Queue>>,
}

impl VHost {
    /// A vhost on its own: no store, no policies, no cluster (for
    /// benchmarks and tests of the queues and exchanges alone).
    pub(crate) fn standalone(name: &str) -> Arc<VHost> {
        VHost::without_store(name, None)
    }

    /// A vhost with no store and no policies, in `cluster` if given (for
    /// tests of queues that live on another node).
    pub(crate) fn without_store(name: &str, cluster: Option<Arc<dyn ClusterLink>>) -> Arc<VHost> {
        Arc::new(VHost::new(
            name,
            None,
            Default::default(),
            Arc::new(Policies::load(None, &[])),
            Default::default(),
            cluster,
        ))
    }

    pub(crate) fn new(
        name: &str,
        durability: Option<Arc<Durability>>,
        memory_pressure: MemoryPressure,
        policies: Arc<Policies>,
        churn: Arc<ChurnCounters>,
        cluster: Option<Arc<dyn ClusterLink>>,
    ) -> VHost {
        let vhost = VHost {
            name: name.into(),
            durability,
            memory_pressure,
            policies,
            churn,
            cluster,
            exchanges: DashMap::new(),
            queues: DashMap::new(),
        };
        // RabbitMQ's, with its firehose's internal exchange (Warren does
        // not trace; nothing is published to it, but clients and tools see
        // it in every vhost as they do in RabbitMQ's).
        let builtin = [
            ("", ExchangeKind::Direct, false),
            ("amq.direct", ExchangeKind::Direct, false),
            ("amq.fanout", ExchangeKind::Fanout, false),
            ("amq.topic", ExchangeKind::Topic, false),
            ("amq.headers", ExchangeKind::Headers, false),
            ("amq.match", ExchangeKind::Headers, false),
            ("amq.rabbitmq.trace", ExchangeKind::Topic, true),
        ];
        for (name, kind, internal) in builtin {
            let settings = ExchangeSettings {
                kind,
                durable: true,
                auto_delete: false,
                internal,
                arguments: FieldTable::new(),
            };
            vhost
                .exchanges
                .insert(ShortStr::from(name), Exchange::new(name.into(), settings));
        }
        vhost
    }

    // ---- exchanges -------------------------------------------------------

    pub(crate) fn exchange(&self, name: &str) -> Option<Arc<Exchange>> {
        self.exchanges.get(name).map(|e| e.clone())
    }

    pub(crate) fn exchange_or_404(&self, name: &str) -> AmqpResult<Arc<Exchange>> {
        self.exchange(name)
            .ok_or_else(|| AmqpError::no_such("exchange", name, &self.name))
    }

    /// exchange.declare (not passive). `kind` is already known to be valid.
    pub(crate) fn declare_exchange(&self, name: &ShortStr, settings: ExchangeSettings) -> AmqpResult<Arc<Exchange>> {
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        let existing = match self.exchanges.entry(name.clone()) {
            dashmap::mapref::entry::Entry::Occupied(e) => e.get().clone(),
            dashmap::mapref::entry::Entry::Vacant(slot) => {
                if name.starts_with("amq.") {
                    return Err(AmqpError::access_refused(format!(
                        "exchange name '{name}' contains reserved prefix 'amq.*'"
                    )));
                }
                if let Some(ae) = settings.arguments.get("alternate-exchange") {
                    if ae.as_str().is_none() {
                        return Err(AmqpError::precondition_failed(format!(
                            "invalid type '{}' for arg 'alternate-exchange' in exchange '{name}' in vhost '{}'",
                            type_name(ae),
                            self.name
                        )));
                    }
                }
                Exchange::validate_arguments(settings.kind, &settings.arguments)?;
                let exchange = Exchange::new(name.clone(), settings);
                exchange.apply_policy(self.policies.matching(&self.name, Target::Exchange, name).policy);
                self.persist_exchange(&exchange)?;
                slot.insert(exchange.clone());
                return Ok(exchange);
            }
        };
        self.check_exchange_equivalence(&existing, &settings)?;
        Ok(existing)
    }

    fn check_exchange_equivalence(&self, x: &Exchange, wanted: &ExchangeSettings) -> AmqpResult<()> {
        let what = format!("exchange '{}' in vhost '{}'", x.name, self.name);
        let current = &x.settings;
        if current.kind != wanted.kind {
            return Err(inequivalent("type", &what, wanted.kind.as_str(), current.kind.as_str()));
        }
        for (field, received, now) in [
            ("durable", wanted.durable, current.durable),
            ("auto_delete", wanted.auto_delete, current.auto_delete),
            ("internal", wanted.internal, current.internal),
        ] {
            if received != now {
                return Err(inequivalent(field, &what, received, now));
            }
        }
        check_args_equivalence(&current.arguments, &wanted.arguments, &["alternate-exchange"], &what)
    }

    /// exchange.delete. Deleting a missing exchange succeeds, as in RabbitMQ.
    pub(crate) fn delete_exchange(&self, name: &str, if_unused: bool) -> AmqpResult<()> {
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "deletion of system exchange '{name}' in vhost '{}' not allowed",
                self.name
            )));
        }
        let Some(exchange) = self.exchange(name) else {
            return Ok(());
        };
        if if_unused && exchange.has_bindings() {
            return Err(AmqpError::precondition_failed(format!(
                "exchange '{name}' in vhost '{}' in use",
                self.name
            )));
        }
        // Bindings that lead to it from other exchanges go too.
        let destination = Destination::Exchange(exchange.name.clone());
        self.unpersist_bindings_to(&destination);
        self.unpersist_exchange(&exchange);
        self.exchanges.remove(name);
        self.remove_bindings_to(&destination);
        Ok(())
    }

    /// Removes every binding that leads to `destination`, and auto-deletes
    /// exchanges left without bindings.
    fn remove_bindings_to(&self, destination: &Destination) {
        let mut emptied = Vec::new();
        for x in self.exchanges.iter() {
            if x.remove_destination(destination) > 0 && x.settings.auto_delete && !x.has_bindings() {
                emptied.push(x.name.clone());
            }
        }
        for name in emptied {
            let _ = self.delete_exchange(&name, false);
        }
    }

    /// queue.bind and exchange.bind.
    pub(crate) fn bind(
        &self,
        source: &str,
        destination: Destination,
        routing_key: ShortStr,
        arguments: FieldTable,
    ) -> AmqpResult<()> {
        let exchange = self.exchange_or_404(source)?;
        exchange.validate_binding(&routing_key, &arguments)?;
        let binding = Binding::new(destination, routing_key, arguments);
        self.persist_binding(source, &binding)?;
        exchange.bind(binding);
        Ok(())
    }

    /// queue.unbind and exchange.unbind. Unbinding what is not bound, or
    /// from or to something that does not exist, succeeds, as in RabbitMQ.
    pub(crate) fn unbind(&self, source: &str, destination: Destination, routing_key: ShortStr, arguments: FieldTable) {
        let Some(exchange) = self.exchange(source) else {
            return;
        };
        let binding = Binding::new(destination, routing_key, arguments);
        self.unpersist_binding(source, &binding);
        if exchange.unbind(&binding) && exchange.settings.auto_delete && !exchange.has_bindings() {
            let _ = self.delete_exchange(&exchange.name, false);
        }
    }

    // ---- queues ----------------------------------------------------------

    pub(crate) fn queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.queues.get(name).map(|q| q.clone())
    }

    pub(crate) fn queue_or_404(&self, name: &str) -> AmqpResult<Arc<Queue>> {
        self.queue(name)
            .ok_or_else(|| AmqpError::no_such("queue", name, &self.name))
    }

    /// queue.declare (not passive), with RabbitMQ's exclusivity and
    /// equivalence checks on an existing queue.
    pub(crate) fn declare_queue(self: &Arc<Self>, name: &ShortStr, settings: QueueSettings) -> AmqpResult<Arc<Queue>> {
        self.declare_queue_at(name, settings, None)
    }

    /// queue.declare of a queue that lives on `home` (a node of the
    /// cluster; None: this node, the queue unknown to the others).
    pub(crate) fn declare_queue_at(
        self: &Arc<Self>,
        name: &ShortStr,
        settings: QueueSettings,
        home: Option<Home>,
    ) -> AmqpResult<Arc<Queue>> {
        ChurnCounters::bump(&self.churn.queues_declared);
        let existing = match self.queues.entry(name.clone()) {
            dashmap::mapref::entry::Entry::Occupied(e) => e.get().clone(),
            dashmap::mapref::entry::Entry::Vacant(slot) => {
                let what = format!("queue '{name}' in vhost '{}'", self.name);
                let args = settings.parse_arguments(&what)?;
                let persistence = self.persist_queue(name, &settings, home.as_ref())?;
                let applied = self.policies_for_queue(name, &args);
                let identity = Identity {
                    name: name.clone(),
                    vhost_name: self.name.clone(),
                    settings,
                    args,
                    applied,
                    home,
                };
                let queue = Queue::new(identity, self.as_host(), persistence, self.cluster.as_ref());
                slot.insert(queue.clone());
                ChurnCounters::bump(&self.churn.queues_created);
                return Ok(queue);
            }
        };
        if existing.settings.exclusive_owner != settings.exclusive_owner {
            return Err(self.locked(name));
        }
        let what = format!("queue '{name}' in vhost '{}'", self.name);
        if existing.settings.durable != settings.durable {
            return Err(inequivalent(
                "durable",
                &what,
                settings.durable,
                existing.settings.durable,
            ));
        }
        if existing.settings.auto_delete != settings.auto_delete {
            return Err(inequivalent(
                "auto_delete",
                &what,
                settings.auto_delete,
                existing.settings.auto_delete,
            ));
        }
        check_args_equivalence(
            &existing.settings.arguments,
            &settings.arguments,
            EQUIVALENCE_CHECKED_QUEUE_ARGS,
            &what,
        )?;
        existing.touch();
        Ok(existing)
    }

    /// The policies that apply to a queue of this name and type.
    pub(crate) fn policies_for_queue(&self, name: &str, args: &QueueArguments) -> Applied {
        let target = Target::Queue(args.queue_type.as_str());
        self.policies.matching(&self.name, target, name)
    }

    /// Policies changed: every queue and exchange takes the ones that
    /// apply to it now (those whose policies did not change are left alone).
    pub(crate) fn reapply_policies(&self) {
        let same = |a: &Option<Arc<Policy>>, b: &Option<Arc<Policy>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        for queue in self.queues() {
            let applied = self.policies_for_queue(&queue.name, &queue.declared_args);
            let current = queue.applied();
            if !same(&applied.policy, &current.policy) || !same(&applied.operator_policy, &current.operator_policy) {
                queue.apply_policies(applied);
            }
        }
        for exchange in self.exchanges() {
            if exchange.name.is_empty() {
                continue;
            }
            let policy = self
                .policies
                .matching(&self.name, Target::Exchange, &exchange.name)
                .policy;
            if !same(&policy, &exchange.policy()) {
                exchange.apply_policy(policy);
            }
        }
    }

    /// How its queues reach it, without keeping it alive.
    fn as_host(self: &Arc<Self>) -> Weak<dyn QueueHost> {
        let weak: Weak<VHost> = Arc::downgrade(self);
        weak
    }

    /// The 405 for using another connection's exclusive queue.
    pub(crate) fn locked(&self, name: &str) -> AmqpError {
        AmqpError::resource_locked(format!(
            "cannot obtain exclusive access to locked queue '{name}' in vhost '{}'. It could be originally \
             declared on another connection or the exclusive property value does not match that of the \
             original declaration.",
            self.name
        ))
    }

    /// Checks a connection may use a queue (it is not another's exclusive one).
    pub(crate) fn check_exclusive_access(&self, queue: &Queue, connection: ConnectionId) -> AmqpResult<()> {
        match queue.settings.exclusive_owner {
            Some(owner) if owner != connection => Err(self.locked(&queue.name)),
            _ => Ok(()),
        }
    }

    /// Removes a queue and its bindings; returns its ready message count.
    pub(crate) fn delete_queue(&self, queue: &Arc<Queue>) -> u64 {
        let removed = self
            .queues
            .remove_if(&queue.name, |_, q| Arc::ptr_eq(q, queue))
            .is_some();
        if !removed {
            return 0;
        }
        ChurnCounters::bump(&self.churn.queues_deleted);
        let destination = Destination::Queue(queue.clone());
        self.unpersist_bindings_to(&destination);
        self.remove_bindings_to(&destination);
        queue.delete()
    }

    // ---- routing ---------------------------------------------------------

    /// Finds the queues a message published to `exchange` reaches, following
    /// exchange-to-exchange bindings and alternate exchanges. `queues` comes
    /// in empty and holds each queue once on return.
    pub(crate) fn route(
        &self,
        exchange: &Arc<Exchange>,
        routing_key: &str,
        properties: &BasicProperties,
        queues: &mut Vec<Arc<Queue>>,
    ) {
        if exchange.name.is_empty() {
            if let Some(q) = self.queues.get(routing_key) {
                queues.push(q.clone());
            }
            return;
        }
        let mut next = Vec::new();
        exchange.route(routing_key, properties, queues, &mut next);
        if queues.is_empty() && next.is_empty() {
            if let Some(ae) = exchange.alternate_exchange() {
                next.push(ae);
            }
        }
        if next.is_empty() {
            // The common case: one exchange, no further hops.
            return;
        }
        let mut visited: Vec<ShortStr> = vec![exchange.name.clone()];
        while let Some(name) = next.pop() {
            if visited.contains(&name) {
                continue;
            }
            visited.push(name.clone());
            let Some(x) = self.exchange(&name) else {
                continue;
            };
            let (queues_before, next_before) = (queues.len(), next.len());
            x.route(routing_key, properties, queues, &mut next);
            if queues.len() == queues_before && next.len() == next_before {
                if let Some(ae) = x.alternate_exchange() {
                    next.push(ae);
                }
            }
        }
    }

    /// Every exchange, as it is now.
    pub(crate) fn exchanges(&self) -> Vec<Arc<Exchange>> {
        self.exchanges.iter().map(|x| x.clone()).collect()
    }

    /// The vhost is being deleted: every queue (and its messages) and
    /// every declared exchange go, from memory and from the store.
    pub(crate) fn delete_everything(&self) {
        for queue in self.queues() {
            self.delete_queue(&queue);
        }
        for exchange in self.exchanges() {
            if exchange.name.is_empty() || exchange.name.starts_with("amq.") {
                continue;
            }
            let _ = self.delete_exchange(&exchange.name, false);
        }
    }

    pub(crate) fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// Every queue, as it is now.
    pub(crate) fn queues(&self) -> Vec<Arc<Queue>> {
        self.queues.iter().map(|q| q.clone()).collect()
    }

    /// Exclusive queues owned by a connection, to delete when it closes.
    pub(crate) fn exclusive_queues_of(&self, connection: ConnectionId) -> Vec<Arc<Queue>> {
        self.queues
            .iter()
            .filter(|q| q.settings.exclusive_owner == Some(connection))
            .map(|q| q.clone())
            .collect()
    }
}

impl QueueHost for VHost {
    fn route_to(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: &BasicProperties,
        queues: &mut Vec<Arc<Queue>>,
    ) -> bool {
        let Some(exchange) = self.exchange(exchange) else {
            return false;
        };
        self.route(&exchange, routing_key, properties, queues);
        true
    }

    fn delete_expired(&self, queue: &Arc<Queue>) {
        self.delete_queue_everywhere(queue);
    }
}

impl VHost {
    /// Deletes a queue that ran out (`x-expires`) or lost its last consumer
    /// (auto-delete): one every node knows goes from every node, through the
    /// metadata log (a classic queue leaves its home at once).
    pub(crate) fn delete_queue_everywhere(&self, queue: &Arc<Queue>) {
        let Some(link) = self.cluster.as_ref().filter(|_| queue.declared_everywhere()) else {
            self.delete_queue(queue);
            return;
        };
        if !queue.is_quorum() {
            self.delete_queue(queue);
        }
        let change = MetadataChange::DeleteQueue {
            vhost: self.name.to_string(),
            name: queue.name.to_string(),
        };
        let proposal = link.propose(change);
        let name = queue.name.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = proposal.await {
                        tracing::warn!(queue = %name, "deleting a queue on every node: {e}");
                    }
                });
            }
            Err(_) => tracing::warn!(queue = %name, "a queue to delete on every node outside a runtime"),
        }
    }
}

fn default_exchange_refused() -> AmqpError {
    AmqpError::access_refused("operation not permitted on the default exchange")
}

fn inequivalent(
    field: &str,
    what: &str,
    received: impl std::fmt::Display,
    current: impl std::fmt::Display,
) -> AmqpError {
    AmqpError::precondition_failed(format!(
        "inequivalent arg '{field}' for {what}: received '{received}' but current is '{current}'"
    ))
}

/// Compares the listed arguments of an existing entity and a redeclaration
/// the way RabbitMQ does: integers of any width form one type class, and the
/// reply text shows plain values when only the value differs.
fn check_args_equivalence(current: &FieldTable, received: &FieldTable, keys: &[&str], what: &str) -> AmqpResult<()> {
    for key in keys {
        let (now, new) = (current.get(key), received.get(key));
        let (received_text, current_text) = match (now, new) {
            (None, None) => continue,
            (Some(a), Some(b)) if type_class(a) == type_class(b) => {
                let same = match (a.as_i64(), b.as_i64()) {
                    (Some(x), Some(y)) => x == y,
                    _ => a == b,
                };
                if same {
                    continue;
                }
                (format!("'{}'", show_value(b)), format!("'{}'", show_value(a)))
            }
            (now, new) => (describe_arg(new), describe_arg(now)),
        };
        return Err(AmqpError::precondition_failed(format!(
            "inequivalent arg '{key}' for {what}: received {received_text} but current is {current_text}"
        )));
    }
    Ok(())
}

/// Integers of every width compare as one class, as do the two floats.
fn type_class(value: &FieldValue) -> &'static str {
    match value {
        v if v.as_i64().is_some() => "int",
        FieldValue::U64(_) => "int",
        FieldValue::F32(_) | FieldValue::F64(_) => "float",
        other => type_name(other),
    }
}

fn show_value(value: &FieldValue) -> String {
    match value {
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::F32(v) => v.to_string(),
        FieldValue::F64(v) => v.to_string(),
        FieldValue::Decimal(s, v) => format!("{{{s},{v}}}"),
        FieldValue::LongStr(b) | FieldValue::ByteArray(b) => String::from_utf8_lossy(b).into_owned(),
        FieldValue::Array(_) | FieldValue::Table(_) => "[...]".to_string(),
        FieldValue::Timestamp(v) => v.to_string(),
        FieldValue::Void => "undefined".to_string(),
        FieldValue::U64(v) => v.to_string(),
        v => v.as_i64().map(|n| n.to_string()).unwrap_or_default(),
    }
}

/// RabbitMQ's wording for an argument value with its type, or "none".
fn describe_arg(value: Option<&FieldValue>) -> String {
    match value {
        None => "none".to_string(),
        Some(v) => format!("the value '{}' of type '{}'", show_value(v), type_name(v)),
    }
}
