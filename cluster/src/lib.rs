//! Warren's cluster: nodes configured statically (`--node-name`,
//! `--cluster-listen`, `--cluster-peers`) that keep their definitions the
//! same through one Raft group (openraft), the metadata group, and run one
//! Raft group per replicated queue, all over the cluster port.
//!
//! [`Link::new`] makes the broker's view of the cluster before the broker
//! starts (a recovered quorum queue joins its group at once); [`start`]
//! then opens the metadata group's log (Warren's store: `RaftLog`), loads
//! its state machine (the broker's own definitions, through `Admin`),
//! serves the cluster port and lets the first member by name start the
//! group when no node has a log yet. From then on a definition change made
//! on any node is proposed to the leader (forwarded over the cluster port
//! when the leader is another node), committed on a majority, and applied
//! on every node in the log's order.
//!
//! The files: `roster.rs` (members and their ids), `log_store.rs`
//! (openraft's log storage on Warren's store), `metadata.rs` (the metadata
//! group's types and state machine), `queue_group.rs` and `groups.rs` (the
//! queues' groups), `writes.rs` (writing from any member), `network.rs` and
//! `service.rs` (the two sides of the cluster port; `snapshot_chunk.rs` a
//! snapshot's chunk on the wire), `liveness.rs` (which
//! members answer), `raft_config.rs` (the timing every group shares),
//! `signing.rs` and `tls.rs` (who may use the cluster port).

// openraft's error types are large by design and are what its traits return.
#![allow(clippy::result_large_err)]

mod formation;
mod groups;
mod liveness;
mod log_store;
mod metadata;
mod network;
mod placement;
mod queue_group;
mod raft_config;
mod roster;
mod service;
mod signing;
mod snapshot_chunk;
mod tls;
mod writes;

use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use warren_broker::{
    Admin, ClusterLink, ClusterSettings, MemberView, MetadataChange, Proposal, ReplicatedGroup, ReplicatedMachine,
    ReplicationError,
};

use crate::groups::Groups;
use crate::liveness::Liveness;
use crate::log_store::LogStore;
use crate::metadata::{MetadataMachine, MetadataRaft, MetadataTypes};
use crate::network::{GroupNetwork, Peers};
use crate::roster::Roster;
use crate::service::Service;
use crate::signing::{roster_digest, Signer};
use crate::writes::Writer;

pub use roster::Member;

/// This node's view of its cluster, for the broker. Made before the broker
/// starts; the metadata group runs once [`start`] is called.
pub struct Link {
    settings: ClusterSettings,
    /// TLS on the cluster port (None: plain HTTP).
    tls: Option<tls::Configs>,
    roster: Roster,
    peers: Peers,
    signer: Signer,
    writer: Writer,
    boot: u64,
    data_dir: PathBuf,
    metadata: OnceLock<MetadataRaft>,
    liveness: Arc<Liveness>,
    groups: Arc<Groups>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("node", &self.settings.node_name)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// An error when the cluster's TLS files cannot be used.
    pub fn new(settings: &ClusterSettings, data_dir: &Path) -> io::Result<Arc<Link>> {
        let roster = Roster::new(settings);
        let listen_ip = settings.listen.ip();
        let digest = roster_digest(roster.members.values().map(|m| (m.name.clone(), m.address.clone())));
        let signer = Signer::new(
            settings.secret.as_ref().map(|s| s.0.as_str()),
            &settings.node_name,
            digest,
        );
        let tls = settings.tls.as_ref().map(tls::configs).transpose()?;
        let peers = Peers::new(
            (!listen_ip.is_unspecified()).then_some(listen_ip),
            signer.clone(),
            tls.as_ref().map(|configs| configs.client.clone()),
        )?;
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1);
        let liveness = Arc::new(Liveness::default());
        let queues_dir = data_dir.join("cluster").join("queues");
        let writer = Writer {
            node: settings.node_name.clone(),
            boot,
            clock: liveness.clone(),
        };
        Ok(Arc::new(Link {
            settings: settings.clone(),
            tls,
            groups: Groups::new(
                roster.clone(),
                peers.clone(),
                writer.clone(),
                liveness.clone(),
                queues_dir,
            ),
            writer,
            signer,
            roster,
            peers,
            boot,
            data_dir: data_dir.to_path_buf(),
            metadata: OnceLock::new(),
            liveness,
        }))
    }

    async fn propose_change(
        metadata: Option<MetadataRaft>,
        peers: Peers,
        writer: Writer,
        others: Vec<Member>,
        change: MetadataChange,
    ) -> Result<(), ReplicationError> {
        let Some(raft) = metadata else {
            return Err(ReplicationError::Unavailable("the cluster has not started".into()));
        };
        let (index, ()) = writes::write(&raft, &peers, &writer, change, "/metadata/propose")
            .await
            .map_err(ReplicationError::Unavailable)?;
        // Once the caller hears back, this node has applied the change too.
        raft.wait(Some(Duration::from_secs(5)))
            .applied_index_at_least(Some(index), "a proposal")
            .await
            .map_err(|e| ReplicationError::Unavailable(format!("committed at {index} but not applied here: {e}")))?;
        // And so have the other running members, as far as a short wait
        // allows: a queue declared here is then routed to from every node,
        // as RabbitMQ's declarations are once declare-ok is sent.
        let deadline = tokio::time::Instant::now() + APPLIED_EVERYWHERE_WITHIN;
        for member in others {
            while tokio::time::Instant::now() < deadline {
                let answer: Result<u64, _> = peers
                    .post(&member, "/metadata/applied", &(), Duration::from_millis(500))
                    .await;
                match answer {
                    Ok(applied) if applied >= index => break,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    // Not running: nobody routes through it now.
                    Err(_) => break,
                }
            }
        }
        Ok(())
    }
}

impl ClusterLink for Link {
    fn propose(&self, change: MetadataChange) -> Proposal {
        let others = self
            .roster
            .members
            .iter()
            .filter(|(id, _)| **id != self.roster.this_node && self.liveness.running(**id))
            .map(|(_, member)| member.clone())
            .collect();
        Box::pin(Link::propose_change(
            self.metadata.get().cloned(),
            self.peers.clone(),
            self.writer.clone(),
            others,
            change,
        ))
    }

    fn members(&self) -> Vec<MemberView> {
        let leader = self
            .metadata
            .get()
            .and_then(|raft| raft.metrics().borrow().current_leader);
        self.roster
            .members
            .iter()
            .map(|(id, member)| MemberView {
                name: member.name.clone(),
                address: member.address.clone(),
                running: self.liveness.up(&self.roster, *id),
                leader: leader == Some(*id),
                this_node: *id == self.roster.this_node,
            })
            .collect()
    }

    fn this_node(&self) -> (String, u64) {
        (self.settings.node_name.clone(), self.boot)
    }

    fn call(&self, node: &str, request: Vec<u8>) -> warren_broker::Replied {
        let member = self.roster.named(node).map(|(_, m)| m.clone());
        let peers = self.peers.clone();
        let node = node.to_string();
        Box::pin(async move {
            let member = member.ok_or_else(|| ReplicationError::Unavailable(format!("no member is named {node}")))?;
            let answer: serde_bytes::ByteBuf = peers
                .post(&member, "/call", &serde_bytes::ByteBuf::from(request), CALL_WITHIN)
                .await
                .map_err(|e| ReplicationError::Unavailable(e.to_string()))?;
            Ok(answer.into_vec())
        })
    }

    fn is_running(&self, node: &str) -> bool {
        self.roster
            .named(node)
            .is_some_and(|(id, _)| self.liveness.up(&self.roster, id))
    }

    fn join_group(
        &self,
        group: &str,
        size: Option<NonZeroUsize>,
        machine: Arc<dyn ReplicatedMachine>,
    ) -> Arc<dyn ReplicatedGroup> {
        self.groups.join(group, size, machine)
    }
}

/// How long a call to another member's broker may take (a take waits up
/// to a second there for a message).
const CALL_WITHIN: Duration = Duration::from_secs(10);

/// How long a change waits, after it applied here, for the other running
/// members to apply it too.
const APPLIED_EVERYWHERE_WITHIN: Duration = Duration::from_secs(2);

/// A running cluster member.
pub struct Cluster {
    link: Arc<Link>,
    server: tokio::task::JoinHandle<()>,
    prober: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
    local_addr: std::net::SocketAddr,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Starts this node's part of the cluster beside its broker (`admin`).
pub async fn start(link: Arc<Link>, admin: Admin) -> io::Result<Cluster> {
    let admin_for_calls = admin.clone();
    let dir = link.data_dir.join("cluster").join("metadata");
    let (log, machine) = tokio::task::spawn_blocking(move || {
        let log = LogStore::<MetadataTypes>::open(&dir).map_err(other)?;
        let machine = MetadataMachine::load(admin).map_err(other)?;
        Ok::<_, io::Error>((log, machine))
    })
    .await
    .map_err(other)??;
    let config = raft_config::raft_config(
        "warren-metadata",
        raft_config::LogKeeping { every: 1000, keep: 100 },
        300,
    )
    .map_err(other)?;
    let roster = &link.roster;
    let raft = MetadataRaft::new(
        roster.this_node,
        config,
        GroupNetwork::new(link.peers.clone(), "metadata"),
        log,
        machine,
    )
    .await
    .map_err(other)?;
    let _ = link.metadata.set(raft.clone());

    let listen = link.settings.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cluster port {listen}: {e}")))?;
    let local_addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let router = service::router(Service {
        admin: admin_for_calls,
        raft: raft.clone(),
        groups: link.groups.clone(),
        node_name: link.settings.node_name.clone(),
        writer: link.writer.clone(),
        signer: link.signer.clone(),
    });
    if !link.signer.is_on() && link.tls.is_none() {
        tracing::warn!(
            "cluster port {local_addr} has no secret: any caller that reaches it is believed \
             (set --cluster-secret or --cluster-tls-*, the same on every member)"
        );
    }
    let shutdown = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let server = match &link.tls {
        Some(configs) => tokio::spawn(serve(
            tls::TlsListener::new(listener, configs.server.clone())?,
            router,
            shutdown,
        )),
        None => tokio::spawn(serve(listener, router, shutdown)),
    };

    // Every member votes in the metadata group; the first by name starts it.
    tokio::spawn(formation::form(
        raft.clone(),
        roster.members.clone(),
        roster.this_node == roster.founder(),
        "the metadata group".into(),
    ));
    let prober = tokio::spawn(link.liveness.clone().probe(roster.clone(), link.peers.clone()));
    tracing::info!(
        "cluster member {} (id {}) on {local_addr}{}, {} members, roster {}",
        link.settings.node_name,
        roster.this_node,
        if link.tls.is_some() { " (TLS)" } else { "" },
        roster.members.len(),
        link.signer.roster()
    );
    Ok(Cluster {
        link,
        server,
        prober,
        stop,
        local_addr,
    })
}

/// Serves the cluster port from `listener` until `shutdown`.
async fn serve<L>(listener: L, router: axum::Router, shutdown: impl std::future::Future<Output = ()> + Send + 'static)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
        tracing::error!("cluster port: {e}");
    }
}

impl Cluster {
    /// Where the cluster port listens.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local_addr
    }

    /// Stops this member: its Raft groups and its cluster port.
    pub async fn shutdown(self) {
        self.prober.abort();
        self.link.groups.shutdown().await;
        if let Some(raft) = self.link.metadata.get() {
            if let Err(e) = raft.shutdown().await {
                tracing::warn!("stopping the metadata group: {e}");
            }
        }
        let _ = self.stop.send(true);
        let _ = self.server.await;
    }
}
