//! The home side of a classic queue other nodes reach over the cluster
//! port: it answers their calls (`calls.rs`) on the real queue, and keeps
//! what each node took until that node settles it ([`Holds`]). What a node
//! took goes back to the queue, marked redelivered, once that node stops
//! answering for a few seconds or comes back as a new life, as a channel's
//! unacknowledged messages go back when its connection closes; so do the
//! stand-ins of its consumers (`stand_ins.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::calls::{Answer, Call, ConsumerSet, ConsumerStatus, Holder, Outcome, QueueRef, Taken};
use super::stand_ins::{Emptied, StandIns};
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

/// How many released takes a holder's record remembers.
const RELEASED_KEPT: usize = 1024;

/// One message a node took.
struct Hold {
    queue: Weak<Queue>,
    entry: QueueEntry,
    /// The take that took it.
    batch: u64,
}

/// A call from an earlier life of a node than one that called already.
pub(crate) struct Stale;

/// What every node holds of this node's queues.
#[derive(Default)]
pub(crate) struct Holds {
    held: Mutex<HashMap<Holder, HashMap<u64, Hold>>>,
    /// Since when each holder's node was seen not running.
    absent: Mutex<HashMap<String, Instant>>,
    /// The newest life each node called from.
    lives: Mutex<HashMap<String, u64>>,
    /// Takes whose answers never reached their holders, newest last
    /// (locked inside `held`, so a take still running holds nothing more).
    released: Mutex<HashMap<Holder, VecDeque<u64>>>,
    next_id: AtomicU64,
    /// Other nodes' consumers of this node's queues.
    stand_ins: StandIns,
}

impl Holds {
    /// Ids start from this life's clock, so a node still holding ids from
    /// an earlier life of this home never settles a new hold by mistake.
    fn first_id() -> u64 {
        crate::clock::now_ms() << 20
    }

    /// A call from `holder`: if it is a node's new life, what its earlier
    /// lives held goes back, and their consumers' stand-ins go (looked at
    /// once per life). `Stale` for a call of an earlier life that came
    /// late, which is not answered.
    fn greet(&self, holder: &Holder) -> Result<Emptied, Stale> {
        {
            let mut lives = self.lives.lock();
            match lives.get(&holder.node) {
                Some(&known) if known == holder.boot => return Ok(Emptied::new()),
                Some(&known) if known > holder.boot => return Err(Stale),
                _ => {
                    lives.insert(holder.node.clone(), holder.boot);
                }
            }
        }
        let earlier = |h: &Holder| h.node == holder.node && h.boot < holder.boot;
        let emptied = self.stand_ins.drop_where(earlier);
        let mut back = Vec::new();
        self.released.lock().retain(|h, _| !earlier(h));
        self.held.lock().retain(|h, holds| {
            if earlier(h) {
                back.extend(std::mem::take(holds).into_values());
                false
            } else {
                true
            }
        });
        requeue(back);
        Ok(emptied)
    }

    /// Holds `entry` for `holder`'s take `batch`; gives it back if that
    /// take was released meanwhile.
    fn hold(&self, holder: &Holder, batch: u64, queue: &Arc<Queue>, entry: QueueEntry) -> Result<u64, QueueEntry> {
        let _ = self
            .next_id
            .compare_exchange(0, Self::first_id(), Ordering::Relaxed, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut held = self.held.lock();
        let released = self.released.lock();
        if released.get(holder).is_some_and(|batches| batches.contains(&batch)) {
            return Err(entry);
        }
        held.entry(holder.clone()).or_default().insert(
            id,
            Hold {
                queue: Arc::downgrade(queue),
                entry,
                batch,
            },
        );
        Ok(id)
    }

    /// `holder` never got the answer to its take `batch`: what it held
    /// comes out, and the take (if still running) holds nothing more.
    fn release(&self, holder: &Holder, batch: u64) -> Vec<Hold> {
        let mut held = self.held.lock();
        {
            let mut released = self.released.lock();
            let batches = released.entry(holder.clone()).or_default();
            batches.push_back(batch);
            if batches.len() > RELEASED_KEPT {
                batches.pop_front();
            }
        }
        let Some(holds) = held.get_mut(holder) else {
            return Vec::new();
        };
        let ids: Vec<u64> = holds
            .iter()
            .filter(|(_, h)| h.batch == batch)
            .map(|(id, _)| *id)
            .collect();
        let back = ids.iter().filter_map(|id| holds.remove(id)).collect();
        if holds.is_empty() {
            held.remove(holder);
        }
        back
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

    /// Gives back what nodes that stopped answering hold, and takes out
    /// their consumers' stand-ins (`running` says whether a node answers
    /// now); called every second. Answers the queues left with no consumer.
    pub(crate) fn sweep(&self, running: impl Fn(&str) -> bool) -> Emptied {
        let nodes: Vec<String> = {
            let held = self.held.lock();
            let mut nodes: Vec<String> = held.keys().map(|h| h.node.clone()).collect();
            nodes.extend(self.stand_ins.holders().into_iter().map(|h| h.node));
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
        // (Also forgets the visits of queues deleted since.)
        let emptied = self.stand_ins.drop_where(|h| gone.contains(&h.node));
        if gone.is_empty() {
            return emptied;
        }
        self.released.lock().retain(|h, _| !gone.contains(&h.node));
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
        emptied
    }

    /// Applies a node's consumer set for a queue; deletes (through `home`)
    /// a queue it left with no consumer, if the queue auto-deletes.
    fn apply_consumers<F: Fn(&QueueRef) -> Option<Arc<Queue>>>(
        &self,
        home: &Home<'_, F>,
        holder: &Holder,
        target: &QueueRef,
        queue: &Arc<Queue>,
        set: ConsumerSet,
    ) -> ConsumerStatus {
        let mut emptied = Emptied::new();
        let status = self.stand_ins.apply(holder, target, queue, set, &mut emptied);
        home.auto_delete(emptied);
        status
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

/// Back in place, not redelivered: they never reached a consumer.
fn return_in_place(holds: Vec<Hold>) {
    for hold in holds {
        if let Some(queue) = hold.queue.upgrade() {
            queue.return_undelivered(hold.entry, true);
        }
    }
}

/// What answering a call needs of the broker: this node's queues (the
/// broker's, which sits above the queues), its holds and its store.
pub(crate) struct Home<'a, F: Fn(&QueueRef) -> Option<Arc<Queue>>> {
    /// Finds a queue by vhost and name.
    pub find: F,
    pub holds: &'a Holds,
    pub durability: &'a Durability,
    /// Deletes an auto-delete queue whose last consumer went, on every node.
    pub delete_everywhere: &'a (dyn Fn(&Arc<Queue>) + Sync),
}

impl<F: Fn(&QueueRef) -> Option<Arc<Queue>>> Home<'_, F> {
    /// The real queue a call names: None if this node is not its home.
    fn queue(&self, queue: &QueueRef) -> Option<Arc<Queue>> {
        (self.find)(queue).filter(|found| !found.is_proxy())
    }

    /// The queue a node's call names, once that node is greeted (None: a
    /// call of an earlier life of it, or no such queue here).
    fn greet_and_find(&self, holder: &Holder, target: &QueueRef) -> Option<Arc<Queue>> {
        match self.holds.greet(holder) {
            Ok(emptied) => self.auto_delete(emptied),
            Err(Stale) => return None,
        }
        self.queue(target)
    }

    /// Deletes those of `emptied` that auto-delete.
    fn auto_delete(&self, emptied: Emptied) {
        for queue in emptied.into_iter().filter(|q| q.settings.auto_delete) {
            (self.delete_everywhere)(&queue);
        }
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
            queue: target,
            holder,
            batch,
            for_consumers,
            max,
            wait_ms,
            consumers,
        } => {
            let Some(queue) = home.greet_and_find(&holder, &target) else {
                return Answer::NotFound;
            };
            // A node whose consumers wait on it uses it (`x-expires`).
            queue.touch();
            let status = home.holds.apply_consumers(home, &holder, &target, &queue, consumers);
            let deadline = Instant::now() + Duration::from_millis(u64::from(wait_ms)).min(TAKE_WAIT_MAX);
            loop {
                // A take for consumers takes only while one of them may
                // receive (looked at again each time: one may be
                // cancelled, or another become the single active one).
                let may = !for_consumers || home.holds.stand_ins.may_receive(&holder, &target, &queue);
                let messages = if may {
                    take(home.holds, &queue, &holder, batch, max)
                } else {
                    Vec::new()
                };
                if !messages.is_empty() || Instant::now() >= deadline {
                    return Answer::Taken {
                        messages,
                        ready: queue.message_count(),
                        consumers: status,
                    };
                }
                tokio::time::sleep(TAKE_POLL).await;
            }
        }
        Call::Consumers {
            queue: target,
            holder,
            consumers,
        } => {
            let Some(queue) = home.greet_and_find(&holder, &target) else {
                return Answer::NotFound;
            };
            Answer::Consumers(home.holds.apply_consumers(home, &holder, &target, &queue, consumers))
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
                    return_in_place(holds);
                    return Answer::Done;
                }
            };
            settle(holds, settlement);
            Answer::Done
        }
        Call::Release {
            queue: _,
            holder,
            batch,
        } => {
            return_in_place(home.holds.release(&holder, batch));
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

fn take(holds: &Holds, queue: &Arc<Queue>, holder: &Holder, batch: u64, max: u32) -> Vec<Taken> {
    let mut taken = Vec::new();
    let mut bytes = 0;
    while taken.len() < max as usize && bytes < TAKE_BYTES {
        let Some((entry, _)) = queue.get(true) else { break };
        bytes += entry.message.body_size();
        let (message, redelivered, delivery_count) = (entry.message.encode(), entry.redelivered, entry.delivery_count);
        let id = match holds.hold(holder, batch, queue, entry) {
            Ok(id) => id,
            Err(entry) => {
                // Released: its holder gave up on this take.
                queue.return_undelivered(entry, true);
                break;
            }
        };
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
