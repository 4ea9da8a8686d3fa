//! The controller: while this broker holds the controller term, it keeps every
//! partition's leader and ISR in line with the live brokers, one compare-and-swap per
//! partition, and stops the moment the term ends.

mod plan;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::error::MetadataError;
use crate::model::ClusterView;
use crate::port::ClusterMetadata;
use crate::reassign;
use crate::term::ControllerTerm;

pub use plan::{plan_partition, unclean_enabled, UNCLEAN_LEADER_ELECTION};

/// How long to wait before trying again after the store failed.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);
/// Compare-and-swap attempts on one partition before waiting for the next view.
const MAX_CAS_ATTEMPTS: usize = 8;

/// Campaigns, acts as controller for as long as each term lasts, and campaigns again; runs
/// until the task is dropped.
pub async fn run(meta: Arc<dyn ClusterMetadata>) {
    loop {
        match meta.campaign().await {
            Ok(mut term) => {
                info!(node_id = term.node_id(), "became the controller");
                serve_term(meta.as_ref(), &mut term).await;
                info!(node_id = term.node_id(), "controller term ended");
            }
            Err(error) => {
                warn!(%error, "campaign for controller failed");
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        }
    }
}

/// Acts as controller until `term` ends: reacts to every view change (and retries what
/// failed after a short backoff).
pub async fn serve_term(meta: &dyn ClusterMetadata, term: &mut ControllerTerm) {
    let mut views = meta.view();
    while term.is_active() {
        let view = views.borrow_and_update().clone();
        let unfinished = reconcile(meta, term, &view).await;
        tokio::select! {
            _ = term.ended() => return,
            changed = views.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RETRY_BACKOFF), if unfinished => {}
        }
    }
}

/// Brings every partition of `view` in line with its live brokers; true when some change
/// could not be made (to be retried).
async fn reconcile(meta: &dyn ClusterMetadata, term: &ControllerTerm, view: &ClusterView) -> bool {
    let live: BTreeSet<i32> = view.serving_brokers();
    let mut unfinished = false;
    for ((topic, partition), state) in &view.partitions {
        let Some(record) = view.topics.get(topic) else {
            continue;
        };
        let Some(assignment) = record.assignment.get(*partition as usize) else {
            continue;
        };
        let unclean = unclean_enabled(&record.configs);
        let mut current = state.clone();
        for attempt in 0.. {
            if !term.is_active() {
                return false;
            }
            let Some(next) = plan_partition(assignment, &current, &live, unclean) else {
                break;
            };
            if attempt == MAX_CAS_ATTEMPTS {
                unfinished = true;
                break;
            }
            match meta
                .update_partition(
                    topic,
                    *partition,
                    current.partition_epoch,
                    next.clone(),
                    Some(term.fence()),
                )
                .await
            {
                Ok(partition_epoch) => {
                    info!(
                        topic, partition, leader = next.leader, leader_epoch = next.leader_epoch,
                        isr = ?next.isr, partition_epoch, "partition changed"
                    );
                    break;
                }
                Err(MetadataError::Stale(now)) => {
                    debug!(
                        topic,
                        partition, "partition moved on; planning again from its state"
                    );
                    current = *now;
                }
                Err(MetadataError::UnknownTopic(_)) => break,
                Err(MetadataError::NotController) => {
                    warn!(
                        topic,
                        partition, "no longer the controller: partition change refused"
                    );
                    return false;
                }
                Err(error) => {
                    warn!(topic, partition, %error, "partition change failed");
                    unfinished = true;
                    break;
                }
            }
        }
    }
    complete_reassignments(meta, term, view).await || unfinished
}

/// Completes every reassignment whose target replicas are all in sync; true when one
/// could not be written (to be retried).
async fn complete_reassignments(
    meta: &dyn ClusterMetadata,
    term: &ControllerTerm,
    view: &ClusterView,
) -> bool {
    let mut unfinished = false;
    for ((topic, partition), state) in &view.partitions {
        let Some(replicas) = view
            .topics
            .get(topic)
            .and_then(|t| t.assignment.get(*partition as usize))
        else {
            continue;
        };
        let Some((target, next)) = reassign::complete(replicas, state) else {
            continue;
        };
        if !term.is_active() {
            return false;
        }
        match meta
            .reassign_partition(
                topic,
                *partition,
                state.partition_epoch,
                target.clone(),
                next.clone(),
                Some(term.fence()),
            )
            .await
        {
            Ok(partition_epoch) => info!(
                topic, partition, replicas = ?target, leader = next.leader,
                leader_epoch = next.leader_epoch, partition_epoch, "reassignment completed"
            ),
            // Moved on: the next view says whether it is still to be done.
            Err(MetadataError::Stale(_) | MetadataError::UnknownTopic(_)) => {}
            Err(MetadataError::NotController) => {
                warn!(
                    topic,
                    partition, "no longer the controller: completion refused"
                );
                return false;
            }
            Err(error) => {
                warn!(topic, partition, %error, "completing a reassignment failed");
                unfinished = true;
            }
        }
    }
    unfinished
}

#[cfg(test)]
mod tests;
