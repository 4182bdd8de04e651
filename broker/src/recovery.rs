//! Start-up recovery: rebuilding vhosts, durable exchanges, durable queues
//! and bindings from the store.
//!
//! A queue's messages are not loaded here: the store summed up each queue's
//! index when it opened, and the queue reads back only its window
//! (`queue/paging.rs`), so start-up time and memory do not grow with the
//! bodies on disk. Messages that were handed to a consumer before the crash
//! come back with `redelivered` set.

use std::sync::Arc;
use std::time::Instant;

use warren_store::{SledStore, Store, StoreResult};

use crate::vhost::VHost;

/// What recovery found, for the start-up log line.
#[derive(Debug, Default)]
pub(crate) struct RecoveryStats {
    pub exchanges: usize,
    pub queues: usize,
    pub bindings: usize,
    pub messages: u64,
}

/// Rebuilds what the store holds; `vhost` finds or creates a vhost by name.
pub(crate) fn recover(store: &SledStore, vhost: impl Fn(&str) -> Arc<VHost>) -> StoreResult<RecoveryStats> {
    let started = Instant::now();
    let defs = store.definitions()?;
    let mut stats = RecoveryStats::default();
    for name in &defs.vhosts {
        vhost(name);
    }
    for record in &defs.exchanges {
        vhost(&record.vhost).restore_exchange(record)?;
        stats.exchanges += 1;
    }
    for record in &defs.queues {
        let Some(queue) = vhost(&record.vhost).restore_queue(record)? else {
            continue;
        };
        stats.queues += 1;
        let summary = store.recovered_queue(record.id);
        stats.messages += summary.count;
        queue.restore(summary, store.delivered_mark(record.id)?);
    }
    for record in &defs.bindings {
        vhost(&record.vhost).restore_binding(record)?;
        stats.bindings += 1;
    }
    store.sync()?;
    let bodies = store.body_stats();
    tracing::info!(
        exchanges = stats.exchanges,
        queues = stats.queues,
        bindings = stats.bindings,
        messages = stats.messages,
        stored_bodies = bodies.messages,
        body_files = bodies.segments,
        "recovered durable state in {:?}",
        started.elapsed()
    );
    Ok(stats)
}
