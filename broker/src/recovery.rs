//! Start-up recovery: rebuilding vhosts, durable exchanges, durable queues
//! with their persistent messages, and bindings from the store.
//!
//! A message body shared by several queues is loaded once and shared again.
//! Messages that were handed to a consumer before the crash come back with
//! `redelivered` set. Bodies no queue refers to any more (a crash between
//! writing a body and its index entry) are deleted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use warren_store::{SledStore, Store, StoreResult};

use crate::broker::Broker;
use crate::message::Message;

/// What recovery found, for the start-up log line.
#[derive(Debug, Default)]
pub struct RecoveryStats {
    pub exchanges: usize,
    pub queues: usize,
    pub bindings: usize,
    pub messages: usize,
    pub orphans_removed: usize,
}

pub fn recover(broker: &Broker, store: &SledStore) -> StoreResult<RecoveryStats> {
    let started = Instant::now();
    let defs = store.definitions()?;
    let mut stats = RecoveryStats::default();
    for name in &defs.vhosts {
        broker.add_vhost(name);
    }
    for record in &defs.exchanges {
        broker.add_vhost(&record.vhost).restore_exchange(record);
        stats.exchanges += 1;
    }
    let mut bodies: HashMap<u64, Arc<Message>> = HashMap::new();
    for record in &defs.queues {
        let vhost = broker.add_vhost(&record.vhost);
        let Some(queue) = vhost.restore_queue(record) else {
            continue;
        };
        stats.queues += 1;
        let delivered_below = store.delivered_mark(record.id)?;
        let mut recovered = Vec::new();
        for (offset, entry) in store.entries(record.id)? {
            let message = match bodies.get(&entry.message) {
                Some(m) => m.clone(),
                None => match store.message(entry.message)?.and_then(Message::decode_from_store) {
                    Some(m) => {
                        let _ = m.store_id.set(entry.message);
                        bodies.insert(entry.message, m.clone());
                        m
                    }
                    None => {
                        tracing::warn!(queue = %record.name, offset, "stored message missing or corrupt; dropped");
                        store.delete_entry(record.id, offset)?;
                        continue;
                    }
                },
            };
            recovered.push((offset, message, offset < delivered_below, entry.delivery_count));
        }
        stats.messages += recovered.len();
        queue.restore(recovered);
    }
    for record in &defs.bindings {
        broker.add_vhost(&record.vhost).restore_binding(record);
        stats.bindings += 1;
    }
    for id in store.message_ids()? {
        if !bodies.contains_key(&id) {
            store.delete_message(id)?;
            stats.orphans_removed += 1;
        }
    }
    store.sync()?;
    tracing::info!(
        exchanges = stats.exchanges,
        queues = stats.queues,
        bindings = stats.bindings,
        messages = stats.messages,
        orphans_removed = stats.orphans_removed,
        "recovered durable state in {:?}",
        started.elapsed()
    );
    Ok(stats)
}
