//! Taking up and giving up partitions of `__consumer_offsets` (Kafka's
//! `onElection`/`onResignation`): a new leader loads the groups of the partition from the
//! store before it answers for them; a former leader forgets them and sends its waiting
//! members to look for the new coordinator.

use std::collections::HashMap;

use kafka_protocol::ResponseError;

use super::consumer_records;
use super::state::{Group, JoinResult, SyncResult};
use super::GroupCoordinator;

impl GroupCoordinator {
    /// Loads the groups of `partition`; until done their requests get
    /// COORDINATOR_LOAD_IN_PROGRESS. Blocking: reads the partition. False when the load
    /// failed and the partition is not owned.
    pub(crate) fn load_partition(&self, partition: i32) -> bool {
        if !self.ownership.start_loading(partition) {
            return false;
        }
        self.start_txn_load(partition);
        let started = std::time::Instant::now();
        let loaded = self
            .store
            .load_partition(partition, self.config.offsets_topic_num_partitions);
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(partition, error = %e, "loading consumer groups failed");
                self.ownership.release(partition);
                self.forget_txns(partition);
                return false;
            }
        };
        let now = self.clock.now();
        let now_ms = self.clock.now_ms();
        let session = self.consumer_session_timeout();
        let mut consumer = Vec::new();
        for (group_id, records) in loaded.consumer_groups {
            match consumer_records::decode(&records, now, session) {
                Ok(mut cg) => {
                    self.restore_subscription_metadata(&mut cg);
                    consumer.push((group_id, cg, records));
                }
                Err(e) => {
                    tracing::error!(partition, group = %group_id, error = %e, "loading consumer groups failed");
                    self.ownership.release(partition);
                    self.forget_txns(partition);
                    return false;
                }
            }
        }
        let mut groups = self.lock();
        self.forget_partition(&mut groups, partition);
        if !self.ownership.loaded(partition) {
            // Given up while loading.
            self.forget_txns(partition);
            return false;
        }
        let open_txns = loaded.open_txns.len();
        for (group_id, record, offsets) in loaded.groups {
            let group = Group::from_stored(&group_id, record, offsets, now, now_ms);
            groups.insert(group_id, group);
        }
        for (group_id, epoch) in loaded.share_groups {
            let group = groups
                .entry(group_id.clone())
                .or_insert_with(|| Group::new(&group_id, now_ms));
            group.protocol_type = Some("share".into());
            group.share = Some(super::share::ShareGroupState::loaded(epoch));
        }
        for (group_id, cg, records) in consumer {
            let group = groups
                .entry(group_id.clone())
                .or_insert_with(|| Group::new(&group_id, now_ms));
            group.protocol_type = Some("consumer".into());
            group.consumer_shape = Some((cg.group_epoch, cg.assignment_epoch, cg.members.len()));
            group.consumer = Some(cg);
            group.consumer_records = records;
        }
        let count = groups
            .keys()
            .filter(|id| self.ownership.partition_of(id) == partition)
            .count();
        self.finish_txn_load(&mut groups, partition, loaded.open_txns);
        drop(groups);
        self.timer.notify_one();
        let took_ms = started.elapsed().as_millis() as u64;
        if count + open_txns > 0 {
            tracing::info!(
                partition,
                groups = count,
                open_txns,
                took_ms,
                "loaded consumer groups of a led partition"
            );
        } else {
            tracing::debug!(
                partition,
                took_ms,
                "loaded an empty partition of consumer groups"
            );
        }
        true
    }

    /// Gives `partition` up: its groups are forgotten here, and members waiting in a
    /// rebalance are answered NOT_COORDINATOR so they find the new coordinator.
    pub(crate) fn unload_partition(&self, partition: i32) {
        self.ownership.release(partition);
        self.forget_txns(partition);
        let mut groups = self.lock();
        let removed = self.forget_partition(&mut groups, partition);
        if removed > 0 {
            tracing::info!(partition, groups = removed, "gave up consumer groups");
        }
    }

    /// Removes the groups of `partition` from memory; returns how many.
    fn forget_partition(&self, groups: &mut HashMap<String, Group>, partition: i32) -> usize {
        let ids: Vec<String> = groups
            .keys()
            .filter(|id| self.ownership.partition_of(id) == partition)
            .cloned()
            .collect();
        for id in &ids {
            if let Some(mut group) = groups.remove(id) {
                for m in group.members.values_mut() {
                    m.complete_join(JoinResult::error(
                        &m.member_id,
                        ResponseError::NotCoordinator,
                    ));
                    m.complete_sync(SyncResult::error(ResponseError::NotCoordinator));
                }
            }
        }
        ids.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_config::GroupConfig;
    use sluice_storage::{GroupRecord, MemberRecord};

    use super::*;
    use crate::clock::ManualClock;
    use crate::group::ports::{GroupStore, MemoryGroupStore, MemoryTopics};
    use crate::group::Described;

    /// "my-group" lives in partition 12 of 50.
    const PARTITION: i32 = 12;

    fn coordinator_with_stored_group() -> GroupCoordinator {
        let store = Arc::new(MemoryGroupStore::default());
        let record = GroupRecord {
            protocol_type: Some("consumer".into()),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m".into()),
            members: vec![MemberRecord {
                member_id: "m".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                ..Default::default()
            }],
            ..Default::default()
        };
        store.store_group("my-group", &record).unwrap();
        GroupCoordinator::new(
            store,
            Arc::new(MemoryTopics::default()),
            ManualClock::new(),
            GroupConfig::default(),
        )
    }

    #[test]
    fn groups_are_answered_for_only_while_their_partition_is_loaded() {
        let c = coordinator_with_stored_group();
        assert_eq!(
            c.check_coordinator("my-group"),
            Err(ResponseError::NotCoordinator)
        );
        assert!(matches!(c.describe_group("my-group"), Described::Missing));

        assert!(c.load_partition(PARTITION));
        assert_eq!(c.check_coordinator("my-group"), Ok(()));
        // The stored generation and its member came back: the member's heartbeat is valid.
        assert_eq!(c.heartbeat("my-group", "m", None, 3), None);

        c.unload_partition(PARTITION);
        assert_eq!(
            c.check_coordinator("my-group"),
            Err(ResponseError::NotCoordinator)
        );
        assert!(matches!(c.describe_group("my-group"), Described::Missing));
    }

    #[test]
    fn a_partition_loaded_again_replaces_what_memory_held() {
        let c = coordinator_with_stored_group();
        assert!(c.load_partition(PARTITION));
        assert!(c.load_partition(PARTITION));
        assert_eq!(c.list_groups(&[], &[]).len(), 1);
        // Another partition holds none of the stored groups.
        assert!(c.load_partition(PARTITION + 1));
        assert_eq!(c.list_groups(&[], &[]).len(), 1);
    }
}
