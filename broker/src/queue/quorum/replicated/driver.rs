//! A replicated queue's driver on this node: the one task that proposes
//! what this node has for the queue's group (publishes, settlements,
//! checkouts for its consumers, the leader's expiries and x-expires), in
//! order and in batches of up to 512 commands or 4 MiB, one entry at a
//! time, and answers who waits once each entry is committed.
//!
//! One entry at a time: openraft 0.9 appends and syncs each entry on its
//! own in the Raft core, so entries proposed while one is on its way make
//! smaller entries, not more messages (tried: 15-19k msg/s with 2 and 4 on
//! their way, against 18k with one).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{machine, Command, Outcome, Pending, Reply, Shared};
use crate::replication::{ClusterLink, ReplicatedGroup};

/// Most commands proposed in one entry.
const BATCH: usize = 512;
/// Most message bytes proposed in one entry (past it the batch closes):
/// an entry is one piece of a Raft message between members.
const BATCH_BYTES: usize = 4 << 20;

/// Proposes what waits, in order and in batches, and asks for messages
/// when this node's consumers can take them. Runs until the queue goes.
pub(super) async fn drive(
    shared: Arc<Shared>,
    group: Arc<dyn ReplicatedGroup>,
    link: Arc<dyn ClusterLink>,
    mut inbox: mpsc::UnboundedReceiver<Pending>,
) {
    let mut watch = tokio::time::interval(Duration::from_millis(250));
    let mut absent = Absences::default();
    // Settlements and line changes a failed proposal carried: they go
    // again, numbered (`Once`) so that one the failed proposal did
    // commit after all is not applied twice; an ack made through a
    // partition is not lost when the partition heals.
    let mut again: Vec<Pending> = Vec::new();
    let mut once_id = 0u64;
    let mut expiry_asked = None;
    loop {
        let mut batch = std::mem::take(&mut again);
        tokio::select! {
            next = inbox.recv() => match next {
                Some(pending) => batch.push(pending),
                None => return,
            },
            _ = shared.wake.notified() => {}
            _ = watch.tick() => {
                for node in absent.long_gone(&link) {
                    tracing::info!("quorum queue: node {node} is gone; what it held goes back to the queue");
                    batch.push(Pending::unanswered(Command::Reset { node, keep: 0 }));
                }
                for key in shared.unattached() {
                    batch.push(Pending::unanswered(Command::Attach(key)));
                }
                let leads = group.replicas().leader.as_deref() == Some(shared.me.node.as_str());
                if leads && shared.expiry_due() {
                    // The leader's clock decides: its entry expires the head.
                    batch.push(Pending::unanswered(Command::Expire));
                }
                // x-expires: the leader asks every node to delete it
                // (again after a while, should the first ask fail).
                let asked_lately = expiry_asked.is_some_and(|at: std::time::Instant| at.elapsed() < GONE_AFTER);
                if leads && !asked_lately && shared.queue_unused() {
                    expiry_asked = Some(std::time::Instant::now());
                    if let (Some(queue), Some(host)) = (shared.queue(), shared.host.upgrade()) {
                        tracing::debug!(queue = %queue.name, "quorum queue expired (x-expires)");
                        host.delete_expired(&queue);
                    }
                }
            }
        }
        let mut bytes: usize = batch.iter().map(|p| p.command.message_bytes()).sum();
        while batch.len() < BATCH && bytes < BATCH_BYTES {
            match inbox.try_recv() {
                Ok(pending) => {
                    bytes += pending.command.message_bytes();
                    batch.push(pending);
                }
                Err(_) => break,
            }
        }
        let wanted = shared.checkout_wanted();
        if wanted > 0 {
            batch.push(Pending::unanswered(Command::Checkout {
                node: shared.me.clone(),
                max: wanted,
            }));
        }
        if batch.is_empty() {
            continue;
        }
        if batch.iter().any(|p| matches!(p.command, Command::Detach(_))) {
            release_before_detach(&shared, &mut batch).await;
        }
        // The commands go into the entry; who waits stays here. What
        // may go again is numbered (`Once`) the first time it goes.
        let (mut commands, waiters): (Vec<Command>, Vec<_>) = batch
            .into_iter()
            .map(|p| {
                let command = if p.command.goes_again() {
                    once_id += 1;
                    Command::Once {
                        by: shared.me.clone(),
                        id: once_id,
                        command: Box::new(p.command),
                    }
                } else {
                    p.command
                };
                (command, (p.reply, p.ticket, p.share))
            })
            .unzip();
        tracing::debug!("proposing {} commands, checkout of {wanted}", commands.len());
        let answer = group.propose(machine::encode_commands(&commands)).await;
        let replies = match &answer {
            Ok(bytes) => machine::decode_replies(bytes),
            Err(e) => {
                tracing::warn!("a quorum queue could not commit {} commands: {e}", commands.len());
                None
            }
        };
        if wanted > 0 {
            let mut local = shared.local.lock();
            local.requested = local.requested.saturating_sub(wanted);
        }
        let failed = replies.is_none();
        if !failed {
            let mine = commands
                .iter()
                .filter(|c| matches!(c, Command::Checkout { node, .. } if *node == shared.me))
                .count() as u64;
            shared.checkouts_answered.fetch_add(mine, Ordering::AcqRel);
        }
        if failed {
            again = commands
                .drain(..)
                .filter(|c| matches!(c, Command::Once { .. }))
                .map(Pending::unanswered)
                .collect();
        }
        let mut replies = replies.unwrap_or_default().into_iter();
        // Each publish leaves the backlog as it is answered.
        for (waiter, ticket, _share) in waiters {
            let reply = replies.next();
            if let Some(ticket) = ticket {
                ticket.settle(reply.as_ref().is_some_and(|r| *r == Reply::Enqueued));
            }
            if let Some(waiter) = waiter {
                let _ = waiter.send(reply);
            }
        }
        if failed {
            // No majority now: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            shared.wake.notify_one();
        }
    }
}

/// How long a consumer's leaving waits for its node to apply the
/// checkouts made for it.
const LANDING_WAIT: Duration = Duration::from_secs(2);

/// A consumer of a single-active-consumer queue leaves the line: what was
/// checked out for it goes back in the same entry, before it leaves, so
/// the next in line (maybe on another node) finds those messages first.
/// Some may not be here yet: a checkout committed before the leaving and
/// not applied here yet (this node follows, and hears of commits later),
/// and deliveries on their way to the consumer's connection when it went
/// (they come back). The leaving waits for them, a while at most.
async fn release_before_detach(shared: &Shared, batch: &mut Vec<Pending>) {
    let landed = || {
        shared.checkouts_applied.load(Ordering::Acquire) >= shared.checkouts_answered.load(Ordering::Acquire)
            && shared.leaving.lock().iter().all(|c| c.transit.is_empty())
    };
    let _ = tokio::time::timeout(LANDING_WAIT, async {
        loop {
            let notified = shared.checkout_landed.notified();
            if landed() {
                return;
            }
            // A delivery on its way is counted off just before it comes
            // back: look again shortly rather than wait for a notice.
            let _ = tokio::time::timeout(Duration::from_millis(10), notified).await;
        }
    })
    .await;
    let detached: Vec<_> = batch
        .iter()
        .filter_map(|p| match &p.command {
            Command::Detach(key) => Some(key.clone()),
            _ => None,
        })
        .collect();
    shared.leaving.lock().retain(|c| !detached.contains(&shared.key(c)));
    let orphans = shared.take_orphans();
    if orphans.is_empty() {
        return;
    }
    let at = batch
        .iter()
        .position(|p| matches!(p.command, Command::Detach(_)))
        .unwrap_or(0);
    batch.insert(
        at,
        Pending::unanswered(Command::Settle {
            node: shared.me.clone(),
            seqs: orphans,
            outcome: Outcome::Release,
            limit: None,
        }),
    );
}

/// How long a member may be gone before what it held is given back.
const GONE_AFTER: Duration = Duration::from_secs(5);

/// Members not seen running, since when, and whether their holdings were
/// already given back.
#[derive(Default)]
struct Absences {
    since: std::collections::HashMap<String, (std::time::Instant, bool)>,
}

impl Absences {
    /// The members gone for longer than `GONE_AFTER` whose messages have
    /// not been given back yet.
    fn long_gone(&mut self, link: &Arc<dyn ClusterLink>) -> Vec<String> {
        let mut gone = Vec::new();
        for member in link.members() {
            if member.running || member.this_node {
                self.since.remove(&member.name);
                continue;
            }
            let (since, reset) = self
                .since
                .entry(member.name.clone())
                .or_insert((std::time::Instant::now(), false));
            if !*reset && since.elapsed() >= GONE_AFTER {
                *reset = true;
                gone.push(member.name);
            }
        }
        gone
    }
}
