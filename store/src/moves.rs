//! Moving messages from one durable queue to others exactly once across a
//! crash (the broker's shovels).
//!
//! A move cannot be one write: the copies go into the destinations'
//! indexes and the originals leave the source's, in different files. So
//! the mover first records what it is about to do ([`MoveRecord`]: the
//! source entries, the ids of the copies' bodies, which it stored itself,
//! and where each destination's index stood) and makes that durable; then
//! it adds the copies and makes them durable; then it removes the
//! originals. A crash anywhere leaves either no record, or one that
//! opening settles ([`settle_interrupted`]): each original whose copy
//! reached a destination is removed, the others stay to be moved again.
//! The copies' bodies are new ids that nothing else refers to, so finding
//! one in a destination can only mean that this move put it there.

use std::collections::{HashMap, HashSet};
use std::io;

use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, Offset, QueueId};
use crate::queue_index::QueueIndexes;
use crate::records::QueueSummary;
use crate::segments::SegmentStore;

/// One message being moved: its entry in the source, and its copy's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedEntry {
    /// Its offset in the source queue.
    pub offset: u64,
    /// The body the source entry refers to.
    pub message: u64,
    /// The body of its copy (stored by the mover before the record).
    pub copy: u64,
}

/// A batch of messages on its way from `source` to `destinations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRecord {
    pub source: QueueId,
    pub entries: Vec<MovedEntry>,
    /// Each durable destination, with the offset its next entry was to
    /// take when the record was written: copies can only be at or above it.
    pub destinations: Vec<(QueueId, u64)>,
}

/// How many entries are read at a time while looking for copies.
const READ_BATCH: usize = 4096;

/// Finishes a move a crash interrupted: removes from the source each entry
/// whose copy is in a destination (and whose entry is still the one the
/// record names). Returns how many were removed. Called while the store
/// opens, before the broker reads the queues' summaries.
pub(crate) fn settle_interrupted(
    record: &MoveRecord,
    indexes: &QueueIndexes,
    bodies: &SegmentStore,
    summaries: &mut HashMap<QueueId, QueueSummary>,
) -> io::Result<usize> {
    let copies: HashSet<u64> = record.entries.iter().map(|e| e.copy).collect();
    let mut arrived = HashSet::new();
    for &(destination, from) in &record.destinations {
        let mut at = Offset(from);
        while arrived.len() < copies.len() {
            let batch = indexes.entries(destination, at, READ_BATCH)?;
            let Some(&(last, _)) = batch.last() else {
                break;
            };
            at = Offset(last.0 + 1);
            for (_, entry) in &batch {
                if copies.contains(&entry.message.0) {
                    arrived.insert(entry.message.0);
                }
            }
        }
    }
    let mut removed = 0;
    for moved in record.entries.iter().filter(|e| arrived.contains(&e.copy)) {
        let found = indexes.entries(record.source, Offset(moved.offset), 1)?;
        let Some(&(offset, entry)) = found.first() else {
            continue;
        };
        if offset.0 != moved.offset || entry.message != MessageId(moved.message) {
            continue; // removed before the crash
        }
        indexes.remove(record.source, offset)?;
        bodies.release(entry.message);
        if let Some(summary) = summaries.get_mut(&record.source) {
            summary.count = summary.count.saturating_sub(1);
            summary.bytes = summary.bytes.saturating_sub(entry.body_size);
            if summary.count == 0 {
                summaries.remove(&record.source);
            }
        }
        removed += 1;
    }
    Ok(removed)
}
