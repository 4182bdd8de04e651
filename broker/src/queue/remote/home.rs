//! The home side of a classic queue other nodes reach over the cluster
//! port: it answers their calls (`calls.rs`) on the real queue, and keeps
//! what each node took until that node settles it ([`Holds`]). What a node
//! took goes back to the queue, marked redelivered, once that node stops
//! answering for a few seconds or comes back as a new life, as a channel's
//! unacknowledged messages go back when its connection closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::calls::{Answer, Call, Holder, Outcome, QueueRef, Taken};
use crate::durability::Durability;
use crate::queue::backend::{Enqueued, Settlement};
use crate::queue::{Queue, QueueEntry};

/// How long a holder may not answer before what it holds goes back.
const GONE_AFTER: Duration = Duration::from_secs(5);
/// How often a waiting `Take` looks at the queue again.
const TAKE_POLL: Duration = Duration::from_millis(10);
/// The longest a `Take` may ask to wait.
const TAKE_WAIT_MAX: Duration = Duration::from_secs(5);
/// The most body bytes one `Take` answers with (at least one message,
/// however large): the rest waits for the taker's next call.
const TAKE_BYTES: usize = 4 << 20;

/// One message a node took.
struct Hold {
    queue: Weak<Queue>,
    entry: QueueEntry,
}

/// What every node holds of this node's queues.
#[derive(Default)]
pub(crate) struct Holds {
    held: Mutex<HashMap<Holder, HashMap<u64, Hold>>>,
    /// Since when each holder's node was seen not running.
    absent: Mutex<HashMap<String, Instant>>,
    next_id: AtomicU64,
}

impl Holds {
    /// Ids start from this life's clock, so a node still holding ids from
    /// an earlier life of this home never settles a new hold by mistake.
    fn first_id() -> u64 {
        crate::clock::now_ms() << 20
    }

    /// A new life of a node called: what its earlier lives held goes back.
    fn forget_earlier_lives(&self, holder: &Holder) {
        let mut back = Vec::new();
        self.held.lock().retain(|h, holds| {
            if h.node == holder.node && h.boot != holder.boot {
                back.extend(std::mem::take(holds).into_values());
                false
            } else {
                true
            }
        });
        requeue(back);
    }

    fn hold(&self, holder: &Holder, queue: &Arc<Queue>, entry: QueueEntry) -> u64 {
        let _ = self
            .next_id
            .compare_exchange(0, Self::first_id(), Ordering::Relaxed, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.held.lock().entry(holder.clone()).or_default().insert(
            id,
            Hold {
                queue: Arc::downgrade(queue),
                entry,
            },
        );
        id
    }

    fn take_back(&self, holder: &Holder, ids: &[u64]) -> Vec<Hold> {
        let mut held = self.held.lock();
        let Some(holds) = held.get_mut(holder) else {
            return Vec::new();
        };
        let back = ids.iter().filter_map(|id| holds.remove(id)).collect();
        if holds.is_empty() {
            held.remove(holder);
        }
        back
    }

    /// Gives back what nodes that stopped answering hold (`running` says
    /// whether a node answers now); called every second.
    pub(crate) fn sweep(&self, running: impl Fn(&str) -> bool) {
        let nodes: Vec<String> = {
            let held = self.held.lock();
            let mut nodes: Vec<String> = held.keys().map(|h| h.node.clone()).collect();
            nodes.sort();
            nodes.dedup();
            nodes
        };
        let mut gone = Vec::new();
        {
            let mut absent = self.absent.lock();
            absent.retain(|node, _| nodes.contains(node));
            for node in nodes {
                if running(&node) {
                    absent.remove(&node);
                } else if absent.entry(node.clone()).or_insert_with(Instant::now).elapsed() >= GONE_AFTER {
                    gone.push(node);
                }
            }
        }
        if gone.is_empty() {
            return;
        }
        let mut back = Vec::new();
        self.held.lock().retain(|holder, holds| {
            if gone.contains(&holder.node) {
                back.extend(std::mem::take(holds).into_values());
                false
            } else {
                true
            }
        });
        if !back.is_empty() {
            tracing::info!("{} messages held by nodes that stopped answering go back", back.len());
        }
        requeue(back);
    }
}

/// Settles holds per queue.
fn settle(holds: Vec<Hold>, settlement: Settlement) {
    let mut per_queue: Vec<(Arc<Queue>, Vec<QueueEntry>)> = Vec::new();
    for hold in holds {
        let Some(queue) = hold.queue.upgrade() else { continue };
        match per_queue.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &queue)) {
            Some((_, entries)) => entries.push(hold.entry),
            None => per_queue.push((queue, vec![hold.entry])),
        }
    }
    for (queue, entries) in per_queue {
        queue.settle(entries, settlement);
    }
}

fn requeue(holds: Vec<Hold>) {
    settle(holds, Settlement::Requeue);
}

/// What answering a call needs of the broker: this node's queues (the
/// broker's, which sits above the queues), its holds and its store.
pub(crate) struct Home<'a, F: Fn(&QueueRef) -> Option<Arc<Queue>>> {
    /// Finds a queue by vhost and name.
    pub find: F,
    pub holds: &'a Holds,
    pub durability: &'a Durability,
}

impl<F: Fn(&QueueRef) -> Option<Arc<Queue>>> Home<'_, F> {
    /// The real queue a call names: None if this node is not its home.
    fn queue(&self, queue: &QueueRef) -> Option<Arc<Queue>> {
        (self.find)(queue).filter(|found| !found.is_proxy())
    }
}

/// Answers one call from another node.
pub(crate) async fn answer<F: Fn(&QueueRef) -> Option<Arc<Queue>>>(home: &Home<'_, F>, call: Call) -> Answer {
    match call {
        Call::Publish { queue, messages } => {
            let Some(queue) = home.queue(&queue) else {
                return Answer::NotFound;
            };
            publish(home.durability, &queue, messages).await
        }
        Call::Take {
            queue,
            holder,
            max,
            wait_ms,
        } => {
            home.holds.forget_earlier_lives(&holder);
            let Some(queue) = home.queue(&queue) else {
                return Answer::NotFound;
            };
            // A node whose consumers wait on it uses it (`x-expires`).
            queue.touch();
            let deadline = Instant::now() + Duration::from_millis(u64::from(wait_ms)).min(TAKE_WAIT_MAX);
            loop {
                let messages = take(home.holds, &queue, &holder, max);
                if !messages.is_empty() || Instant::now() >= deadline {
                    return Answer::Taken {
                        messages,
                        ready: queue.message_count(),
                    };
                }
                tokio::time::sleep(TAKE_POLL).await;
            }
        }
        Call::Settle {
            queue: _,
            holder,
            ids,
            outcome,
        } => {
            let holds = home.holds.take_back(&holder, &ids);
            let settlement = match outcome {
                Outcome::Ack => Settlement::Ack,
                Outcome::Requeue => Settlement::Requeue,
                Outcome::Discard => Settlement::Discard,
                Outcome::Return => {
                    for hold in holds {
                        if let Some(queue) = hold.queue.upgrade() {
                            queue.return_undelivered(hold.entry, true);
                        }
                    }
                    return Answer::Done;
                }
            };
            settle(holds, settlement);
            Answer::Done
        }
        Call::Depth { queue } => match home.queue(&queue) {
            Some(queue) => Answer::Depth {
                ready: queue.message_count(),
                consumers: queue.consumer_count(),
            },
            None => Answer::NotFound,
        },
        Call::Purge { queue } => match home.queue(&queue) {
            Some(queue) => Answer::Purged(queue.purge()),
            None => Answer::NotFound,
        },
    }
}

fn take(holds: &Holds, queue: &Arc<Queue>, holder: &Holder, max: u32) -> Vec<Taken> {
    let mut taken = Vec::new();
    let mut bytes = 0;
    while taken.len() < max as usize && bytes < TAKE_BYTES {
        let Some((entry, _)) = queue.get(true) else { break };
        bytes += entry.message.body_size();
        let (message, redelivered, delivery_count) = (entry.message.encode(), entry.redelivered, entry.delivery_count);
        let id = holds.hold(holder, queue, entry);
        taken.push(Taken {
            id,
            message: message.into(),
            redelivered,
            delivery_count,
        });
    }
    taken
}

/// Publishes into the queue and waits until what was stored is synced.
async fn publish(durability: &Durability, queue: &Arc<Queue>, messages: Vec<serde_bytes::ByteBuf>) -> Answer {
    let mut outcomes = Vec::with_capacity(messages.len());
    let mut epoch = None;
    for bytes in messages {
        let Some(message) = crate::message::Message::decode(bytes.into_vec()) else {
            outcomes.push(false);
            continue;
        };
        match queue.publish(message) {
            Enqueued::Accepted | Enqueued::Replicating(_) => outcomes.push(true),
            Enqueued::Stored => {
                epoch = Some(durability.wrote());
                outcomes.push(true);
            }
            Enqueued::Rejected => outcomes.push(false),
        }
    }
    let Some(epoch) = epoch else {
        return Answer::Published(outcomes);
    };
    let mut synced = durability.subscribe();
    durability.request_sync();
    let verdict = loop {
        if let Some(verdict) = synced.borrow_and_update().verdict(epoch) {
            break verdict;
        }
        if synced.changed().await.is_err() {
            break false;
        }
    };
    if !verdict {
        // The sync failed: nothing of this call may be confirmed.
        outcomes.iter_mut().for_each(|o| *o = false);
    }
    Answer::Published(outcomes)
}
