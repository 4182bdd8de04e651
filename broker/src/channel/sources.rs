//! Where a channel's unacknowledged deliveries came from: each (queue,
//! consumer) pair is held once, with a count of the deliveries that refer
//! to it, and a delivery keeps only the pair's number.
//!
//! A delivery that held its own clones of the queue's and the consumer's
//! `Arc`s cost two atomic increments when it went out and two decrements
//! when it was acked, on reference counts that share their cache lines
//! with what the queue's side touches for every message (the consumer's
//! credit): in a stream's replay that was a twentieth of the broker's
//! work. Counted here, by the connection's own task, it costs nothing
//! shared.

use std::sync::Arc;

use foldhash::HashMap;

use crate::queue::{Consumer, Queue};

/// The number of a held (queue, consumer) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SourceId(u32);

/// A queue and the consumer a delivery went to (None for basic.get).
#[derive(Debug)]
pub(crate) struct Source {
    pub queue: Arc<Queue>,
    pub consumer: Option<Arc<Consumer>>,
}

#[derive(Debug)]
struct Slot {
    source: Source,
    /// Deliveries that refer to it.
    refs: usize,
}

/// The pairs a channel's deliveries refer to.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// A pair's slot, by the addresses of its queue and consumer (held in
    /// the slot, so they stay unique while the entry is here).
    by_pair: HashMap<(usize, usize), u32>,
}

fn key(queue: &Arc<Queue>, consumer: Option<&Arc<Consumer>>) -> (usize, usize) {
    (
        Arc::as_ptr(queue) as *const () as usize,
        consumer.map_or(0, |c| Arc::as_ptr(c) as usize),
    )
}

impl Sources {
    /// The pair's number, counting `deliveries` more that refer to it.
    pub(crate) fn hold(&mut self, queue: &Arc<Queue>, consumer: Option<&Arc<Consumer>>, deliveries: usize) -> SourceId {
        let key = key(queue, consumer);
        if let Some(&at) = self.by_pair.get(&key) {
            if let Some(Some(slot)) = self.slots.get_mut(at as usize) {
                slot.refs += deliveries;
                return SourceId(at);
            }
        }
        let slot = Slot {
            source: Source {
                queue: queue.clone(),
                consumer: consumer.cloned(),
            },
            refs: deliveries,
        };
        let at = match self.free.pop() {
            Some(at) => {
                self.slots[at as usize] = Some(slot);
                at
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_pair.insert(key, at);
        SourceId(at)
    }

    /// The pair behind a number that deliveries still refer to (a
    /// number is handed out with a count, and its slot stays until that
    /// count is released: None only if that were broken).
    pub(crate) fn get(&self, id: SourceId) -> Option<&Source> {
        self.slots.get(id.0 as usize)?.as_ref().map(|slot| &slot.source)
    }

    /// `deliveries` fewer refer to the pair; at none it is let go.
    pub(crate) fn release(&mut self, id: SourceId, deliveries: usize) {
        let Some(entry) = self.slots.get_mut(id.0 as usize) else {
            return;
        };
        let Some(slot) = entry else {
            return;
        };
        slot.refs = slot.refs.saturating_sub(deliveries);
        if slot.refs == 0 {
            let key = key(&slot.source.queue, slot.source.consumer.as_ref());
            self.by_pair.remove(&key);
            *entry = None;
            self.free.push(id.0);
        }
    }
}
