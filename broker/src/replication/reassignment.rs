//! Reassignments and elections asked for by an operator (AlterPartitionReassignments,
//! ListPartitionReassignments, ElectLeaders): each is a compare-and-swap of the partition
//! in the cluster metadata, answered once this broker's view shows it.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use sluice_cluster::reassign::{self, Refused};
use sluice_cluster::{ClusterView, MetadataError, PartitionState};

use super::node::{metadata_refusal, ClusterNode, Refusal};

/// Compare-and-swap attempts before giving up on a partition that keeps moving.
const ATTEMPTS: usize = 8;

/// A partition being reassigned, as ListPartitionReassignments shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reassignment {
    /// The topic.
    pub(crate) topic: String,
    /// The partition.
    pub(crate) partition: i32,
    /// Its current replicas: the target, then those being removed.
    pub(crate) replicas: Vec<i32>,
    /// Replicas being added.
    pub(crate) adding: Vec<i32>,
    /// Replicas being removed.
    pub(crate) removing: Vec<i32>,
}

/// Which leader an ElectLeaders asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElectionType {
    /// The first replica, if live and in sync (type 0).
    Preferred,
    /// Any live replica for a partition without a leader (type 1).
    Unclean,
}

fn refusal(r: Refused) -> Refusal {
    match r {
        Refused::InvalidAssignment(m) => (ResponseError::InvalidReplicaAssignment, m),
        Refused::NoReassignment => (
            ResponseError::NoReassignmentInProgress,
            "no reassignment is in progress".to_string(),
        ),
        Refused::ElectionNotNeeded => (
            ResponseError::ElectionNotNeeded,
            "leader election not needed".to_string(),
        ),
        Refused::PreferredNotAvailable => (
            ResponseError::PreferredLeaderNotAvailable,
            "the preferred replica is not live or not in sync".to_string(),
        ),
        Refused::NoEligibleLeader => (
            ResponseError::EligibleLeadersNotAvailable,
            "no live replica can lead".to_string(),
        ),
    }
}

fn unknown(topic: &str, partition: i32) -> Refusal {
    (
        ResponseError::UnknownTopicOrPartition,
        format!("{topic}-{partition} does not exist"),
    )
}

/// A partition's replicas and state in `view`.
fn placement(
    view: &ClusterView,
    topic: &str,
    partition: i32,
) -> Option<(Vec<i32>, PartitionState)> {
    let replicas = view
        .topics
        .get(topic)?
        .assignment
        .get(usize::try_from(partition).ok()?)?
        .clone();
    let state = view
        .partitions
        .get(&(topic.to_string(), partition))?
        .clone();
    Some((replicas, state))
}

impl ClusterNode {
    /// Starts moving a partition to `target`, or cancels its reassignment (`None`).
    pub(crate) async fn reassign(
        &self,
        topic: &str,
        partition: i32,
        target: Option<Vec<i32>>,
    ) -> Result<(), Refusal> {
        let epoch = self
            .change_partition(topic, partition, |replicas, state, registered| {
                let (replicas, next) = match &target {
                    Some(t) => reassign::start(replicas, state, t, registered),
                    None => reassign::cancel(replicas, state),
                }?;
                Ok((Some(replicas), next))
            })
            .await?;
        tracing::info!(topic, partition, target = ?target, partition_epoch = epoch, "reassignment changed");
        Ok(())
    }

    /// Elects a leader of one partition as asked.
    pub(crate) async fn elect(
        &self,
        topic: &str,
        partition: i32,
        election: ElectionType,
    ) -> Result<(), Refusal> {
        let epoch = self
            .change_partition(topic, partition, |replicas, state, live| {
                let next = match election {
                    ElectionType::Preferred => reassign::elect_preferred(replicas, state, live),
                    ElectionType::Unclean => reassign::elect_unclean(replicas, state, live),
                }?;
                Ok((None, next))
            })
            .await?;
        tracing::info!(
            topic,
            partition,
            ?election,
            partition_epoch = epoch,
            "leader elected on request"
        );
        Ok(())
    }

    /// Changes one partition by compare-and-swap: `plan` gives its new state (and new
    /// replicas, when they change) from its replicas, its state and the live brokers; a
    /// partition that moved meanwhile is planned again. Returns once this broker's view
    /// shows the change, with the new partition epoch.
    async fn change_partition(
        &self,
        topic: &str,
        partition: i32,
        plan: impl Fn(
            &[i32],
            &PartitionState,
            &BTreeSet<i32>,
        ) -> Result<(Option<Vec<i32>>, PartitionState), Refused>,
    ) -> Result<i64, Refusal> {
        for _ in 0..ATTEMPTS {
            let view = self.view.borrow().clone();
            let (replicas, state) =
                placement(&view, topic, partition).ok_or_else(|| unknown(topic, partition))?;
            let live: BTreeSet<i32> = view.serving_brokers();
            let (new_replicas, next) = plan(&replicas, &state, &live).map_err(refusal)?;
            let expected = state.partition_epoch;
            let written = match new_replicas {
                Some(r) => {
                    self.meta
                        .reassign_partition(topic, partition, expected, r, next, None)
                        .await
                }
                None => {
                    self.meta
                        .update_partition(topic, partition, expected, next, None)
                        .await
                }
            };
            match written {
                Ok(epoch) => {
                    self.seen(topic, partition, epoch).await?;
                    return Ok(epoch);
                }
                Err(MetadataError::Stale(_)) => continue,
                Err(e) => return Err(metadata_refusal(e, &format!("{topic}-{partition}"))),
            }
        }
        Err((
            ResponseError::RequestTimedOut,
            format!("{topic}-{partition} kept changing"),
        ))
    }

    /// Every partition being reassigned, or those of `only` (topic, partitions).
    pub(crate) fn reassignments(&self, only: Option<&[(String, Vec<i32>)]>) -> Vec<Reassignment> {
        let view = self.view.borrow().clone();
        let wanted = |topic: &str, partition: i32| {
            only.is_none_or(|o| {
                o.iter()
                    .any(|(t, ps)| t == topic && ps.contains(&partition))
            })
        };
        view.partitions
            .iter()
            .filter(|((topic, partition), state)| {
                reassign::is_reassigning(state) && wanted(topic, *partition)
            })
            .filter_map(|((topic, partition), state)| {
                let (replicas, _) = placement(&view, topic, *partition)?;
                Some(Reassignment {
                    topic: topic.clone(),
                    partition: *partition,
                    replicas,
                    adding: state.adding_replicas.clone(),
                    removing: state.removing_replicas.clone(),
                })
            })
            .collect()
    }

    /// Waits until this broker's view holds the partition at `epoch` or later.
    async fn seen(&self, topic: &str, partition: i32, epoch: i64) -> Result<(), Refusal> {
        let key = (topic.to_string(), partition);
        self.wait_view(
            |v| {
                v.partitions
                    .get(&key)
                    .is_some_and(|s| s.partition_epoch >= epoch)
            },
            &format!("{topic}-{partition} changed"),
        )
        .await
    }
}
