//! Leader election for one partition, as Kafka's `offlinePartitionLeaderElection`: the
//! first replica in assignment order that is live and in the ISR; with unclean election
//! enabled and none such, the first live replica.

use std::collections::BTreeSet;

/// A leader chosen, with the ISR it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    /// The new leader.
    pub leader: i32,
    /// The ISR: unchanged by a clean election, just the leader after an unclean one.
    pub isr: Vec<i32>,
    /// Whether the leader came from outside the ISR (records may be lost).
    pub unclean: bool,
}

/// Chooses a leader among `assignment` (preferred first): ISR ∩ live, else (with
/// `unclean`) any live replica; `None` when the partition must stay offline.
pub fn elect_leader(
    assignment: &[i32],
    isr: &[i32],
    live: &BTreeSet<i32>,
    unclean: bool,
) -> Option<Election> {
    if let Some(&leader) = assignment
        .iter()
        .find(|id| live.contains(id) && isr.contains(id))
    {
        return Some(Election {
            leader,
            isr: isr.to_vec(),
            unclean: false,
        });
    }
    if !unclean {
        return None;
    }
    assignment
        .iter()
        .find(|id| live.contains(id))
        .map(|&leader| Election {
            leader,
            isr: vec![leader],
            unclean: true,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(ids: &[i32]) -> BTreeSet<i32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn the_preferred_replica_wins_when_in_sync_and_live() {
        assert_eq!(
            elect_leader(&[1, 2, 3], &[3, 2, 1], &live(&[1, 2, 3]), false),
            Some(Election {
                leader: 1,
                isr: vec![3, 2, 1],
                unclean: false
            })
        );
    }

    #[test]
    fn assignment_order_decides_among_the_live_isr() {
        assert_eq!(
            elect_leader(&[1, 2, 3], &[3, 2], &live(&[2, 3]), false),
            Some(Election {
                leader: 2,
                isr: vec![3, 2],
                unclean: false
            })
        );
        // 1 is live but out of sync: never a clean leader.
        assert_eq!(
            elect_leader(&[1, 2, 3], &[3], &live(&[1, 3]), false).map(|e| e.leader),
            Some(3)
        );
    }

    #[test]
    fn no_leader_when_no_live_isr_member_and_unclean_off() {
        assert_eq!(elect_leader(&[1, 2, 3], &[1], &live(&[2, 3]), false), None);
        assert_eq!(elect_leader(&[1, 2], &[], &live(&[1, 2]), false), None);
    }

    #[test]
    fn unclean_takes_any_live_assigned_replica_and_shrinks_isr_to_it() {
        assert_eq!(
            elect_leader(&[1, 2, 3], &[1], &live(&[3, 2, 9]), true),
            Some(Election {
                leader: 2,
                isr: vec![2],
                unclean: true
            })
        );
        // A clean choice still comes first with unclean enabled.
        assert_eq!(
            elect_leader(&[1, 2, 3], &[3], &live(&[2, 3]), true),
            Some(Election {
                leader: 3,
                isr: vec![3],
                unclean: false
            })
        );
        // Brokers outside the assignment are never chosen.
        assert_eq!(elect_leader(&[1, 2], &[1], &live(&[9]), true), None);
    }
}
