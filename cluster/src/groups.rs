//! The queue groups this member runs, by name: started when the broker
//! joins one (a replicated queue is declared, or recovered at start),
//! stopped and deleted when it leaves. The cluster port finds a group's Raft
//! here for the messages addressed to it. Which members vote in a group
//! and which one starts it: `placement.rs`; how: `formation.rs`.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::watch;
use warren_broker::{LeaderStamp, Replicas, ReplicatedGroup, ReplicatedMachine, ReplicationError, Replied};

use crate::formation::{form, keep_learners};
use crate::liveness::Liveness;
use crate::placement::{place, Placement};

use crate::log_store::LogStore;
use crate::network::{GroupNetwork, Peers};
use crate::queue_group::{GroupEntry, QueueMachine, QueueRaft, QueueTypes};
use crate::raft_config::{raft_config, LogKeeping};
use crate::roster::Roster;
use crate::writes::{self, Writer};

/// Every queue group of this member.
pub(crate) struct Groups {
    roster: Roster,
    peers: Peers,
    writer: Writer,
    liveness: Arc<Liveness>,
    dir: PathBuf,
    running: DashMap<String, Arc<Group>>,
}

/// One group: its Raft once it has started.
pub(crate) struct Group {
    name: String,
    placement: Placement,
    raft: watch::Sender<Option<QueueRaft>>,
    peers: Peers,
    writer: Writer,
    dir: PathBuf,
    groups: std::sync::Weak<Groups>,
}

impl Groups {
    pub(crate) fn new(
        roster: Roster,
        peers: Peers,
        writer: Writer,
        liveness: Arc<Liveness>,
        dir: PathBuf,
    ) -> Arc<Groups> {
        Arc::new(Groups {
            roster,
            peers,
            writer,
            liveness,
            dir,
            running: DashMap::new(),
        })
    }

    /// The group `name` (of `size` voters, every member when None),
    /// started here if it is not running yet.
    pub(crate) fn join(
        self: &Arc<Self>,
        name: &str,
        size: Option<NonZeroUsize>,
        machine: Arc<dyn ReplicatedMachine>,
    ) -> Arc<Group> {
        if let Some(group) = self.running.get(name) {
            return group.clone();
        }
        let (raft, _) = watch::channel(None);
        let group = Arc::new(Group {
            name: name.to_string(),
            placement: place(&self.roster, name, size),
            raft,
            peers: self.peers.clone(),
            writer: self.writer.clone(),
            dir: self.dir.join(name),
            groups: Arc::downgrade(self),
        });
        self.running.insert(name.to_string(), group.clone());
        tokio::spawn(self.clone().start(group.clone(), machine));
        group
    }

    async fn start(self: Arc<Self>, group: Arc<Group>, machine: Arc<dyn ReplicatedMachine>) {
        let dir = group.dir.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let log = LogStore::<QueueTypes>::open(&dir).map_err(|e| e.to_string())?;
            let machine = QueueMachine::open(&dir, machine).map_err(|e| e.to_string())?;
            Ok::<_, String>((log, machine))
        })
        .await;
        let (log, machine) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => return tracing::error!("queue group {}: opening its log: {e}", group.name),
            Err(e) => return tracing::error!("queue group {}: {e}", group.name),
        };
        // An image is the whole queue: taken every 20,000 entries, or
        // sooner when the log grows large (`compact`). A busy queue's
        // entries are batches of up to 4 MiB: 16 of them behind a
        // snapshot are as much as the log may grow to before the next.
        // At most 64 entries a message (and at most 2 MiB, `log_store.rs`).
        let keeping = LogKeeping {
            every: 20_000,
            keep: 16,
        };
        let config = match raft_config("warren-queue", keeping, 64) {
            Ok(config) => config,
            Err(e) => return tracing::error!("queue group {}: {e}", group.name),
        };
        let network = GroupNetwork::new(self.peers.clone(), &group.name);
        let watched = (log.clone(), machine.clone());
        let raft = match QueueRaft::new(self.roster.this_node, config, network, log, machine).await {
            Ok(raft) => raft,
            Err(e) => return tracing::error!("queue group {}: {e}", group.name),
        };
        let placement = &group.placement;
        let this = self.roster.this_node;
        if placement.voters.contains_key(&this) {
            let what = format!("queue group {}", group.name);
            tokio::spawn(form(
                raft.clone(),
                placement.voters.clone(),
                this == placement.first,
                what,
            ));
        }
        tokio::spawn(keep_learners(
            raft.clone(),
            self.roster.clone(),
            placement.learners.clone(),
        ));
        group.raft.send_replace(Some(raft.clone()));
        tokio::spawn(compact(raft, watched.0, watched.1, group.raft.subscribe()));
    }

    /// A running group's Raft, for the cluster port.
    pub(crate) fn raft(&self, name: &str) -> Option<QueueRaft> {
        self.running.get(name).and_then(|g| g.raft.borrow().clone())
    }

    /// Stops every group (the node shuts down).
    pub(crate) async fn shutdown(&self) {
        let rafts: Vec<QueueRaft> = self.running.iter().filter_map(|g| g.raft.borrow().clone()).collect();
        for raft in rafts {
            let _ = raft.shutdown().await;
        }
    }
}

/// The log's size past which a snapshot is taken (and the log purged
/// behind it): at least this, and at least twice the last image, so that
/// writing images costs at most as much as the log they replace.
const COMPACT_ABOVE: u64 = 64 << 20;

/// Takes a snapshot when the log grows large: batched entries make the
/// entry count a poor measure of the disk a log holds.
async fn compact(
    raft: QueueRaft,
    log: LogStore<QueueTypes>,
    machine: QueueMachine,
    mut running: watch::Receiver<Option<QueueRaft>>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let mut asked_at = 0;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            changed = running.changed() => if changed.is_err() { return },
        }
        let size = log.size_on_disk();
        let limit = COMPACT_ABOVE.max(2 * machine.image_bytes());
        // Once per growth past the limit: a snapshot the log outgrew
        // again is asked for again.
        if size > limit && size > asked_at + limit / 2 {
            asked_at = size;
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
        } else if size < asked_at {
            asked_at = 0;
        }
    }
}

/// A group's Raft, once it has started (within a few seconds).
async fn started(mut raft: watch::Receiver<Option<QueueRaft>>, name: String) -> Result<QueueRaft, ReplicationError> {
    let waited = tokio::time::timeout(Duration::from_secs(5), raft.wait_for(Option::is_some)).await;
    match waited {
        Ok(Ok(raft)) => raft
            .clone()
            .ok_or_else(|| ReplicationError::Unavailable("no group".into())),
        _ => Err(ReplicationError::Unavailable(format!(
            "queue group {name} did not start"
        ))),
    }
}

impl ReplicatedGroup for Group {
    fn replicas(&self) -> Replicas {
        let Some(groups) = self.groups.upgrade() else {
            return Replicas::default();
        };
        let roster = &groups.roster;
        let leader = self
            .raft
            .borrow()
            .as_ref()
            .and_then(|raft| raft.metrics().borrow().current_leader);
        let voters = &self.placement.voters;
        Replicas {
            leader: leader.and_then(|id| roster.members.get(&id)).map(|m| m.name.clone()),
            members: voters.values().map(|m| m.name.clone()).collect(),
            online: voters
                .iter()
                .filter(|(id, _)| groups.liveness.up(roster, **id))
                .map(|(_, m)| m.name.clone())
                .collect(),
        }
    }

    fn propose(&self, entry: Vec<u8>) -> Replied {
        let peers = self.peers.clone();
        let writer = self.writer.clone();
        let path = format!("/group/{}/propose", self.name);
        let ready = started(self.raft.subscribe(), self.name.clone());
        Box::pin(async move {
            let raft = ready.await?;
            let entry = GroupEntry {
                stamp: LeaderStamp::default(),
                commands: entry,
            };
            writes::write(&raft, &peers, &writer, entry, &path)
                .await
                .map(|(_, reply)| reply.0)
                .map_err(ReplicationError::Unavailable)
        })
    }

    fn leave(&self) {
        if let Some(groups) = self.groups.upgrade() {
            groups.running.remove(&self.name);
        }
        let raft = self.raft.borrow().clone();
        let dir = self.dir.clone();
        tokio::spawn(async move {
            if let Some(raft) = raft {
                let _ = raft.shutdown().await;
            }
            let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
            if let Ok(Err(e)) = removed {
                tracing::warn!("deleting a queue group's log: {e}");
            }
        });
    }
}
