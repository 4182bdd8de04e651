//! Who is in the cluster: every member's name and cluster address, as the
//! static `--cluster-peers` list gives them, and the Raft node id each one
//! gets (its place in the list sorted by name, from 1), so that every node
//! that was given the same list numbers the members the same way.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use warren_broker::ClusterSettings;

/// A member's Raft node id.
pub(crate) type NodeId = u64;

/// A member as Raft records it in its membership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub address: String,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.address)
    }
}

/// The cluster's members and which one this node is.
#[derive(Debug, Clone)]
pub(crate) struct Roster {
    pub this_node: NodeId,
    pub members: BTreeMap<NodeId, Member>,
}

impl Roster {
    pub(crate) fn new(settings: &ClusterSettings) -> Roster {
        let mut sorted = settings.peers.clone();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut members = BTreeMap::new();
        let mut this_node = 0;
        for (position, peer) in sorted.into_iter().enumerate() {
            let id = position as NodeId + 1;
            if peer.name == settings.node_name {
                this_node = id;
            }
            members.insert(
                id,
                Member {
                    name: peer.name,
                    address: peer.address,
                },
            );
        }
        Roster { this_node, members }
    }

    /// The member named `name`, with its id.
    pub(crate) fn named(&self, name: &str) -> Option<(NodeId, &Member)> {
        self.members
            .iter()
            .find(|(_, m)| m.name == name)
            .map(|(id, m)| (*id, m))
    }

    /// The member that starts the cluster when no node has a log yet.
    pub(crate) fn founder(&self) -> NodeId {
        self.members.keys().next().copied().unwrap_or(self.this_node)
    }
}
