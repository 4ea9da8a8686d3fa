//! The group coordinator: classic group membership (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup), committed offsets, and the operator views of groups.
//!
//! All groups live in memory behind one lock and are persisted through the group store
//! after each completed generation and each offset commit: the `__consumer_offsets`
//! partitions this broker leads (every one on a single node), each loaded when this broker
//! becomes its leader ([`loading`]). Requests that
//! must wait (JoinGroup until the join phase completes, SyncGroup until the leader sends
//! the assignment) get a oneshot channel that the state machine completes.

mod assignor;
mod classic;
mod consumer;
mod consumer_records;
mod consumer_store;
mod loading;
pub(crate) mod log_store;
mod offsets;
pub(crate) mod ports;
mod records;
mod share;
mod share_records;
mod state;
#[cfg(test)]
mod tests;
mod txn_offsets;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::ResponseError;
use sluice_config::{GroupConfig, ShareConfig};
use sluice_storage::StorageError;

use crate::clock::Clock;
use crate::coordinator_ownership::Ownership;
use ports::{GroupStore, TopicCatalog};
use tokio::sync::{oneshot, watch, Notify};

pub(crate) use classic::{JoinParams, SyncParams};
pub(crate) use consumer::ConsumerHeartbeat;
pub(crate) use offsets::OffsetCommitEntry;
pub(crate) use share::ShareHeartbeat;
pub(crate) use state::{JoinResult, SyncResult};
pub(crate) use views::Described;

use state::Group;

/// A result now, or a channel the state machine answers on later.
pub(crate) enum Pending<T> {
    Ready(T),
    Wait(oneshot::Receiver<T>),
}

/// The broker's group coordinator: for the groups of the `__consumer_offsets` partitions
/// this broker leads.
pub(crate) struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    /// Which groups this coordinator answers for.
    ownership: Ownership,
    /// Group metadata and committed offsets.
    store: Arc<dyn GroupStore>,
    /// The topics offsets and assignments refer to.
    topics: Arc<dyn TopicCatalog>,
    /// The time source of every deadline and timestamp.
    clock: Arc<dyn Clock>,
    config: GroupConfig,
    /// Share groups' membership settings.
    share_config: ShareConfig,
    /// Woken whenever a deadline earlier than the timer's may have been set.
    timer: Notify,
    /// Offsets of open transactions per partition, awaiting their marker.
    open_txn_offsets: Mutex<HashMap<i32, txn_offsets::PartitionTxns>>,
}

impl GroupCoordinator {
    /// For unit tests: a coordinator of every group in `store`; `topics` and `clock` are
    /// what it checks and times against.
    #[cfg(test)]
    pub(crate) fn with_ports(
        store: Arc<dyn GroupStore>,
        topics: Arc<dyn TopicCatalog>,
        clock: Arc<dyn Clock>,
        config: GroupConfig,
    ) -> Result<Self, StorageError> {
        let now = clock.now();
        let now_ms = clock.now_ms();
        let mut groups = HashMap::new();
        let partitions = config.offsets_topic_num_partitions;
        for p in 0..partitions {
            for (group_id, record, offsets) in store.load_partition(p, partitions)?.groups {
                let group = Group::from_stored(&group_id, record, offsets, now, now_ms);
                groups.insert(group_id, group);
            }
        }
        if !groups.is_empty() {
            tracing::info!(groups = groups.len(), "loaded consumer groups");
        }
        Ok(GroupCoordinator {
            groups: Mutex::new(groups),
            ownership: Ownership::everything(config.offsets_topic_num_partitions),
            store,
            topics,
            clock,
            config,
            share_config: ShareConfig::default(),
            timer: Notify::new(),
            open_txn_offsets: Mutex::new(HashMap::new()),
        })
    }

    /// A coordinator that answers for no group until a partition of `__consumer_offsets`
    /// is loaded ([`GroupCoordinator::load_partition`]).
    pub(crate) fn new(
        store: Arc<dyn GroupStore>,
        topics: Arc<dyn TopicCatalog>,
        clock: Arc<dyn Clock>,
        config: GroupConfig,
    ) -> Self {
        GroupCoordinator {
            groups: Mutex::new(HashMap::new()),
            ownership: Ownership::nothing(config.offsets_topic_num_partitions),
            store,
            topics,
            clock,
            config,
            share_config: ShareConfig::default(),
            timer: Notify::new(),
            open_txn_offsets: Mutex::new(HashMap::new()),
        }
    }

    /// The same coordinator with share groups' membership settings.
    pub(crate) fn with_share_config(mut self, share_config: ShareConfig) -> Self {
        self.share_config = share_config;
        self
    }

    /// Whether this coordinator answers for the group now: NOT_COORDINATOR when another
    /// broker does, COORDINATOR_LOAD_IN_PROGRESS while its state is being loaded.
    pub(crate) fn check_coordinator(&self, group_id: &str) -> Result<(), ResponseError> {
        self.ownership.check(group_id)
    }

    /// See [`Ownership::set_leader_hint`].
    pub(crate) fn set_leader_hint(&self, hint: crate::coordinator_ownership::LeaderHint) {
        self.ownership.set_leader_hint(hint);
    }

    /// The partition of `__consumer_offsets` that holds the group's state.
    pub(crate) fn partition_of(&self, group_id: &str) -> i32 {
        self.ownership.partition_of(group_id)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a group's current generation; a failure is logged and reported.
    fn persist(&self, group: &Group) -> Result<(), StorageError> {
        self.store
            .store_group(&group.group_id, &group.to_record())
            .inspect_err(
                |e| tracing::error!(group = %group.group_id, error = %e, "storing group failed"),
            )
    }

    /// Runs session, join and sync deadlines until `stop`; sleeps until the next one.
    pub(crate) async fn run_timers(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let next = self.expire(self.clock.now());
            let sleep = match next {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)),
                None => tokio::time::sleep(Duration::from_secs(3600)),
            };
            tokio::select! {
                _ = sleep => {}
                _ = self.timer.notified() => {}
                _ = crate::stopped(&mut stop) => {
                    self.fail_waiting();
                    return;
                }
            }
        }
    }

    /// Answers every waiting JoinGroup and SyncGroup with NOT_COORDINATOR, so that
    /// shutdown does not wait for rebalances and clients look for the coordinator again.
    pub(crate) fn fail_waiting(&self) {
        let mut groups = self.lock();
        for group in groups.values_mut() {
            for m in group.members.values_mut() {
                m.complete_join(JoinResult::error(
                    &m.member_id,
                    ResponseError::NotCoordinator,
                ));
                m.complete_sync(SyncResult::error(ResponseError::NotCoordinator));
            }
        }
    }

    /// Expires committed offsets of empty groups and forgets empty groups with none left.
    pub(crate) fn expire_offsets(&self, now_ms: i64) -> usize {
        let mut groups = self.lock();
        let mut expired = 0;
        let mut dead = Vec::new();
        for group in groups.values_mut() {
            expired += self.expire_group_offsets(group, now_ms);
            // A share group's progress is in its share-partitions: it stays until deleted.
            if group.is_empty()
                && group.pending_members.is_empty()
                && group.offsets.is_empty()
                && group.share.is_none()
            {
                dead.push(group.group_id.clone());
            }
        }
        for id in dead {
            let Some(mut group) = groups.remove(&id) else {
                continue;
            };
            let deleted = self
                .forget_consumer_records(&mut group)
                .and_then(|()| self.store.delete_group(&id, &[]));
            if let Err(e) = deleted {
                tracing::error!(group = %id, error = %e, "deleting an expired group failed");
            }
        }
        expired
    }
}
