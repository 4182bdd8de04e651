//! A shovel's mover: takes batches of messages from the source queue,
//! publishes copies to the destination, and acks the originals only once
//! the copies are where they are going (on disk, for a durable
//! destination), so a broker that dies mid-move loses nothing.
//!
//! Between durable queues it also duplicates nothing: before the copies of
//! a batch can reach the disk, the batch is recorded in the store
//! ([`MoveRecord`]) and that record is made durable; opening the store
//! after a crash removes exactly the originals whose copies arrived
//! (`warren_store`'s `moves.rs`). Each batch waits for three syncs (the
//! record, the copies, the removals), which group commit shares with
//! every other publisher.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::watch;
use warren_protocol::{FieldTable, FieldValue, ShortStr};
use warren_store::{MoveRecord, MovedEntry, QueueId};

use super::{Definition, DeleteAfter, Destination, ShovelHost, ShovelState, Shovels, Source, Status};
use crate::exchange::Destination as BindingDestination;
use crate::message::Message;
use crate::queue::{Enqueued, Queue, QueueEntry, QueueSettings, Settlement};
use crate::vhost::VHost;

/// How often an idle shovel looks at its source again: soon after it
/// found it empty, then less and less often.
const IDLE_POLL_FIRST: Duration = Duration::from_millis(1);
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How long a failed shovel waits before it tries again (RabbitMQ's
/// default `reconnect-delay`).
const RETRY_AFTER: Duration = Duration::from_secs(5);

pub(super) struct Run {
    pub host: Arc<dyn ShovelHost>,
    pub shovels: std::sync::Weak<Shovels>,
    pub vhost: String,
    pub name: String,
    pub definition: Arc<Definition>,
    pub status: Arc<Status>,
}

/// What a shovel works between once set up.
struct Ends {
    source: Arc<Queue>,
    /// The queue the shovel declared for an exchange source, deleted when
    /// it stops.
    own_queue: bool,
    destination: Arc<VHost>,
}

/// How a run ended.
enum Outcome {
    /// Told to stop (deleted, replaced, or the broker shuts down).
    Stopped,
    /// Moved what `src-delete-after` asked for.
    Done,
}

impl Run {
    pub(super) async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut shutdown = self.host.shutdown_signal();
        loop {
            let outcome = match self.prepare() {
                Ok(ends) => {
                    self.status.set(ShovelState::Running);
                    tracing::info!(vhost = self.vhost, shovel = self.name, "shovel running");
                    let outcome = tokio::select! {
                        outcome = self.move_all(&ends, &mut stopped) => outcome,
                        _ = stopping(&mut shutdown) => Ok(Outcome::Stopped),
                    };
                    self.release(&ends);
                    outcome
                }
                Err(reason) => Err(reason),
            };
            match outcome {
                Ok(Outcome::Stopped) => return,
                Ok(Outcome::Done) => {
                    tracing::info!(vhost = self.vhost, shovel = self.name, "shovel done; deleting it");
                    if let Some(shovels) = self.shovels.upgrade() {
                        shovels.finished(&self.vhost, &self.name, &self.status);
                    }
                    return;
                }
                Err(reason) => {
                    tracing::warn!(vhost = self.vhost, shovel = self.name, "shovel failed: {reason}");
                    self.status.set(ShovelState::Terminated(reason));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY_AFTER) => {}
                _ = stopped.changed() => return,
                _ = stopping(&mut shutdown) => return,
            }
        }
    }

    /// The key its moves are recorded under in the store.
    fn record_key(&self) -> String {
        format!("{}\u{0}{}", self.vhost, self.name)
    }

    fn vhost(&self, name: &str) -> Result<Arc<VHost>, String> {
        self.host
            .vhost(name)
            .ok_or_else(|| format!("vhost '{name}' does not exist"))
    }

    /// Finds (declaring as RabbitMQ's shovel does, durable, if missing)
    /// the source and destination.
    fn prepare(&self) -> Result<Ends, String> {
        let d = &self.definition;
        let source_vhost = self.vhost(&d.source_vhost)?;
        let destination = self.vhost(&d.destination_vhost)?;
        let (source, own_queue) = match &d.source {
            Source::Queue(name) if d.source_predeclared => (existing(&source_vhost, name)?, false),
            Source::Queue(name) => (declare(&source_vhost, name, true)?, false),
            Source::Exchange { name, key } => {
                let own = format!("amq.gen-shovel-{:016x}", rand::random::<u64>());
                let queue = declare(&source_vhost, &own, false)?;
                let bound = source_vhost.bind(
                    name,
                    BindingDestination::Queue(queue.clone()),
                    ShortStr::from(key.as_str()),
                    FieldTable::new(),
                );
                if let Err(e) = bound {
                    source_vhost.delete_queue(&queue);
                    return Err(e.reply_text().to_string());
                }
                (queue, true)
            }
        };
        match &d.destination {
            Destination::Queue(name) if d.destination_predeclared => {
                existing(&destination, name)?;
            }
            Destination::Queue(name) => {
                declare(&destination, name, true)?;
            }
            Destination::Exchange { name, .. } => {
                destination
                    .exchange_or_404(name)
                    .map_err(|e| e.reply_text().to_string())?;
            }
            Destination::Original => {}
        }
        Ok(Ends {
            source,
            own_queue,
            destination,
        })
    }

    fn release(&self, ends: &Ends) {
        let _ = self.host.durability().store().clear_move(&self.record_key());
        if ends.own_queue {
            if let Some(v) = self.host.vhost(&self.definition.source_vhost) {
                v.delete_queue(&ends.source);
            }
        }
    }

    async fn move_all(&self, ends: &Ends, stopped: &mut watch::Receiver<bool>) -> Result<Outcome, String> {
        let d = &self.definition;
        let mut remaining = match d.delete_after {
            DeleteAfter::Never => u64::MAX,
            DeleteAfter::QueueLength => ends.source.message_count(),
            DeleteAfter::Count(n) => n,
        };
        let mut idle_poll = IDLE_POLL_FIRST;
        loop {
            if *stopped.borrow() {
                return Ok(Outcome::Stopped);
            }
            if remaining == 0 {
                return Ok(Outcome::Done);
            }
            let want = d.batch.min(usize::try_from(remaining).unwrap_or(usize::MAX));
            let mut taken = Vec::with_capacity(want);
            while taken.len() < want {
                match ends.source.get(true) {
                    Some((entry, _)) => taken.push(entry),
                    None => break,
                }
            }
            if taken.is_empty() {
                if d.delete_after == DeleteAfter::QueueLength {
                    // Emptied by someone else before the count was reached.
                    return Ok(Outcome::Done);
                }
                tokio::select! {
                    _ = tokio::time::sleep(idle_poll) => {}
                    _ = stopped.changed() => {}
                }
                idle_poll = (idle_poll * 2).min(IDLE_POLL);
                continue;
            }
            idle_poll = IDLE_POLL_FIRST;
            let moved = self.move_batch(ends, taken).await?;
            remaining = remaining.saturating_sub(moved);
            self.status.moved.fetch_add(moved, Ordering::Relaxed);
        }
    }

    /// Moves one batch; returns how many were moved (the others went back).
    async fn move_batch(&self, ends: &Ends, taken: Vec<QueueEntry>) -> Result<u64, String> {
        let durability = self.host.durability().clone();
        let mut copies = Vec::with_capacity(taken.len());
        for entry in &taken {
            let copy = self.copy_of(&ends.source, entry);
            let mut queues = Vec::new();
            let Some(exchange) = ends.destination.exchange(&copy.exchange) else {
                ends.source.settle(taken, Settlement::Requeue);
                return Err(format!(
                    "NOT_FOUND - no exchange '{}' in vhost '{}'",
                    copy.exchange, self.definition.destination_vhost
                ));
            };
            ends.destination
                .route(&exchange, &copy.routing_key, copy.header.properties(), &mut queues);
            copies.push((copy, queues));
        }

        // Record the batch before any copy can reach the disk.
        let record = match self.record(ends, &taken, &copies) {
            Ok(record) => record,
            Err(e) => {
                ends.source.settle(taken, Settlement::Requeue);
                return Err(e);
            }
        };
        if let Some(record) = &record {
            let saved = durability.store().save_move(&self.record_key(), record);
            if saved.is_err() || !durable(&durability).await {
                ends.source.settle(taken, Settlement::Requeue);
                return Err("the store failed to record the move".into());
            }
        }

        let mut moved = Vec::with_capacity(taken.len());
        let mut refused = Vec::new();
        for (entry, (copy, queues)) in taken.into_iter().zip(copies) {
            let mut accepted = true;
            for queue in &queues {
                if matches!(queue.publish(copy.clone()), Enqueued::Rejected) {
                    accepted = false;
                }
            }
            if accepted {
                moved.push(entry);
            } else {
                refused.push(entry);
            }
        }
        if !durable(&durability).await {
            ends.source.settle(moved, Settlement::Requeue);
            ends.source.settle(refused, Settlement::Requeue);
            return Err("the store failed to write the copies".into());
        }
        let count = moved.len() as u64;
        ends.source.settle(moved, Settlement::Ack);
        if !refused.is_empty() {
            // A destination refused them (its length limit): they go back,
            // and the shovel gives the destination time to drain.
            ends.source.settle(refused, Settlement::Requeue);
            tokio::time::sleep(IDLE_POLL).await;
        }
        if record.is_some() && !durable(&durability).await {
            return Err("the store failed to remove the originals".into());
        }
        Ok(count)
    }

    /// The move record for a batch, if any of it goes from the source's
    /// index to a durable destination's (storing those copies' bodies, so
    /// the record can name them).
    fn record(
        &self,
        ends: &Ends,
        taken: &[QueueEntry],
        copies: &[(Arc<Message>, Vec<Arc<Queue>>)],
    ) -> Result<Option<MoveRecord>, String> {
        let Some((source, _)) = ends.source.store_position() else {
            return Ok(None);
        };
        let store = self.host.durability().shared_store();
        let mut entries = Vec::new();
        let mut destinations: Vec<(QueueId, u64)> = Vec::new();
        for (entry, (copy, queues)) in taken.iter().zip(copies) {
            let Some(original) = entry.message.store_id().filter(|_| entry.in_store) else {
                continue;
            };
            if !copy.is_persistent() {
                continue;
            }
            let durable: Vec<_> = queues.iter().filter_map(|q| q.store_position()).collect();
            if durable.is_empty() {
                continue;
            }
            let stored = copy.store_body(store).map_err(|e| e.to_string())?;
            entries.push(MovedEntry {
                offset: entry.offset.0,
                message: original.0,
                copy: stored.0,
            });
            for (id, next) in durable {
                if !destinations.iter().any(|(d, _)| *d == id) {
                    destinations.push((id, next.0));
                }
            }
        }
        Ok((!entries.is_empty()).then_some(MoveRecord {
            source,
            entries,
            destinations,
        }))
    }

    /// The message to publish for `entry`: its content, addressed to the
    /// destination.
    fn copy_of(&self, source: &Queue, entry: &QueueEntry) -> Arc<Message> {
        let d = &self.definition;
        let original = &entry.message;
        let (exchange, routing_key) = match &d.destination {
            Destination::Queue(name) => (ShortStr::from(""), ShortStr::from(name.as_str())),
            Destination::Exchange { name, key } => (
                ShortStr::from(name.as_str()),
                key.as_deref()
                    .map_or_else(|| original.routing_key.clone(), ShortStr::from),
            ),
            Destination::Original => (original.exchange.clone(), original.routing_key.clone()),
        };
        let mut header = source.delivery_header(entry).into_owned();
        let properties = header.properties_mut();
        if let Err(e) = crate::json::overlay_properties(properties, &d.publish_properties) {
            tracing::warn!(
                vhost = self.vhost,
                shovel = self.name,
                "dest-publish-properties ignored: {e}"
            );
        }
        if d.add_forward_headers || d.add_timestamp_header {
            let headers = properties.headers.get_or_insert_with(FieldTable::new);
            if d.add_forward_headers {
                headers.insert(
                    "x-shovelled",
                    FieldValue::Array(vec![FieldValue::Table(self.provenance())]),
                );
            }
            if d.add_timestamp_header {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                headers.insert("x-shovelled-timestamp", FieldValue::Timestamp(now.as_secs()));
            }
        }
        Message::new(exchange, routing_key, header, original.body.clone())
    }

    /// The `x-shovelled` entry RabbitMQ's shovel adds with forward headers.
    fn provenance(&self) -> FieldTable {
        let d = &self.definition;
        let text = |s: &str| FieldValue::LongStr(Bytes::copy_from_slice(s.as_bytes()));
        let mut table = FieldTable::new();
        table.insert("shovel-name", text(&self.name));
        table.insert("shovel-type", text("dynamic"));
        table.insert("shovel-vhost", text(&self.vhost));
        table.insert(
            "src-uri",
            text(d.value.get("src-uri").and_then(|v| v.as_str()).unwrap_or("amqp://")),
        );
        table.insert(
            "dest-uri",
            text(d.value.get("dest-uri").and_then(|v| v.as_str()).unwrap_or("amqp://")),
        );
        match &d.source {
            Source::Queue(q) => {
                table.insert("src-queue", text(q));
            }
            Source::Exchange { name, key } => {
                table.insert("src-exchange", text(name));
                table.insert("src-exchange-key", text(key));
            }
        }
        match &d.destination {
            Destination::Queue(q) => {
                table.insert("dest-queue", text(q));
            }
            Destination::Exchange { name, key } => {
                table.insert("dest-exchange", text(name));
                if let Some(key) = key {
                    table.insert("dest-exchange-key", text(key));
                }
            }
            Destination::Original => {}
        }
        table
    }
}

/// Finds a queue that must exist.
fn existing(vhost: &Arc<VHost>, name: &str) -> Result<Arc<Queue>, String> {
    vhost.queue_or_404(name).map_err(|e| e.reply_text().to_string())
}

/// Finds a queue, declaring it (as RabbitMQ's shovel declares a missing
/// source or destination queue) if it does not exist.
fn declare(vhost: &Arc<VHost>, name: &str, durable: bool) -> Result<Arc<Queue>, String> {
    if let Some(queue) = vhost.queue(name) {
        return Ok(queue);
    }
    let settings = QueueSettings {
        durable,
        exclusive_owner: None,
        auto_delete: false,
        arguments: FieldTable::new(),
    };
    vhost
        .declare_queue(&ShortStr::from(name), settings)
        .map_err(|e| e.reply_text().to_string())
}

/// Waits until everything written so far is on disk; false if the sync
/// failed.
async fn durable(durability: &crate::durability::Durability) -> bool {
    let epoch = durability.wrote();
    durability.request_sync();
    let mut synced = durability.subscribe();
    loop {
        if let Some(ok) = synced.borrow_and_update().verdict(epoch) {
            return ok;
        }
        if synced.changed().await.is_err() {
            return false;
        }
    }
}

/// Returns once the broker shuts down.
async fn stopping(signal: &mut watch::Receiver<bool>) {
    while !*signal.borrow_and_update() {
        if signal.changed().await.is_err() {
            return;
        }
    }
}
