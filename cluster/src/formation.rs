//! How a Raft group comes to life and who belongs to it. The voter picked
//! to start a group initializes it at once; any other voter does the same
//! when, a while later, no leader has reached it yet (the picked one may be
//! down): openraft allows several members to initialize a group with one
//! identical membership, and the vote elects one leader. Once elected, the
//! leader adds the group's learners, again whenever one is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::impls::OneshotResponder;
use openraft::{Raft, RaftTypeConfig};

use crate::roster::{Member, NodeId, Roster};

/// How long a voter waits for the picked one before starting the group
/// itself: a few election timeouts.
const FALLBACK_AFTER: Duration = Duration::from_secs(3);

/// Starts `raft` with `voters` as its membership if no member has: now if
/// `first`, else after `FALLBACK_AFTER` if still nothing reached it. `what`
/// names the group in the log.
pub(crate) async fn form<C>(raft: Raft<C>, voters: BTreeMap<NodeId, Member>, first: bool, what: String)
where
    C: RaftTypeConfig<NodeId = NodeId, Node = Member>,
{
    if !first {
        tokio::time::sleep(FALLBACK_AFTER).await;
    }
    if !matches!(raft.is_initialized().await, Ok(false)) {
        return;
    }
    if !first {
        tracing::info!("{what}: no leader reached this member; starting the group here");
    }
    if let Err(e) = raft.initialize(voters).await {
        // Another life of this node, or a leader's first message, came first.
        tracing::info!("{what} was not initialized here: {e}");
    }
}

/// While this member leads `raft`, adds whichever of `learners` the
/// membership lacks. Returns when the group shuts down.
pub(crate) async fn keep_learners<C>(raft: Raft<C>, roster: Roster, learners: BTreeSet<NodeId>)
where
    C: RaftTypeConfig<NodeId = NodeId, Node = Member, Responder = OneshotResponder<C>>,
{
    if learners.is_empty() {
        return;
    }
    let mut metrics = raft.metrics();
    loop {
        let missing: Vec<NodeId> = {
            let now = metrics.borrow_and_update();
            if now.current_leader != Some(roster.this_node) {
                Vec::new()
            } else {
                let membership = now.membership_config.membership();
                learners
                    .iter()
                    .filter(|id| membership.get_node(id).is_none())
                    .copied()
                    .collect()
            }
        };
        for id in missing {
            if let Some(member) = roster.members.get(&id) {
                if let Err(e) = raft.add_learner(id, member.clone(), false).await {
                    tracing::debug!("adding learner {member}: {e}");
                }
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
