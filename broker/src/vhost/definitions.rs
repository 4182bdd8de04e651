//! Persisting a vhost's definitions: durable exchanges, durable queues and
//! the bindings between durable entities, as RabbitMQ keeps them. Transient
//! entities (and bindings touching one) are not written, but for one: in a
//! cluster, a non-durable classic queue whose home is another node is
//! written here too (marked transient), with the bindings to it, so that
//! this node knows it again after a restart (its home lives on; the
//! cluster forgets it when its home restarts, `queue::remote::earlier_lives`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use warren_protocol::FieldTable;
use warren_store::{BindingRecord, ExchangeRecord, QueueRecord, StoreError, StoreResult};

use super::VHost;
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::{Binding, Destination, Exchange};
use crate::queue::{Home, Persistence, QueueSettings};

pub(crate) fn encode_table(table: &FieldTable) -> Vec<u8> {
    let mut buf = BytesMut::new();
    table.encode(&mut buf);
    buf.to_vec()
}

/// Reads a table written by `encode_table` (length prefix included). A
/// stored table that does not decode is corruption: the error names what
/// it belonged to (`what`), and the broker does not start on it rather
/// than run the entity without its arguments.
pub(crate) fn decode_table(bytes: &[u8], what: &str) -> StoreResult<FieldTable> {
    let corrupt = |why: String| StoreError::Corrupt(format!("the arguments of {what}: {why}"));
    let (Some(length), Some(body)) = (bytes.get(..4), bytes.get(4..)) else {
        return Err(corrupt("shorter than their length".into()));
    };
    let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
    if length != body.len() {
        return Err(corrupt(format!("{} bytes where {length} were written", body.len())));
    }
    FieldTable::decode(&Bytes::copy_from_slice(body), 0).map_err(|e| corrupt(e.to_string()))
}

fn store_error(e: warren_store::StoreError) -> AmqpError {
    tracing::error!("store write failed: {e}");
    AmqpError::internal_error(format!("store write failed: {e}"))
}

impl VHost {
    pub(super) fn persist_exchange(&self, exchange: &Exchange) -> AmqpResult<()> {
        let Some(durability) = &self.durability else {
            return Ok(());
        };
        if !exchange.settings.durable {
            return Ok(());
        }
        let record = ExchangeRecord {
            vhost: self.name.to_string(),
            name: exchange.name.to_string(),
            kind: exchange.kind().as_str().to_string(),
            auto_delete: exchange.settings.auto_delete,
            internal: exchange.settings.internal,
            arguments: encode_table(&exchange.settings.arguments),
        };
        durability.store().save_exchange(&record).map_err(store_error)?;
        durability.wrote();
        Ok(())
    }

    pub(super) fn unpersist_exchange(&self, exchange: &Exchange) {
        let Some(durability) = &self.durability else {
            return;
        };
        if exchange.settings.durable {
            for binding in exchange.bindings() {
                self.unpersist_binding(&exchange.name, &binding);
            }
            if let Err(e) = durability.store().delete_exchange(&self.name, &exchange.name) {
                tracing::error!("store write failed: {e}");
            }
            durability.wrote();
        }
    }

    /// A new queue's place in the store: a durable one's definition and id; a
    /// non-durable one's way to page (None without a data directory).
    pub(super) fn persist_queue(
        &self,
        name: &str,
        settings: &QueueSettings,
        home: Option<&Home>,
    ) -> AmqpResult<Option<Persistence>> {
        let Some(durability) = &self.durability else {
            return Ok(None);
        };
        let transient = !settings.durable;
        if !kept_in_store(settings.durable, home) {
            // Stored only if it pages: no definition, no id until then.
            return Ok(Some(Persistence::paging_only(
                durability.clone(),
                self.memory_pressure.clone(),
            )));
        }
        let store = durability.store();
        let id = store.next_id().map_err(store_error)?;
        let record = QueueRecord {
            vhost: self.name.to_string(),
            name: name.to_string(),
            id,
            auto_delete: settings.auto_delete,
            arguments: encode_table(&with_home(&settings.arguments, home, transient)),
        };
        store.save_queue(&record).map_err(store_error)?;
        durability.wrote();
        Ok(Some(Persistence::durable(durability.clone(), id)))
    }

    /// Whether `destination`'s definition is in the store.
    fn is_stored(&self, destination: &Destination) -> bool {
        match destination {
            Destination::Queue(q) => kept_in_store(q.settings.durable, q.home.as_ref()),
            Destination::Exchange(name) => self.exchange(name).is_some_and(|x| x.settings.durable),
        }
    }

    fn binding_record(&self, source: &str, binding: &Binding) -> Option<BindingRecord> {
        self.durability.as_ref()?;
        let source_durable = self.exchange(source).is_some_and(|x| x.settings.durable);
        if !source_durable || !self.is_stored(&binding.destination) {
            return None;
        }
        let destination_kind = match binding.destination {
            Destination::Queue(_) => "queue",
            Destination::Exchange(_) => "exchange",
        };
        Some(BindingRecord {
            vhost: self.name.to_string(),
            source: source.to_string(),
            destination_kind: destination_kind.to_string(),
            destination: binding.destination.name().to_string(),
            routing_key: binding.routing_key.to_string(),
            arguments: encode_table(&binding.arguments),
        })
    }

    pub(super) fn persist_binding(&self, source: &str, binding: &Binding) -> AmqpResult<()> {
        let (Some(durability), Some(record)) = (&self.durability, self.binding_record(source, binding)) else {
            return Ok(());
        };
        durability.store().save_binding(&record).map_err(store_error)?;
        durability.wrote();
        Ok(())
    }

    pub(super) fn unpersist_binding(&self, source: &str, binding: &Binding) {
        let (Some(durability), Some(record)) = (&self.durability, self.binding_record(source, binding)) else {
            return;
        };
        if let Err(e) = durability.store().delete_binding(&record) {
            tracing::error!("store write failed: {e}");
        }
        durability.wrote();
    }

    /// Forgets the stored bindings that lead to `destination`.
    pub(super) fn unpersist_bindings_to(&self, destination: &Destination) {
        if self.durability.is_none() || !self.is_stored(destination) {
            return;
        }
        let sources: Vec<Arc<Exchange>> = self.exchanges.iter().map(|x| x.clone()).collect();
        for source in sources {
            for binding in source.bindings().iter().filter(|b| b.destination == *destination) {
                self.unpersist_binding(&source.name, binding);
            }
        }
    }
}

/// Rebuilding a vhost from stored definitions at start (nothing is written
/// back: it is already in the store).
impl VHost {
    pub(crate) fn restore_exchange(&self, record: &ExchangeRecord) -> StoreResult<()> {
        let Some(kind) = crate::exchange::ExchangeKind::parse(&record.kind) else {
            tracing::warn!(
                "stored exchange '{}' has unknown type '{}'; skipped",
                record.name,
                record.kind
            );
            return Ok(());
        };
        let what = format!("exchange '{}' in vhost '{}'", record.name, self.name);
        let settings = crate::exchange::ExchangeSettings {
            kind,
            durable: true,
            auto_delete: record.auto_delete,
            internal: record.internal,
            arguments: decode_table(&record.arguments, &what)?,
        };
        let name = warren_protocol::ShortStr::from(record.name.as_str());
        let exchange = Exchange::new(name.clone(), settings);
        exchange.apply_policy(
            self.policies
                .matching(&self.name, crate::policy::Target::Exchange, &name)
                .policy,
        );
        self.exchanges.insert(name, exchange);
        Ok(())
    }

    pub(crate) fn restore_queue(
        self: &Arc<Self>,
        record: &QueueRecord,
    ) -> StoreResult<Option<Arc<crate::queue::Queue>>> {
        let Some(durability) = self.durability.clone() else {
            return Ok(None);
        };
        let what = format!("queue '{}' in vhost '{}'", record.name, self.name);
        let (arguments, home, transient) = without_home(decode_table(&record.arguments, &what)?);
        let home = home.and_then(|node| {
            // Outside a cluster (its settings removed), a queue is this node's.
            let (me, _) = self.cluster.as_ref()?.this_node();
            Some(Home::seen_from(node, &me))
        });
        if !kept_in_store(!transient, home.as_ref()) {
            // Another node's non-durable queue, and this node is not in
            // that cluster any more (or is that node): gone.
            if let Err(e) = durability.store().delete_queue(&self.name, &record.name, record.id) {
                tracing::error!("forgetting the stored {what} failed: {e}");
            }
            return Ok(None);
        }
        let settings = QueueSettings {
            durable: !transient,
            exclusive_owner: None,
            auto_delete: record.auto_delete,
            arguments,
        };
        let args = match crate::queue::QueueArguments::parse(
            &settings.arguments,
            &what,
            !transient,
            false,
            record.auto_delete,
        ) {
            Ok(args) => args,
            Err(e) => {
                tracing::warn!("stored {what} has invalid arguments ({e}); recovered without them");
                Default::default()
            }
        };
        let name = warren_protocol::ShortStr::from(record.name.as_str());
        let persistence = Persistence::durable(durability, record.id);
        let applied = self.policies_for_queue(&name, &args);
        let identity = crate::queue::Identity {
            name: name.clone(),
            vhost_name: self.name.clone(),
            settings,
            args,
            applied,
            home,
        };
        let queue = crate::queue::Queue::new(identity, self.as_host(), Some(persistence), self.cluster.as_ref());
        self.queues.insert(name, queue.clone());
        Ok(Some(queue))
    }

    pub(crate) fn restore_binding(&self, record: &BindingRecord) -> StoreResult<()> {
        let Some(source) = self.exchange(&record.source) else {
            return Ok(());
        };
        let destination = match record.destination_kind.as_str() {
            "queue" => match self.queue(&record.destination) {
                Some(q) => Destination::Queue(q),
                None => return Ok(()),
            },
            _ => Destination::Exchange(record.destination.as_str().into()),
        };
        let what = format!(
            "the binding of {} '{}' to exchange '{}' in vhost '{}'",
            record.destination_kind, record.destination, record.source, self.name
        );
        source.bind(Binding::new(
            destination,
            record.routing_key.as_str().into(),
            decode_table(&record.arguments, &what)?,
        ));
        Ok(())
    }
}

/// Whether a queue's definition is kept in the store: a durable queue's,
/// and, in a cluster, that of a non-durable queue whose home is another
/// node (so that this node knows it again after a restart).
fn kept_in_store(durable: bool, home: Option<&Home>) -> bool {
    durable || matches!(home, Some(Home::Elsewhere(_)))
}

/// The argument a stored queue's home is kept under (in the store only:
/// clients never see it).
const HOME_ARGUMENT: &str = "x-warren-home";
/// The argument that marks a stored queue as another node's non-durable one.
const TRANSIENT_ARGUMENT: &str = "x-warren-transient";

/// A queue's arguments as the store keeps them: with its home, if any.
fn with_home(arguments: &FieldTable, home: Option<&Home>, transient: bool) -> FieldTable {
    let mut stored = arguments.clone();
    if let Some(home) = home {
        stored.insert(
            HOME_ARGUMENT,
            warren_protocol::FieldValue::LongStr(Bytes::copy_from_slice(home.node().as_bytes())),
        );
    }
    if transient {
        stored.insert(TRANSIENT_ARGUMENT, warren_protocol::FieldValue::Bool(true));
    }
    stored
}

/// A stored queue's arguments, the home kept among them, and whether it
/// is another node's non-durable queue.
fn without_home(mut arguments: FieldTable) -> (FieldTable, Option<String>, bool) {
    let home = arguments.remove(HOME_ARGUMENT).and_then(|value| match value {
        warren_protocol::FieldValue::LongStr(bytes) => String::from_utf8(bytes.to_vec()).ok(),
        _ => None,
    });
    let transient = arguments.remove(TRANSIENT_ARGUMENT).is_some();
    (arguments, home, transient)
}
