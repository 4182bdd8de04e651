//! Which members answer: every half second this node asks each other
//! member for its status on the cluster port and notes when it last
//! answered. A member that answered within the last two seconds is running.
//!
//! Each answer also carries the member's clock, so this node knows how far
//! its own clock is from the others' ([`Liveness::cluster_time_ms`]): the
//! time a leader writes on queue entries is the median of the running
//! members' clocks, so one member's clock set a day ahead does not expire
//! every replica's messages early.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::network::Peers;
use crate::roster::{NodeId, Roster};
use crate::service::Status;
use crate::signing::now_ms;

const PROBE_EVERY: Duration = Duration::from_millis(500);
const RUNNING_WITHIN: Duration = Duration::from_secs(2);

/// How far this node's clock may be from the cluster's before it says so.
const WARN_BEYOND_MS: u64 = 1_000;

/// When each member last answered, and how far its clock was from this
/// node's then (ms; positive when it is ahead).
#[derive(Default)]
pub(crate) struct Liveness {
    seen: Mutex<HashMap<NodeId, Instant>>,
    offsets: Mutex<HashMap<NodeId, i64>>,
}

/// The median of this node's offset (0) and the others': with an even
/// count, the one of the middle two nearer to this node's clock (two
/// members that disagree cannot tell whose clock is wrong).
fn median_offset(others: impl Iterator<Item = i64>) -> i64 {
    let mut all: Vec<i64> = std::iter::once(0).chain(others).collect();
    all.sort_unstable();
    let middle = all.len() / 2;
    if all.len() % 2 == 1 {
        all[middle]
    } else {
        let (a, b) = (all[middle - 1], all[middle]);
        if a.unsigned_abs() <= b.unsigned_abs() {
            a
        } else {
            b
        }
    }
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

    /// The cluster's time, ms since the Unix epoch: this node's clock moved
    /// by the median offset of the members that answer now.
    pub(crate) fn cluster_time_ms(&self) -> u64 {
        now_ms().saturating_add_signed(self.cluster_offset_ms())
    }

    fn cluster_offset_ms(&self) -> i64 {
        let offsets = self.offsets.lock();
        median_offset(
            offsets
                .iter()
                .filter(|(id, _)| self.running(**id))
                .map(|(_, offset)| *offset),
        )
    }

    /// Probes the other members until the task is aborted.
    pub(crate) async fn probe(self: Arc<Self>, roster: Roster, peers: Peers) {
        let mut warned = HashMap::new();
        let mut off = false;
        loop {
            for (id, member) in roster.members.iter().filter(|(id, _)| **id != roster.this_node) {
                let asked = now_ms();
                match peers.post::<(), Status>(member, "/status", &(), PROBE_EVERY).await {
                    Ok(status) if status.name == member.name => {
                        // Its clock against the middle of the round trip.
                        let midpoint = asked / 2 + now_ms() / 2;
                        let offset = status.now_ms as i128 - midpoint as i128;
                        let offset = offset.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
                        self.offsets.lock().insert(*id, offset);
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
            let offset = self.cluster_offset_ms();
            if (offset.unsigned_abs() > WARN_BEYOND_MS) != off {
                off = !off;
                if off {
                    tracing::warn!(
                        "this node's clock is {offset} ms off the median of the cluster's: the entries it \
                         writes as a leader carry the cluster's time (fix the clock: NTP)"
                    );
                } else {
                    tracing::info!("this node's clock agrees with the cluster's again");
                }
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::median_offset;

    #[test]
    fn one_clock_far_off_does_not_move_the_median() {
        // This node a day ahead: both others see it so, and it follows them.
        let day = 86_400_000;
        assert_eq!(median_offset([-day, -day + 3].into_iter()), -day + 3);
        // Another node a day ahead: ignored.
        assert_eq!(median_offset([day, 4].into_iter()), 4);
        // Alone, or with one other that disagrees: its own clock.
        assert_eq!(median_offset(std::iter::empty()), 0);
        assert_eq!(median_offset([day].into_iter()), 0);
        assert_eq!(median_offset([-day].into_iter()), 0);
        // Five members, two off in either direction.
        assert_eq!(median_offset([day, -day, 7, 9].into_iter()), 7);
    }
}
