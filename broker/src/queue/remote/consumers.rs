//! This node's consumers of a queue whose home is another node: which of
//! them the home lets receive (with a single active consumer, only the one
//! first in the home's list, wherever the others are), and the set the home
//! is sent whenever it changes (`calls::ConsumerSet`), versioned so that a
//! set overtaken by a newer one on the way is ignored there.

use std::sync::Arc;

use super::calls::{ConsumerSet, ConsumerStatus, RemoteConsumer};
use crate::queue::Consumer;

/// One consumer here.
struct Here {
    /// What the home knows it by.
    key: u64,
    consumer: Arc<Consumer>,
    /// The home's last word: it may receive now.
    may_receive: bool,
}

#[derive(Default)]
pub(super) struct Consumers {
    list: Vec<Here>,
    /// Where the round-robin among consumers with credit goes on.
    next: usize,
    next_key: u64,
    /// Grows with every change of `list`.
    version: u64,
}

impl Consumers {
    /// Whether a new consumer may join as far as this node can tell (its
    /// own exclusive use; the home checks every node's).
    pub(super) fn refuses(&self, consumer: &Consumer) -> bool {
        self.list.iter().any(|h| h.consumer.exclusive) || (consumer.exclusive && !self.list.is_empty())
    }

    /// Adds one; its key.
    pub(super) fn add(&mut self, consumer: Arc<Consumer>) -> u64 {
        self.next_key += 1;
        self.version += 1;
        self.list.push(Here {
            key: self.next_key,
            consumer,
            may_receive: false,
        });
        self.next_key
    }

    /// Takes one out (by identity); whether it was here.
    pub(super) fn remove(&mut self, consumer: &Arc<Consumer>) -> bool {
        self.remove_where(|h| Arc::ptr_eq(&h.consumer, consumer)).is_some()
    }

    /// Takes out the one known by `key`.
    pub(super) fn remove_key(&mut self, key: u64) -> Option<Arc<Consumer>> {
        self.remove_where(|h| h.key == key)
    }

    fn remove_where(&mut self, which: impl Fn(&Here) -> bool) -> Option<Arc<Consumer>> {
        let at = self.list.iter().position(which)?;
        self.version += 1;
        Some(self.list.remove(at).consumer)
    }

    /// Takes them all out (the queue is gone).
    pub(super) fn clear(&mut self) -> Vec<Arc<Consumer>> {
        self.version += 1;
        self.list.drain(..).map(|h| h.consumer).collect()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    pub(super) fn all(&self) -> Vec<Arc<Consumer>> {
        self.list.iter().map(|h| h.consumer.clone()).collect()
    }

    /// What the home is told.
    pub(super) fn set(&self) -> ConsumerSet {
        ConsumerSet {
            version: self.version,
            consumers: self
                .list
                .iter()
                .map(|h| RemoteConsumer {
                    key: h.key,
                    tag: h.consumer.tag.to_string(),
                    exclusive: h.consumer.exclusive,
                    priority: h.consumer.priority,
                })
                .collect(),
        }
    }

    /// Takes in the home's answer to the set of `version`: who may receive
    /// (only if nothing changed since; a later answer says it otherwise);
    /// answers the refused ones, taken out, for their channels to cancel.
    pub(super) fn heard(&mut self, version: u64, status: &ConsumerStatus) -> Vec<Arc<Consumer>> {
        if version == self.version {
            for here in &mut self.list {
                here.may_receive = status.active.contains(&here.key);
            }
        }
        status.refused.iter().filter_map(|key| self.remove_key(*key)).collect()
    }

    /// Those that may receive now (cancelled ones not).
    fn receiving(&self) -> impl Iterator<Item = &Here> {
        self.list.iter().filter(|h| h.may_receive && h.consumer.is_active())
    }

    /// How many those that may receive can take now, at most `max`.
    pub(super) fn room(&self, max: u32) -> u32 {
        self.receiving()
            .map(|h| {
                let c = &h.consumer;
                if c.no_ack {
                    max
                } else {
                    c.credit.room().min(c.channel_credit.room())
                }
            })
            .fold(0u32, |sum, room| sum.saturating_add(room))
            .min(max)
    }

    /// A consumer that may receive and has credit, in turn; its credit taken.
    pub(super) fn next_with_credit(&mut self) -> Option<Arc<Consumer>> {
        let count = self.list.len();
        let at = (0..count).map(|i| (self.next + i) % count).find(|&i| {
            let here = &self.list[i];
            here.may_receive && here.consumer.is_active() && here.consumer.try_take_credit()
        })?;
        self.next = (at + 1) % count;
        Some(self.list[at].consumer.clone())
    }
}
