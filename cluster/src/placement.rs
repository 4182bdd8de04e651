//! Where a queue group's copies are: `x-quorum-initial-group-size` voters
//! (every member when unset or larger), taken in turn from a member picked
//! by the group's name, so that groups, and the leaders they first elect,
//! spread over the cluster; the other members follow as learners (they
//! keep a copy of the queue to serve their own consumers, but neither vote
//! nor count towards a commit). Every member computes the same placement
//! from the same roster and name: any voter may initialize the group with
//! it, which openraft allows for an identical membership.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;

use crate::roster::{Member, NodeId, Roster};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The members that vote, the group's membership at initialization.
    pub voters: BTreeMap<NodeId, Member>,
    /// The members that follow without voting.
    pub learners: BTreeSet<NodeId>,
    /// The voter that initializes the group first (and so, usually,
    /// leads it first).
    pub first: NodeId,
}

/// A name's place on the ring of members: FNV-1a, stable across builds
/// and platforms (every member must compute the same).
fn spot(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) fn place(roster: &Roster, group: &str, size: Option<NonZeroUsize>) -> Placement {
    let ids: Vec<NodeId> = roster.members.keys().copied().collect();
    let count = ids.len().max(1);
    let size = size.map_or(count, |s| s.get().min(count));
    let start = (spot(group) % count as u64) as usize;
    let mut voters = BTreeMap::new();
    let mut learners = BTreeSet::new();
    for (turn, id) in ids.iter().cycle().skip(start).take(ids.len()).enumerate() {
        if turn < size {
            if let Some(member) = roster.members.get(id) {
                voters.insert(*id, member.clone());
            }
        } else {
            learners.insert(*id);
        }
    }
    Placement {
        voters,
        learners,
        first: ids.get(start).copied().unwrap_or(roster.this_node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster(count: u64) -> Roster {
        Roster {
            this_node: 1,
            members: (1..=count)
                .map(|id| {
                    let member = Member {
                        name: format!("n{id}"),
                        address: format!("127.0.0.{id}:25672"),
                    };
                    (id, member)
                })
                .collect(),
        }
    }

    #[test]
    fn every_member_votes_unless_a_size_is_given() {
        let placement = place(&roster(3), "q1", None);
        assert_eq!(placement.voters.len(), 3);
        assert!(placement.learners.is_empty());
        let three = place(&roster(5), "q1", NonZeroUsize::new(3));
        assert_eq!(three.voters.len(), 3);
        assert_eq!(three.learners.len(), 2);
        assert!(three.voters.contains_key(&three.first));
        assert!(three.voters.keys().all(|v| !three.learners.contains(v)));
        // Larger than the cluster: every member.
        assert_eq!(place(&roster(3), "q1", NonZeroUsize::new(7)).voters.len(), 3);
    }

    #[test]
    fn groups_start_on_different_members() {
        let roster = roster(3);
        let firsts: BTreeSet<NodeId> = (0..30).map(|i| place(&roster, &format!("q{i}"), None).first).collect();
        assert_eq!(firsts.len(), 3, "thirty groups all started on {firsts:?}");
        // The same name, the same placement, whoever computes it.
        assert_eq!(place(&roster, "orders", None), place(&roster, "orders", None));
    }
}
