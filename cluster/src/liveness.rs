//! Which members answer: every half second this node asks each other
//! member for its status on the cluster port and notes when it last
//! answered. A member that answered within the last two seconds is running.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::network::Peers;
use crate::roster::{NodeId, Roster};
use crate::service::Status;

const PROBE_EVERY: Duration = Duration::from_millis(500);
const RUNNING_WITHIN: Duration = Duration::from_secs(2);

/// When each member last answered.
#[derive(Default)]
pub(crate) struct Liveness {
    seen: Mutex<HashMap<NodeId, Instant>>,
}

impl Liveness {
    /// Whether member `id` runs: this node always does.
    pub(crate) fn up(&self, roster: &Roster, id: NodeId) -> bool {
        id == roster.this_node || self.running(id)
    }

    pub(crate) fn running(&self, id: NodeId) -> bool {
        self.seen
            .lock()
            .get(&id)
            .is_some_and(|at| at.elapsed() < RUNNING_WITHIN)
    }

    /// Probes the other members until the task is aborted.
    pub(crate) async fn probe(self: Arc<Self>, roster: Roster, peers: Peers) {
        let mut warned = HashMap::new();
        loop {
            for (id, member) in roster.members.iter().filter(|(id, _)| **id != roster.this_node) {
                match peers.post::<(), Status>(member, "/status", &(), PROBE_EVERY).await {
                    Ok(status) if status.name == member.name => {
                        self.seen.lock().insert(*id, Instant::now());
                    }
                    Ok(status) => {
                        if warned.insert(*id, ()).is_none() {
                            tracing::error!(
                                "cluster member {} at {} calls itself '{}': check cluster_peers on both nodes",
                                member.name,
                                member.address,
                                status.name
                            );
                        }
                    }
                    Err(_) => {}
                }
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }
}
