//! Consumers on other nodes as a classic queue's home sees them: each one
//! stands in the queue's own consumer list as a consumer that never takes
//! a delivery (its node takes messages for it with `Take`), so exclusive
//! use, single active consumer, auto-delete, if-unused and the consumer
//! count see every node's consumers, as RabbitMQ's do. A node sends its
//! whole set of consumers of a queue when it changes and with every take
//! (`calls::ConsumerSet`), so a home that restarted learns them again.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use warren_protocol::{FieldTable, ShortStr};

use super::calls::{ConsumerSet, ConsumerStatus, Holder, QueueRef, RemoteConsumer};
use crate::ids::ConnectionId;
use crate::queue::{Consumer, Credit, Deliveries, Delivery, DeliverySink, Queue, Transit};

/// Queues whose last consumer was a stand-in that went: the caller, which
/// can reach every node, deletes the auto-delete ones among them.
pub(crate) type Emptied = Vec<Arc<Queue>>;

/// One node life's consumers of one queue.
struct Visit {
    queue: Weak<Queue>,
    /// The newest set applied.
    version: u64,
    stand_ins: Vec<(u64, Arc<Consumer>)>,
}

impl Visit {
    fn new(queue: &Arc<Queue>) -> Self {
        Visit {
            queue: Arc::downgrade(queue),
            version: 0,
            stand_ins: Vec::new(),
        }
    }
}

/// The stand-ins of every node's consumers of this node's queues.
#[derive(Default)]
pub(crate) struct StandIns {
    visits: Mutex<HashMap<(Holder, QueueRef), Visit>>,
}

impl StandIns {
    /// Makes `holder`'s stand-ins in `queue` follow `set`, if it is newer
    /// than the last one applied; says which may receive now and which the
    /// queue refused. A queue left with no consumer is added to `emptied`.
    pub(crate) fn apply(
        &self,
        holder: &Holder,
        target: &QueueRef,
        queue: &Arc<Queue>,
        set: ConsumerSet,
        emptied: &mut Emptied,
    ) -> ConsumerStatus {
        let mut visits = self.visits.lock();
        let visit = visits
            .entry((holder.clone(), target.clone()))
            .or_insert_with(|| Visit::new(queue));
        if !Weak::ptr_eq(&visit.queue, &Arc::downgrade(queue)) {
            // Deleted and declared again since: its stand-ins went with it.
            *visit = Visit::new(queue);
        }
        let mut refused = Vec::new();
        if set.version > visit.version {
            visit.version = set.version;
            // Those gone first (an exclusive one may be replaced by another).
            let mut last_gone = false;
            visit.stand_ins.retain(|(key, consumer)| {
                let keep = set.consumers.iter().any(|c| c.key == *key);
                if !keep {
                    last_gone |= queue.remove_consumer(consumer);
                }
                keep
            });
            for wanted in &set.consumers {
                if visit.stand_ins.iter().any(|(key, _)| *key == wanted.key) {
                    continue;
                }
                let consumer = stand_in(wanted);
                match queue.add_consumer(consumer.clone()) {
                    Ok(()) => visit.stand_ins.push((wanted.key, consumer)),
                    Err(_) => refused.push(wanted.key),
                }
            }
            if last_gone && queue.consumer_count() == 0 {
                emptied.push(queue.clone());
            }
        }
        ConsumerStatus {
            active: active(queue, visit),
            refused,
        }
    }

    /// Whether `holder` has a consumer of `queue` that may receive now.
    pub(crate) fn may_receive(&self, holder: &Holder, target: &QueueRef, queue: &Arc<Queue>) -> bool {
        let visits = self.visits.lock();
        visits
            .get(&(holder.clone(), target.clone()))
            .is_some_and(|visit| Weak::ptr_eq(&visit.queue, &Arc::downgrade(queue)) && !active(queue, visit).is_empty())
    }

    /// Every holder with stand-ins.
    pub(crate) fn holders(&self) -> Vec<Holder> {
        self.visits.lock().keys().map(|(holder, _)| holder.clone()).collect()
    }

    /// Takes out the stand-ins of every holder `gone` names (a node that
    /// stopped answering, an earlier life of a node), and forgets the
    /// visits of queues that were deleted.
    pub(crate) fn drop_where(&self, gone: impl Fn(&Holder) -> bool) -> Emptied {
        let mut dropped = Vec::new();
        self.visits.lock().retain(|(holder, _), visit| {
            if visit.queue.strong_count() == 0 {
                false
            } else if gone(holder) {
                dropped.push((visit.queue.clone(), std::mem::take(&mut visit.stand_ins)));
                false
            } else {
                true
            }
        });
        let mut emptied = Vec::new();
        for (queue, stand_ins) in dropped {
            let Some(queue) = queue.upgrade() else { continue };
            let mut last_gone = false;
            for (_, consumer) in stand_ins {
                last_gone |= queue.remove_consumer(&consumer);
            }
            if last_gone {
                emptied.push(queue);
            }
        }
        emptied
    }
}

/// The keys of a visit's stand-ins that may receive: all of them, or with
/// a single active consumer the one that is first in the queue's list.
fn active(queue: &Arc<Queue>, visit: &Visit) -> Vec<u64> {
    let first = queue
        .args()
        .single_active_consumer
        .then(|| queue.consumers().into_iter().next());
    visit
        .stand_ins
        .iter()
        .filter(|(_, consumer)| match &first {
            None => true,
            Some(first) => first.as_ref().is_some_and(|f| Arc::ptr_eq(f, consumer)),
        })
        .map(|(key, _)| *key)
        .collect()
}

/// A consumer in the queue's list that never has credit: the queue never
/// delivers to it.
fn stand_in(remote: &RemoteConsumer) -> Arc<Consumer> {
    let credit = Credit::new(1);
    credit.try_take();
    Arc::new(Consumer {
        tag: ShortStr::from_utf8(remote.tag.as_bytes()).unwrap_or_default(),
        channel: 0,
        connection: ConnectionId::ELSEWHERE,
        arguments: FieldTable::default(),
        sink: Arc::new(Elsewhere),
        no_ack: false,
        exclusive: remote.exclusive,
        priority: remote.priority,
        credit,
        channel_credit: Arc::new(Credit::new(0)),
        transit: Transit::default(),
        active: AtomicBool::new(true),
        stands_in: true,
    })
}

/// A stand-in's sink: refuses deliveries (none are made, as it has no
/// credit); a cancel is its node's to send.
#[derive(Debug)]
struct Elsewhere;

impl DeliverySink for Elsewhere {
    fn deliver(&self, delivery: Delivery) -> Result<(), Delivery> {
        Err(delivery)
    }

    fn deliver_many(&self, deliveries: Deliveries) -> Result<(), Deliveries> {
        Err(deliveries)
    }

    fn cancelled(&self, _channel: u16, _consumer_tag: ShortStr) {}
}
