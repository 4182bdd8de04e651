//! Server-side offset tracking (`x-stream-automatic-offset-tracking`, as
//! LavinMQ has it): the stream remembers, per consumer tag, the offset of
//! the last message that consumer acked, so a consumer group that comes
//! back under the same tag resumes after it without storing offsets
//! itself. Acks update memory; the offsets are written to the store's
//! settings at most once a second and when a consumer goes, so after a
//! crash a consumer may see the last second's messages again (at least
//! once, never skipped).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use warren_protocol::FieldTable;
use warren_store::{Offset, QueueId, Store};

/// Whether a consumer asked for tracking.
pub(crate) fn asked(arguments: &FieldTable) -> bool {
    arguments
        .get("x-stream-automatic-offset-tracking")
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

fn key(queue: QueueId) -> String {
    format!("stream-offsets/{}", queue.0)
}

#[derive(Default)]
pub(crate) struct Tracking {
    /// Last acked offset per tracked consumer tag; None until read from
    /// the store.
    offsets: Mutex<Option<HashMap<String, u64>>>,
    dirty: AtomicBool,
}

impl Tracking {
    fn with<T>(&self, store: &dyn Store, queue: QueueId, f: impl FnOnce(&mut HashMap<String, u64>) -> T) -> T {
        let mut offsets = self.offsets.lock();
        let map = offsets.get_or_insert_with(|| {
            store
                .setting(&key(queue))
                .ok()
                .flatten()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default()
        });
        f(map)
    }

    /// Where a tracked consumer resumes: after its last ack, if it has one.
    pub(crate) fn resume_at(&self, store: &dyn Store, queue: QueueId, tag: &str) -> Option<Offset> {
        self.with(store, queue, |map| map.get(tag).map(|&last| Offset(last + 1)))
    }

    /// A tracked consumer acked the message at `offset`.
    pub(crate) fn acked(&self, store: &dyn Store, queue: QueueId, tag: &str, offset: Offset) {
        self.with(store, queue, |map| {
            let last = map.entry(tag.to_string()).or_insert(offset.0);
            *last = (*last).max(offset.0);
        });
        self.dirty.store(true, Ordering::Release);
    }

    /// Writes the offsets if they changed since the last time.
    pub(crate) fn save(&self, store: &dyn Store, queue: QueueId) {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let bytes = {
            let offsets = self.offsets.lock();
            let Some(map) = offsets.as_ref() else {
                return;
            };
            serde_json::to_vec(map).unwrap_or_default()
        };
        if let Err(e) = store.save_setting(&key(queue), &bytes) {
            tracing::error!(queue = queue.0, "saving stream offsets failed: {e}");
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// The stream is deleted: its offsets go too.
    pub(crate) fn forget(&self, store: &dyn Store, queue: QueueId) {
        let _ = store.delete_setting(&key(queue));
    }
}
