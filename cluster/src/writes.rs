//! Writing to a Raft group from any member: the write goes to this node's
//! Raft if it leads, otherwise to the leader over the cluster port (which
//! answers with `answer_forwarded`); through an election it is retried
//! until a deadline. A write that timed out may still have been committed:
//! the caller learns it was not confirmed, never that it was lost.
//!
//! The member that appends an entry as the leader writes its stamp on it
//! (`Stamped`): the cluster's time (`liveness.rs`) and who it is, so that
//! every member's machine reads the same time from the log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::impls::OneshotResponder;
use openraft::{Raft, RaftTypeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;

use warren_broker::{LeaderStamp, MetadataChange};

use crate::liveness::Liveness;
use crate::network::Peers;
use crate::roster::{Member, NodeId};

/// How long a write keeps trying (an election, a forward) before it fails.
pub(crate) const WRITE_DEADLINE: Duration = Duration::from_secs(5);

/// A forwarded write's answer: the log index it was committed at and the
/// state machine's reply, or why not.
pub(crate) type Forwarded<R> = Result<(u64, R), String>;

/// An entry that carries its leader's stamp.
pub(crate) trait Stamped {
    fn stamp(&mut self, by: LeaderStamp);
}

/// Metadata changes need no clock.
impl Stamped for MetadataChange {
    fn stamp(&mut self, _by: LeaderStamp) {}
}

/// This life of this member, as it stamps the entries it appends, and
/// the cluster's time it stamps them with.
#[derive(Clone)]
pub(crate) struct Writer {
    pub node: String,
    pub boot: u64,
    pub clock: Arc<Liveness>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("node", &self.node)
            .field("boot", &self.boot)
            .finish_non_exhaustive()
    }
}

impl Writer {
    fn stamp(&self) -> LeaderStamp {
        LeaderStamp {
            at_ms: self.clock.cluster_time_ms(),
            node: self.node.clone(),
            boot: self.boot,
        }
    }
}

/// Commits `data` in the group, wherever its leader is.
pub(crate) async fn write<C>(
    raft: &Raft<C>,
    peers: &Peers,
    writer: &Writer,
    data: C::D,
    forward_path: &str,
) -> Result<(u64, C::R), String>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = Member, Responder = OneshotResponder<C>>,
    C::D: Serialize + Clone + Stamped,
    C::R: DeserializeOwned,
{
    let started = Instant::now();
    let mut last_error = String::from("no leader elected");
    while let Some(left) = WRITE_DEADLINE.checked_sub(started.elapsed()) {
        // Appended only if this member leads: then the stamp is the leader's.
        let mut entry = data.clone();
        entry.stamp(writer.stamp());
        // A leader that lost its majority would wait for ever.
        let Ok(written) = tokio::time::timeout(left, raft.client_write(entry)).await else {
            last_error = "no majority committed the write in time".into();
            break;
        };
        match written {
            Ok(response) => return Ok((response.log_id.index, response.data)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                if let Some(leader) = forward.leader_node {
                    let answer: Result<Forwarded<C::R>, _> = peers.post(&leader, forward_path, &data, left).await;
                    match answer {
                        Ok(Ok(done)) => return Ok(done),
                        Ok(Err(e)) => last_error = e,
                        Err(e) => last_error = e.to_string(),
                    }
                }
            }
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last_error)
}

/// What this node answers a write forwarded to it as the leader.
pub(crate) async fn answer_forwarded<C>(raft: &Raft<C>, writer: &Writer, mut data: C::D) -> Forwarded<C::R>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = Member, Responder = OneshotResponder<C>>,
    C::D: Stamped,
{
    data.stamp(writer.stamp());
    match raft.client_write(data).await {
        Ok(response) => Ok((response.log_id.index, response.data)),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Err("not the leader".to_string()),
        Err(e) => Err(e.to_string()),
    }
}
