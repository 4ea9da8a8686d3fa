//! What the controller changes in one partition's state when brokers come and go.

use std::collections::BTreeSet;

use crate::elect::elect_leader;
use crate::model::{PartitionState, NO_LEADER};

/// The topic config enabling unclean leader election.
pub const UNCLEAN_LEADER_ELECTION: &str = "unclean.leader.election.enable";

/// The state `current` should move to given the `live` brokers, or `None` when it is
/// right as it is. Dead replicas leave the ISR, except the last member (Kafka keeps it, so
/// that it can lead again when it returns); a dead leader is replaced (or the partition
/// goes offline) and a leaderless partition gets a leader as soon as one can be elected;
/// each leader change bumps the leader epoch.
pub fn plan_partition(
    assignment: &[i32],
    current: &PartitionState,
    live: &BTreeSet<i32>,
    unclean: bool,
) -> Option<PartitionState> {
    let mut isr: Vec<i32> = current
        .isr
        .iter()
        .copied()
        .filter(|id| live.contains(id))
        .collect();
    if isr.is_empty() && !current.isr.is_empty() {
        let last = if current.isr.contains(&current.leader) {
            current.leader
        } else {
            current.isr[0]
        };
        isr = vec![last];
    }
    let mut next = PartitionState {
        isr,
        ..current.clone()
    };
    let leader_live = current.leader != NO_LEADER && live.contains(&current.leader);
    if !leader_live {
        match elect_leader(assignment, &next.isr, live, unclean) {
            Some(election) => {
                next.leader = election.leader;
                next.isr = election.isr;
            }
            None => next.leader = NO_LEADER,
        }
        if next.leader != current.leader {
            next.leader_epoch = current.leader_epoch + 1;
        }
    }
    (next != *current).then_some(next)
}

/// Whether the topic's configs enable unclean leader election (Kafka's default: false).
pub fn unclean_enabled(configs: &std::collections::BTreeMap<String, String>) -> bool {
    configs
        .get(UNCLEAN_LEADER_ELECTION)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: i32, leader_epoch: i32, isr: &[i32]) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch,
            isr: isr.to_vec(),
            adding_replicas: vec![],
            removing_replicas: vec![],
            partition_epoch: 17,
        }
    }

    fn live(ids: &[i32]) -> BTreeSet<i32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn nothing_to_do_when_everyone_is_live() {
        assert_eq!(
            plan_partition(
                &[1, 2, 3],
                &state(1, 4, &[1, 2, 3]),
                &live(&[1, 2, 3]),
                false
            ),
            None
        );
    }

    #[test]
    fn a_dead_leader_is_replaced_with_epoch_plus_one_and_leaves_the_isr() {
        assert_eq!(
            plan_partition(&[1, 2, 3], &state(1, 4, &[1, 2, 3]), &live(&[2, 3]), false),
            Some(state(2, 5, &[2, 3]))
        );
    }

    #[test]
    fn a_dead_follower_leaves_the_isr_without_a_leader_change() {
        assert_eq!(
            plan_partition(&[1, 2, 3], &state(1, 4, &[1, 2, 3]), &live(&[1, 3]), false),
            Some(state(1, 4, &[1, 3]))
        );
    }

    #[test]
    fn the_last_isr_member_stays_when_the_partition_goes_offline() {
        assert_eq!(
            plan_partition(&[1, 2], &state(1, 4, &[1]), &live(&[2]), false),
            Some(state(NO_LEADER, 5, &[1]))
        );
        assert_eq!(
            plan_partition(&[1, 2], &state(1, 4, &[1, 2]), &live(&[]), false),
            Some(state(NO_LEADER, 5, &[1]))
        );
        // Offline and still nobody to elect: nothing changes.
        assert_eq!(
            plan_partition(&[1, 2], &state(NO_LEADER, 5, &[1]), &live(&[2]), false),
            None
        );
    }

    #[test]
    fn an_offline_partition_recovers_when_its_isr_member_returns() {
        assert_eq!(
            plan_partition(&[1, 2], &state(NO_LEADER, 5, &[1]), &live(&[1, 2]), false),
            Some(state(1, 6, &[1]))
        );
    }

    #[test]
    fn unclean_election_takes_a_live_out_of_sync_replica() {
        assert_eq!(
            plan_partition(&[1, 2], &state(1, 4, &[1]), &live(&[2]), true),
            Some(state(2, 5, &[2]))
        );
    }

    #[test]
    fn unclean_config_parses_like_kafka_booleans() {
        let mut configs = std::collections::BTreeMap::new();
        assert!(!unclean_enabled(&configs));
        configs.insert(UNCLEAN_LEADER_ELECTION.to_string(), "TRUE".to_string());
        assert!(unclean_enabled(&configs));
        configs.insert(UNCLEAN_LEADER_ELECTION.to_string(), "false".to_string());
        assert!(!unclean_enabled(&configs));
    }
}
