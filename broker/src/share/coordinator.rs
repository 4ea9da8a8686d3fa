//! The share coordinator (KIP-932): the durable state of every share-partition, kept in
//! `__share_group_state` as Kafka's share coordinator keeps it. The coordinator of a
//! share-partition is the leader of its key's partition of the topic (this broker for
//! every key on a single node); the leader of the topic partition reads the state from it
//! when a group first fetches there and writes it after acknowledgements and releases.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use sluice_storage::StorageError;

use super::records::{self, ShareKey, ShareState};
use crate::coordinator_log::{CoordinatorLog, LogEntry};
use crate::coordinator_ownership::Ownership;
use crate::internal_topics::{partition_for, SHARE_GROUP_STATE_TOPIC};

/// Where the share coordinator's records go.
pub(crate) trait ShareStateStore: Send + Sync {
    /// Every share-partition of `partition`, as its last record left it.
    fn load_partition(&self, partition: i32) -> Result<Vec<(ShareKey, ShareState)>, StorageError>;
    /// Appends a share-partition's state (`None`: deleted) to `partition`.
    fn store(
        &self,
        partition: i32,
        key: &ShareKey,
        state: Option<&ShareState>,
    ) -> Result<(), StorageError>;
    /// Waits until what was stored in `partition` is durable.
    fn wait_durable(&self, partition: i32) -> BoxFuture<'_, Result<(), ResponseError>>;
}

/// The store on `__share_group_state`.
pub(crate) struct LogShareStateStore {
    log: Arc<CoordinatorLog>,
}

impl LogShareStateStore {
    /// A store over the partitions of `__share_group_state` this broker leads.
    pub(crate) fn new(log: Arc<CoordinatorLog>) -> Self {
        LogShareStateStore { log }
    }
}

impl ShareStateStore for LogShareStateStore {
    fn load_partition(&self, partition: i32) -> Result<Vec<(ShareKey, ShareState)>, StorageError> {
        let mut states: HashMap<ShareKey, ShareState> = HashMap::new();
        for entry in self.log.read_all(SHARE_GROUP_STATE_TOPIC, partition)? {
            let LogEntry::Record { key, value, .. } = entry else {
                continue;
            };
            let bad = |e: records::RecordError| StorageError::Corrupt(e.to_string());
            let Some(k) = records::decode_key(&key).map_err(bad)? else {
                continue;
            };
            match records::decode_value(value.as_deref()).map_err(bad)? {
                Some(s) => states.insert(k, s),
                None => states.remove(&k),
            };
        }
        Ok(states.into_iter().collect())
    }

    fn store(
        &self,
        partition: i32,
        key: &ShareKey,
        state: Option<&ShareState>,
    ) -> Result<(), StorageError> {
        self.log
            .append(
                SHARE_GROUP_STATE_TOPIC,
                partition,
                vec![(records::key(key), state.map(records::value))],
            )
            .map(|_| ())
    }

    fn wait_durable(&self, partition: i32) -> BoxFuture<'_, Result<(), ResponseError>> {
        Box::pin(self.log.wait_durable(SHARE_GROUP_STATE_TOPIC, partition))
    }
}

/// The share coordinator of the `__share_group_state` partitions this broker leads.
pub(crate) struct ShareCoordinator {
    store: Arc<dyn ShareStateStore>,
    states: Mutex<HashMap<ShareKey, ShareState>>,
    ownership: Ownership,
    partitions: i32,
}

impl ShareCoordinator {
    /// A coordinator of no key until a partition is loaded.
    pub(crate) fn new(store: Arc<dyn ShareStateStore>, partitions: i32) -> Self {
        ShareCoordinator {
            store,
            states: Mutex::new(HashMap::new()),
            ownership: Ownership::nothing(partitions),
            partitions,
        }
    }

    /// For unit tests: a coordinator of every key.
    #[cfg(test)]
    pub(crate) fn owning_everything(store: Arc<dyn ShareStateStore>, partitions: i32) -> Self {
        ShareCoordinator {
            store,
            states: Mutex::new(HashMap::new()),
            ownership: Ownership::everything(partitions),
            partitions,
        }
    }

    fn states(&self) -> MutexGuard<'_, HashMap<ShareKey, ShareState>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partition of `__share_group_state` that holds the key.
    pub(crate) fn partition_of(&self, key: &ShareKey) -> i32 {
        partition_for(&key.coordinator_key(), self.partitions)
    }

    /// See [`Ownership::set_leader_hint`].
    pub(crate) fn set_leader_hint(&self, hint: crate::coordinator_ownership::LeaderHint) {
        self.ownership.set_leader_hint(hint);
    }

    /// A share-partition's state; `None` before it was first written.
    pub(crate) fn read(&self, key: &ShareKey) -> Result<Option<ShareState>, ResponseError> {
        self.ownership.check(&key.coordinator_key())?;
        Ok(self.states().get(key).cloned())
    }

    /// Every share-partition of `group` this coordinator holds.
    pub(crate) fn group_states(&self, group: &str) -> Vec<(ShareKey, ShareState)> {
        self.states()
            .iter()
            .filter(|(k, _)| k.group == group)
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    /// Writes a share-partition's state (`None`: deletes it), answered once durable. A
    /// write from a leader of an older leader epoch than the last one is refused
    /// (FENCED_LEADER_EPOCH): a deposed leader's view must not undo its successor's.
    pub(crate) async fn write(
        &self,
        key: &ShareKey,
        state: Option<ShareState>,
    ) -> Result<(), ResponseError> {
        self.ownership.check(&key.coordinator_key())?;
        if let (Some(new), Some(old)) = (&state, self.states().get(key)) {
            if new.leader_epoch < old.leader_epoch {
                return Err(ResponseError::FencedLeaderEpoch);
            }
        }
        let partition = self.partition_of(key);
        self.store
            .store(partition, key, state.as_ref())
            .map_err(|e| match e {
                StorageError::NotLeader(_) => ResponseError::NotCoordinator,
                e => {
                    tracing::error!(group = %key.group, error = %e, "storing share-partition state failed");
                    ResponseError::CoordinatorNotAvailable
                }
            })?;
        {
            let mut states = self.states();
            match state {
                Some(s) => states.insert(key.clone(), s),
                None => states.remove(key),
            };
        }
        self.store.wait_durable(partition).await
    }

    /// Loads `partition` of `__share_group_state` (blocking); false when it failed.
    pub(crate) fn load_partition(&self, partition: i32) -> bool {
        if !self.ownership.start_loading(partition) {
            return false;
        }
        let loaded = match self.store.load_partition(partition) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(partition, error = %e, "loading share-partition state failed");
                self.ownership.release(partition);
                return false;
            }
        };
        let count = loaded.len();
        {
            let mut states = self.states();
            states.retain(|k, _| self.partition_of(k) != partition);
            states.extend(loaded);
        }
        if !self.ownership.loaded(partition) {
            self.unload_partition(partition);
            return false;
        }
        if count > 0 {
            tracing::info!(
                partition,
                share_partitions = count,
                "loaded share-partition state"
            );
        }
        true
    }

    /// Gives `partition` up.
    pub(crate) fn unload_partition(&self, partition: i32) {
        self.ownership.release(partition);
        self.states()
            .retain(|k, _| self.partition_of(k) != partition);
    }
}

#[cfg(test)]
pub(crate) mod memory {
    //! An in-memory [`ShareStateStore`] for unit tests.

    use super::*;

    /// The records of one partition, in order.
    type PartitionRecords = Vec<(ShareKey, Option<ShareState>)>;

    /// Records by partition.
    #[derive(Default)]
    pub(crate) struct MemoryShareStateStore {
        pub(crate) records: Mutex<HashMap<i32, PartitionRecords>>,
    }

    impl ShareStateStore for MemoryShareStateStore {
        fn load_partition(
            &self,
            partition: i32,
        ) -> Result<Vec<(ShareKey, ShareState)>, StorageError> {
            let mut states = HashMap::new();
            for (k, s) in self
                .records
                .lock()
                .unwrap()
                .get(&partition)
                .into_iter()
                .flatten()
            {
                match s {
                    Some(s) => states.insert(k.clone(), s.clone()),
                    None => states.remove(k),
                };
            }
            Ok(states.into_iter().collect())
        }

        fn store(
            &self,
            partition: i32,
            key: &ShareKey,
            state: Option<&ShareState>,
        ) -> Result<(), StorageError> {
            self.records
                .lock()
                .unwrap()
                .entry(partition)
                .or_default()
                .push((key.clone(), state.cloned()));
            Ok(())
        }

        fn wait_durable(&self, _partition: i32) -> BoxFuture<'_, Result<(), ResponseError>> {
            Box::pin(async { Ok(()) })
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::memory::MemoryShareStateStore;
    use super::*;
    use crate::share::records::StateBatch;

    fn key(group: &str, partition: i32) -> ShareKey {
        ShareKey {
            group: group.into(),
            topic_id: Uuid::from_u128(9),
            partition,
        }
    }

    fn state(start_offset: i64) -> ShareState {
        ShareState {
            state_epoch: 0,
            leader_epoch: -1,
            start_offset,
            batches: vec![StateBatch {
                first_offset: start_offset + 1,
                last_offset: start_offset + 1,
                delivery_state: 2,
                delivery_count: 1,
            }],
        }
    }

    #[tokio::test]
    async fn written_state_is_read_back_and_survives_a_new_coordinator() {
        let store = Arc::new(MemoryShareStateStore::default());
        let c = ShareCoordinator::owning_everything(store.clone(), 50);
        assert_eq!(c.read(&key("g", 0)).unwrap(), None);
        c.write(&key("g", 0), Some(state(5))).await.unwrap();
        c.write(&key("g", 0), Some(state(7))).await.unwrap();
        c.write(&key("g", 1), Some(state(1))).await.unwrap();
        c.write(&key("h", 0), Some(state(3))).await.unwrap();
        c.write(&key("h", 0), None).await.unwrap();
        assert_eq!(c.read(&key("g", 0)).unwrap(), Some(state(7)));
        let mut g: Vec<_> = c
            .group_states("g")
            .into_iter()
            .map(|(k, s)| (k.partition, s.start_offset))
            .collect();
        g.sort();
        assert_eq!(g, vec![(0, 7), (1, 1)]);

        // A coordinator that takes the partitions over loads the last state of each.
        let next = ShareCoordinator::new(store, 50);
        assert_eq!(next.read(&key("g", 0)), Err(ResponseError::NotCoordinator));
        for p in 0..50 {
            assert!(next.load_partition(p));
        }
        assert_eq!(next.read(&key("g", 0)).unwrap(), Some(state(7)));
        assert_eq!(next.read(&key("h", 0)).unwrap(), None);
        // A write from an older leadership than the last write's is refused.
        let mut newer = state(9);
        newer.leader_epoch = 3;
        next.write(&key("g", 0), Some(newer)).await.unwrap();
        assert_eq!(
            next.write(&key("g", 0), Some(state(11))).await,
            Err(ResponseError::FencedLeaderEpoch)
        );
        assert_eq!(
            next.read(&key("g", 0)).unwrap().map(|s| s.start_offset),
            Some(9)
        );
        next.unload_partition(next.partition_of(&key("g", 0)));
        assert_eq!(next.read(&key("g", 0)), Err(ResponseError::NotCoordinator));
    }
}
