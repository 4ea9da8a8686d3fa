//! Partition reassignment (KIP-455) and leader elections on request (KIP-460), as pure
//! functions of a partition's replicas and state. While a reassignment runs, the replicas
//! are the target followed by the replicas being removed; the adding replicas catch up as
//! followers, and once every target replica is in the ISR the controller completes it.

use std::collections::BTreeSet;

use crate::elect::elect_leader;
use crate::model::{PartitionState, NO_LEADER};

/// Why a reassignment or an election is refused, in Kafka's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// INVALID_REPLICA_ASSIGNMENT.
    InvalidAssignment(String),
    /// NO_REASSIGNMENT_IN_PROGRESS: a cancellation with nothing to cancel.
    NoReassignment,
    /// ELECTION_NOT_NEEDED.
    ElectionNotNeeded,
    /// PREFERRED_LEADER_NOT_AVAILABLE.
    PreferredNotAvailable,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE.
    NoEligibleLeader,
}

/// A partition's replicas and state after a change.
pub type Placement = (Vec<i32>, PartitionState);

/// The replicas a partition had before its running reassignment (all of them when none
/// runs).
pub fn original_replicas(replicas: &[i32], state: &PartitionState) -> Vec<i32> {
    replicas
        .iter()
        .copied()
        .filter(|r| !state.adding_replicas.contains(r))
        .collect()
}

/// The replicas a running reassignment moves to.
pub fn target_replicas(replicas: &[i32], state: &PartitionState) -> Vec<i32> {
    replicas
        .iter()
        .copied()
        .filter(|r| !state.removing_replicas.contains(r))
        .collect()
}

/// Whether a reassignment runs.
pub fn is_reassigning(state: &PartitionState) -> bool {
    !state.adding_replicas.is_empty() || !state.removing_replicas.is_empty()
}

/// Starts moving a partition to `target` (replacing a running reassignment, as Kafka
/// does). `registered` are the brokers that exist. Completes at once when nothing needs
/// to catch up.
pub fn start(
    replicas: &[i32],
    state: &PartitionState,
    target: &[i32],
    registered: &BTreeSet<i32>,
) -> Result<Placement, Refused> {
    let unique: BTreeSet<i32> = target.iter().copied().collect();
    if target.is_empty() || unique.len() != target.len() {
        return Err(Refused::InvalidAssignment(format!(
            "replicas {target:?} must be non-empty and without duplicates"
        )));
    }
    if let Some(unknown) = target.iter().find(|r| !registered.contains(r)) {
        return Err(Refused::InvalidAssignment(format!(
            "broker {unknown} of {target:?} is not registered"
        )));
    }
    let original = original_replicas(replicas, state);
    let adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    let removing: Vec<i32> = original
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    let mut merged = target.to_vec();
    merged.extend(&removing);
    // Replicas added by the replaced reassignment but not targeted now leave the ISR.
    let isr: Vec<i32> = state
        .isr
        .iter()
        .copied()
        .filter(|r| merged.contains(r))
        .collect();
    let next = PartitionState {
        isr,
        adding_replicas: adding,
        removing_replicas: removing,
        ..state.clone()
    };
    Ok(complete(&merged, &next).unwrap_or((merged, next)))
}

/// Cancels a running reassignment: back to the original replicas.
pub fn cancel(replicas: &[i32], state: &PartitionState) -> Result<Placement, Refused> {
    if !is_reassigning(state) {
        return Err(Refused::NoReassignment);
    }
    let original = original_replicas(replicas, state);
    let mut next = PartitionState {
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
        ..state.clone()
    };
    next.isr.retain(|r| original.contains(r));
    if next.isr.is_empty() {
        return Err(Refused::InvalidAssignment(
            "no original replica is in sync: cancelling would leave the partition offline"
                .to_string(),
        ));
    }
    if !original.contains(&state.leader) {
        next.leader = original
            .iter()
            .copied()
            .find(|r| next.isr.contains(r))
            .unwrap_or(NO_LEADER);
        next.leader_epoch = state.leader_epoch + 1;
    }
    Ok((original, next))
}

/// Completes a running reassignment once every target replica is in the ISR: the
/// replicas become the target, the removed ones leave the ISR, and a leader being removed
/// hands over to the first in-sync target replica. `None` when there is nothing to do yet.
pub fn complete(replicas: &[i32], state: &PartitionState) -> Option<Placement> {
    if !is_reassigning(state) {
        return None;
    }
    let target = target_replicas(replicas, state);
    if !target.iter().all(|r| state.isr.contains(r)) {
        return None;
    }
    let mut next = PartitionState {
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
        ..state.clone()
    };
    next.isr.retain(|r| target.contains(r));
    if !target.contains(&state.leader) {
        next.leader = target[0];
        next.leader_epoch = state.leader_epoch + 1;
    }
    Some((target, next))
}

/// A preferred leader election (ElectLeaders type 0): the first replica leads if it is
/// live and in sync.
pub fn elect_preferred(
    replicas: &[i32],
    state: &PartitionState,
    live: &BTreeSet<i32>,
) -> Result<PartitionState, Refused> {
    let Some(&preferred) = replicas.first() else {
        return Err(Refused::PreferredNotAvailable);
    };
    if state.leader == preferred {
        return Err(Refused::ElectionNotNeeded);
    }
    if !live.contains(&preferred) || !state.isr.contains(&preferred) {
        return Err(Refused::PreferredNotAvailable);
    }
    Ok(PartitionState {
        leader: preferred,
        leader_epoch: state.leader_epoch + 1,
        ..state.clone()
    })
}

/// An unclean leader election (ElectLeaders type 1): only for a partition without a live
/// leader; an in-sync replica is still preferred.
pub fn elect_unclean(
    replicas: &[i32],
    state: &PartitionState,
    live: &BTreeSet<i32>,
) -> Result<PartitionState, Refused> {
    if state.leader != NO_LEADER && live.contains(&state.leader) {
        return Err(Refused::ElectionNotNeeded);
    }
    let election =
        elect_leader(replicas, &state.isr, live, true).ok_or(Refused::NoEligibleLeader)?;
    Ok(PartitionState {
        leader: election.leader,
        leader_epoch: state.leader_epoch + 1,
        isr: election.isr,
        ..state.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: i32, isr: &[i32], adding: &[i32], removing: &[i32]) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch: 4,
            isr: isr.to_vec(),
            adding_replicas: adding.to_vec(),
            removing_replicas: removing.to_vec(),
            partition_epoch: 9,
        }
    }

    fn set(ids: &[i32]) -> BTreeSet<i32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_move_to_new_brokers_runs_until_they_are_in_sync() {
        let (replicas, next) = start(
            &[1, 2],
            &state(1, &[1, 2], &[], &[]),
            &[2, 3],
            &set(&[1, 2, 3]),
        )
        .unwrap();
        assert_eq!(replicas, vec![2, 3, 1]);
        assert_eq!(next, state(1, &[1, 2], &[3], &[1]));
        assert_eq!(target_replicas(&replicas, &next), vec![2, 3]);
        assert_eq!(original_replicas(&replicas, &next), vec![2, 1]);
        // Not yet: 3 is not in sync.
        assert_eq!(complete(&replicas, &next), None);
        // 3 joined the ISR: the move completes and leader 1, removed, hands over to 2.
        let caught_up = state(1, &[1, 2, 3], &[3], &[1]);
        let (done, after) = complete(&replicas, &caught_up).unwrap();
        assert_eq!(done, vec![2, 3]);
        assert_eq!(after.leader, 2);
        assert_eq!(after.leader_epoch, 5);
        assert_eq!(after.isr, vec![2, 3]);
        assert!(!is_reassigning(&after));
    }

    #[test]
    fn a_reorder_or_shrink_of_in_sync_replicas_completes_at_once() {
        let (replicas, next) = start(
            &[1, 2, 3],
            &state(1, &[1, 2, 3], &[], &[]),
            &[3, 1],
            &set(&[1, 2, 3]),
        )
        .unwrap();
        assert_eq!(replicas, vec![3, 1]);
        assert_eq!(next, state(1, &[1, 3], &[], &[]));
    }

    #[test]
    fn bad_targets_are_invalid_assignments() {
        let s = state(1, &[1], &[], &[]);
        for target in [&[][..], &[2, 2][..], &[1, 7][..]] {
            assert!(matches!(
                start(&[1], &s, target, &set(&[1, 2])),
                Err(Refused::InvalidAssignment(_))
            ));
        }
    }

    #[test]
    fn cancelling_goes_back_to_the_original_replicas() {
        let running = state(3, &[1, 2, 3], &[3], &[1]);
        let (replicas, next) = cancel(&[2, 3, 1], &running).unwrap();
        assert_eq!(replicas, vec![2, 1]);
        // The leader was an added replica: an original in-sync one takes over.
        assert_eq!(
            next,
            PartitionState {
                leader_epoch: 5,
                ..state(2, &[1, 2], &[], &[])
            }
        );
        assert_eq!(
            cancel(&[1, 2], &state(1, &[1, 2], &[], &[])),
            Err(Refused::NoReassignment)
        );
    }

    #[test]
    fn a_new_target_replaces_a_running_reassignment() {
        // Moving [1,2] to [2,3] was under way; now the target is [2,4].
        let running = state(1, &[1, 2, 3], &[3], &[1]);
        let (replicas, next) = start(&[2, 3, 1], &running, &[2, 4], &set(&[1, 2, 3, 4])).unwrap();
        assert_eq!(replicas, vec![2, 4, 1]);
        assert_eq!(next, state(1, &[1, 2], &[4], &[1]));
    }

    #[test]
    fn preferred_elections_follow_kafkas_rules() {
        let live = set(&[1, 2, 3]);
        assert_eq!(
            elect_preferred(&[1, 2, 3], &state(2, &[1, 2, 3], &[], &[]), &live),
            Ok(PartitionState {
                leader_epoch: 5,
                ..state(1, &[1, 2, 3], &[], &[])
            })
        );
        assert_eq!(
            elect_preferred(&[1, 2, 3], &state(1, &[1, 2, 3], &[], &[]), &live),
            Err(Refused::ElectionNotNeeded)
        );
        assert_eq!(
            elect_preferred(&[1, 2, 3], &state(2, &[2, 3], &[], &[]), &live),
            Err(Refused::PreferredNotAvailable)
        );
        assert_eq!(
            elect_preferred(&[1, 2, 3], &state(2, &[1, 2, 3], &[], &[]), &set(&[2, 3])),
            Err(Refused::PreferredNotAvailable)
        );
    }

    #[test]
    fn unclean_elections_only_replace_a_missing_leader() {
        assert_eq!(
            elect_unclean(&[1, 2], &state(1, &[1], &[], &[]), &set(&[1, 2])),
            Err(Refused::ElectionNotNeeded)
        );
        assert_eq!(
            elect_unclean(&[1, 2], &state(NO_LEADER, &[1], &[], &[]), &set(&[2])),
            Ok(PartitionState {
                leader_epoch: 5,
                ..state(2, &[2], &[], &[])
            })
        );
        assert_eq!(
            elect_unclean(&[1, 2], &state(NO_LEADER, &[1], &[], &[]), &set(&[])),
            Err(Refused::NoEligibleLeader)
        );
    }
}
