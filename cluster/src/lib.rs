//! Warren's cluster: nodes configured statically (`--node-name`,
//! `--cluster-listen`, `--cluster-peers`) that keep their definitions the
//! same through one Raft group (openraft), the metadata group, over the
//! cluster port.
//!
//! [`start`] opens this node's Raft log (Warren's store: `RaftLog`), loads
//! the state machine (the broker's own definitions, through `Admin`),
//! serves the cluster port, lets the first member by name start the group
//! when no node has a log yet, and installs itself as the broker's
//! `MetadataLog`: from then on a definition change made on any node is
//! proposed to the leader (forwarded over the cluster port when the leader
//! is another node), committed on a majority, and applied on every node in
//! the log's order.
//!
//! The files: `roster.rs` (members and their ids), `log_store.rs`
//! (openraft's log storage on Warren's store), `metadata.rs` (the group's
//! types and state machine), `network.rs` and `service.rs` (the two sides
//! of the cluster port), `liveness.rs` (which members answer).

// openraft's error types are large by design and are what its traits return.
#![allow(clippy::result_large_err)]

mod liveness;
mod log_store;
mod metadata;
mod network;
mod roster;
mod service;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::watch;
use warren_broker::{Admin, ClusterSettings, MemberView, MetadataChange, MetadataLog, Proposal, ReplicationError};

use crate::liveness::Liveness;
use crate::log_store::LogStore;
use crate::metadata::{MetadataMachine, MetadataRaft, MetadataTypes};
use crate::network::{GroupNetwork, Peers};
use crate::roster::Roster;
use crate::service::{ProposeReply, Service};

pub use roster::Member;

/// How long a proposal keeps trying (an election, a forward) before the
/// change is refused as unavailable.
const PROPOSAL_DEADLINE: Duration = Duration::from_secs(5);

/// A running cluster member.
pub struct Cluster {
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
    prober: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
    local_addr: std::net::SocketAddr,
}

struct Inner {
    raft: MetadataRaft,
    roster: Roster,
    peers: Peers,
    liveness: Arc<Liveness>,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Starts this node's part of the cluster beside its broker (`admin`).
pub async fn start(admin: Admin, settings: &ClusterSettings, data_dir: &Path) -> io::Result<Cluster> {
    let roster = Roster::new(settings);
    let dir = data_dir.join("cluster").join("metadata");
    let (log, machine) = {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || {
            let log = LogStore::<MetadataTypes>::open(&dir).map_err(other)?;
            let machine = MetadataMachine::load(admin).map_err(other)?;
            Ok::<_, io::Error>((log, machine))
        })
        .await
        .map_err(other)??
    };
    let config = openraft::Config {
        cluster_name: "warren-metadata".into(),
        heartbeat_interval: 150,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1000),
        max_in_snapshot_log_to_keep: 100,
        ..Default::default()
    }
    .validate()
    .map_err(other)?;
    let peers = Peers::new();
    let raft = MetadataRaft::new(
        roster.this_node,
        Arc::new(config),
        GroupNetwork::new(peers.clone(), "metadata"),
        log,
        machine,
    )
    .await
    .map_err(other)?;

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cluster port {}: {e}", settings.listen)))?;
    let local_addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let router = service::router(Service {
        raft: raft.clone(),
        node_name: settings.node_name.clone(),
    });
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!("cluster port: {e}");
        }
    });

    if roster.this_node == roster.founder() && !raft.is_initialized().await.map_err(other)? {
        tracing::info!(
            "starting the cluster's metadata group with {} members",
            roster.members.len()
        );
        if let Err(e) = raft.initialize(roster.members.clone()).await {
            // Another start of this node already did, or a member holds a log.
            tracing::info!("the metadata group was not initialized here: {e}");
        }
    }
    let liveness = Arc::new(Liveness::default());
    let prober = tokio::spawn(liveness.clone().probe(roster.clone(), peers.clone()));
    tracing::info!(
        "cluster member {} (id {}) on {local_addr}, {} members",
        settings.node_name,
        roster.this_node,
        roster.members.len()
    );
    let inner = Arc::new(Inner {
        raft,
        roster,
        peers,
        liveness,
    });
    admin.install_metadata_log(Arc::new(Handle(inner.clone())));
    Ok(Cluster {
        inner,
        server,
        prober,
        stop,
        local_addr,
    })
}

impl Cluster {
    /// Where the cluster port listens.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local_addr
    }

    /// Stops this member: its Raft group and its cluster port.
    pub async fn shutdown(self) {
        self.prober.abort();
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!("stopping the metadata group: {e}");
        }
        let _ = self.stop.send(true);
        let _ = self.server.await;
    }
}

impl Inner {
    async fn propose(self: Arc<Self>, change: MetadataChange) -> Result<(), ReplicationError> {
        let started = Instant::now();
        let mut last_error = String::from("no leader elected");
        while let Some(left) = PROPOSAL_DEADLINE.checked_sub(started.elapsed()) {
            // A leader that lost its majority would wait for ever.
            let Ok(written) = tokio::time::timeout(left, self.raft.client_write(change.clone())).await else {
                last_error = "no majority committed the change in time".into();
                break;
            };
            match written {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    if let Some(leader) = forward.leader_node {
                        match self.forward(&leader, &change).await {
                            Ok(()) => return Ok(()),
                            Err(e) => last_error = e,
                        }
                    }
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ReplicationError::Unavailable(last_error))
    }

    /// Has the leader commit `change`, then waits until this node applied it.
    async fn forward(&self, leader: &Member, change: &MetadataChange) -> Result<(), String> {
        let reply: ProposeReply = self
            .peers
            .post(leader, "/metadata/propose", change, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        let index = reply?;
        self.raft
            .wait(Some(Duration::from_secs(5)))
            .applied_index_at_least(Some(index), "a forwarded proposal")
            .await
            .map(|_| ())
            .map_err(|e| format!("committed at {index} but not applied here yet: {e}"))
    }
}

/// The metadata log the broker holds.
struct Handle(Arc<Inner>);

impl MetadataLog for Handle {
    fn propose(&self, change: MetadataChange) -> Proposal {
        Box::pin(self.0.clone().propose(change))
    }

    fn members(&self) -> Vec<MemberView> {
        self.0.members()
    }
}

impl Inner {
    fn members(&self) -> Vec<MemberView> {
        let leader = self.raft.metrics().borrow().current_leader;
        self.roster
            .members
            .iter()
            .map(|(id, member)| MemberView {
                name: member.name.clone(),
                address: member.address.clone(),
                running: *id == self.roster.this_node || self.liveness.running(*id),
                leader: leader == Some(*id),
                this_node: *id == self.roster.this_node,
            })
            .collect()
    }
}
