//! ISR changes a leader makes (Kafka's `AlterPartition`): followers that fell behind for
//! `replica.lag.time.max.ms` are proposed out, followers that caught up back in, each a
//! compare-and-swap of the partition state in the cluster metadata; counted for metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sluice_cluster::{MetadataError, PartitionState};
use sluice_storage::now_ms;

use super::leader::{IsrChange, LeaderState};
use super::manager::{Replica, ReplicaManager, Role, TopicPartition};

/// ISR shrinks and expansions committed by this broker as a leader.
#[derive(Default)]
pub(crate) struct IsrCounts {
    shrinks: AtomicU64,
    expands: AtomicU64,
}

impl ReplicaManager {
    /// ISR shrinks and expansions this broker committed as a leader, since it started.
    pub(crate) fn isr_changes(&self) -> (u64, u64) {
        (
            self.isr_changes.shrinks.load(Ordering::Relaxed),
            self.isr_changes.expands.load(Ordering::Relaxed),
        )
    }

    /// Proposes ISR shrinks for followers that fell behind (run every half lag time).
    /// Not while fenced: the controller may have moved leadership already, and a shrink
    /// to this broker alone, committed just before its session expired, would leave the
    /// partition no replica to elect but this one (Kafka's controller refuses an
    /// AlterPartition with a stale broker epoch).
    pub(crate) fn shrink_lagging(&self) {
        if self.fenced() {
            return;
        }
        let now = now_ms();
        let replicas: Vec<(TopicPartition, Arc<Replica>)> = self
            .replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((topic, index), replica) in replicas {
            let leo = replica.partition.log_end_offset();
            let change = {
                let mut role = replica.role();
                let Role::Leader(l) = &mut *role else {
                    continue;
                };
                let change = l.shrink(leo, now, self.settings.lag_time_max_ms);
                if let Some(c) = &change {
                    l.propose(c.clone());
                }
                change.map(|c| (c, l.clone()))
            };
            if let Some((change, state)) = change {
                tracing::info!(topic, partition = index, isr = ?change.isr(), "shrinking ISR");
                self.commit_isr_change(topic, index, replica, change, state);
            }
        }
    }

    /// Commits an ISR change with a compare-and-swap on the partition epoch, in the
    /// background; the leader keeps the maximal ISR until it is settled.
    pub(super) fn commit_isr_change(
        &self,
        topic: String,
        index: i32,
        replica: Arc<Replica>,
        change: IsrChange,
        state: LeaderState,
    ) {
        let Some(me) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let (adding_replicas, removing_replicas) = me
                .reassignment_of(&topic, index, state.partition_epoch)
                .await;
            let new = PartitionState {
                leader: state.node_id,
                leader_epoch: state.leader_epoch,
                isr: change.isr().to_vec(),
                adding_replicas,
                removing_replicas,
                partition_epoch: state.partition_epoch,
            };
            let result = me
                .meta
                .update_partition(&topic, index, state.partition_epoch, new, None)
                .await;
            {
                let mut role = replica.role();
                let Role::Leader(l) = &mut *role else {
                    return;
                };
                if l.leader_epoch != state.leader_epoch {
                    return;
                }
                match result {
                    Ok(epoch) => {
                        tracing::info!(topic, partition = index, isr = ?change.isr(), partition_epoch = epoch, "ISR changed");
                        let counter = match change {
                            IsrChange::Shrink(_) => &me.isr_changes.shrinks,
                            IsrChange::Expand(_) => &me.isr_changes.expands,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        l.committed(epoch);
                    }
                    Err(MetadataError::Stale(current)) => {
                        if l.refused(&current) {
                            tracing::info!(
                                topic,
                                partition = index,
                                "ISR change refused: the partition moved on"
                            );
                        } else {
                            tracing::info!(
                                topic,
                                partition = index,
                                leader = current.leader,
                                leader_epoch = current.leader_epoch,
                                "ISR change refused: another leader or epoch; no more changes until the view catches up"
                            );
                        }
                    }
                    Err(e) => {
                        tracing::warn!(topic, partition = index, error = %e, "ISR change failed; will retry");
                        l.failed();
                    }
                }
            }
            me.advance_high_watermark(&replica);
        });
    }
}
