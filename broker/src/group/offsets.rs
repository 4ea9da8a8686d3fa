//! Committed offsets: OffsetCommit validation as Kafka does it, OffsetFetch, OffsetDelete,
//! expiry of empty groups' offsets, and cleanup when a topic is deleted.

use std::time::Instant;

use kafka_protocol::ResponseError;
use sluice_storage::CommittedOffset;

use super::state::{Group, GroupState};
use super::GroupCoordinator;

/// One partition of an OffsetCommit request.
pub(crate) struct OffsetCommitEntry {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: Option<String>,
}

/// A committed offset as OffsetFetch reports it; `None` when nothing is committed.
pub(crate) type FetchedOffset = Option<CommittedOffset>;

impl GroupCoordinator {
    /// OffsetCommit: `Err` is the error for every partition, otherwise one result per entry.
    pub(crate) fn commit_offsets(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        entries: &[OffsetCommitEntry],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        let now = self.clock.now();
        let mut groups = self.lock();
        if !groups.contains_key(group_id) {
            if generation_id >= 0 {
                // A member of a generation that no longer exists.
                return Err(ResponseError::IllegalGeneration);
            }
            // A group that only stores offsets (no group management).
            groups.insert(
                group_id.to_string(),
                Group::new(group_id, self.clock.now_ms()),
            );
        }
        let Some(group) = groups.get_mut(group_id) else {
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        if let Some(cg) = &group.consumer {
            if let Some(e) = Self::check_consumer_member_epoch(cg, member_id, generation_id) {
                return Err(e);
            }
        } else if let Some(e) =
            self.check_classic_commit(group, member_id, group_instance_id, generation_id, now)
        {
            return Err(e);
        }
        let commit_timestamp = self.clock.now_ms();
        let max_metadata = self.config.offset_metadata_max_bytes.max(0) as usize;
        let mut results = Vec::with_capacity(entries.len());
        let mut to_store = Vec::new();
        for e in entries {
            let partition_exists = self.topics.partition_exists(&e.topic, e.partition);
            if !partition_exists {
                results.push(Some(ResponseError::UnknownTopicOrPartition));
                continue;
            }
            let metadata = e.metadata.clone().unwrap_or_default();
            if metadata.len() > max_metadata {
                results.push(Some(ResponseError::OffsetMetadataTooLarge));
                continue;
            }
            to_store.push((
                e.topic.clone(),
                e.partition,
                CommittedOffset {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata,
                    commit_timestamp,
                },
            ));
            results.push(None);
        }
        if !to_store.is_empty() {
            if let Err(e) = self.store.commit_offsets(group_id, &to_store) {
                tracing::error!(group = %group_id, error = %e, "storing committed offsets failed");
                return Err(ResponseError::CoordinatorNotAvailable);
            }
            for (topic, partition, committed) in to_store {
                group.offsets.insert((topic, partition), committed);
            }
        }
        Ok(results)
    }

    /// Kafka's checks of a classic group's OffsetCommit; a commit also counts as a
    /// heartbeat of the member.
    fn check_classic_commit(
        &self,
        group: &mut Group,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        if group.is_static_member_fenced(group_instance_id, member_id) {
            return Some(ResponseError::FencedInstanceId);
        }
        if generation_id < 0 && group.state == GroupState::Empty {
            // Offsets stored without group management (admin tools, manual assignment).
            return None;
        }
        let Some(member) = group.members.get_mut(member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if generation_id != group.generation_id {
            return Some(ResponseError::IllegalGeneration);
        }
        if group.state == GroupState::CompletingRebalance {
            return Some(ResponseError::RebalanceInProgress);
        }
        member.session_deadline =
            now + std::time::Duration::from_millis(member.session_timeout_ms.max(0) as u64);
        None
    }

    /// OffsetFetch v9 from a member of a consumer-protocol group names itself and its
    /// epoch; a stale epoch is refused so the member does not resume from old offsets.
    pub(crate) fn check_fetch_member(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Option<ResponseError> {
        let member_id = member_id?;
        let groups = self.lock();
        let cg = groups.get(group_id)?.consumer.as_ref()?;
        if member_epoch < 0 && member_id.is_empty() {
            return None;
        }
        Self::check_consumer_member_epoch(cg, member_id, member_epoch)
    }

    /// OffsetFetch for one group: the requested partitions, or every committed one.
    pub(crate) fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<(String, Vec<(i32, FetchedOffset)>)> {
        let groups = self.lock();
        let group = groups.get(group_id);
        match topics {
            Some(topics) => topics
                .iter()
                .map(|(topic, partitions)| {
                    let fetched = partitions
                        .iter()
                        .map(|p| {
                            let committed =
                                group.and_then(|g| g.offsets.get(&(topic.clone(), *p)).cloned());
                            (*p, committed)
                        })
                        .collect();
                    (topic.clone(), fetched)
                })
                .collect(),
            None => {
                let mut out: Vec<(String, Vec<(i32, FetchedOffset)>)> = Vec::new();
                for ((topic, partition), committed) in group.iter().flat_map(|g| g.offsets.iter()) {
                    match out.last_mut() {
                        Some((t, parts)) if t == topic => {
                            parts.push((*partition, Some(committed.clone())))
                        }
                        _ => out.push((topic.clone(), vec![(*partition, Some(committed.clone()))])),
                    }
                }
                out
            }
        }
    }

    /// OffsetDelete: `Err` is a group-level error; otherwise per topic, per partition.
    #[allow(clippy::type_complexity)]
    pub(crate) fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<Vec<(String, Vec<(i32, Option<ResponseError>)>)>, ResponseError> {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(ResponseError::GroupIdNotFound);
        };
        let subscribed = if group.is_empty() {
            Some(Default::default())
        } else if let Some(cg) = &group.consumer {
            Some(cg.subscribed_topic_names())
        } else {
            group.subscribed_topics()
        };
        let Some(subscribed) = subscribed else {
            return Err(ResponseError::NonEmptyGroup);
        };
        let mut out = Vec::new();
        let mut deleted = Vec::new();
        for (topic, partitions) in topics {
            let partition_count = self.topics.topic_partitions(topic).map(|(_, n)| n);
            let mut results = Vec::new();
            for p in partitions {
                let exists = partition_count.is_some_and(|n| *p >= 0 && *p < n);
                let error = if !exists {
                    Some(ResponseError::UnknownTopicOrPartition)
                } else if subscribed.contains(topic) {
                    Some(ResponseError::GroupSubscribedToTopic)
                } else {
                    deleted.push((topic.clone(), *p));
                    None
                };
                results.push((*p, error));
            }
            out.push((topic.clone(), results));
        }
        if let Err(e) = self.store.delete_offsets(group_id, &deleted) {
            tracing::error!(group = %group_id, error = %e, "deleting committed offsets failed");
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        for key in deleted {
            group.offsets.remove(&key);
        }
        Ok(out)
    }

    /// Drops every group's committed offsets of a deleted topic.
    pub(crate) fn on_topic_deleted(&self, topic: &str) {
        let mut groups = self.lock();
        for group in groups.values_mut() {
            let gone: Vec<(String, i32)> = group
                .offsets
                .keys()
                .filter(|(t, _)| t == topic)
                .cloned()
                .collect();
            if gone.is_empty() {
                continue;
            }
            if let Err(e) = self.store.delete_offsets(&group.group_id, &gone) {
                tracing::error!(group = %group.group_id, topic, error = %e, "deleting offsets of a deleted topic failed");
                continue;
            }
            for key in gone {
                group.offsets.remove(&key);
            }
        }
    }

    /// Offsets of an empty group expire `offsets.retention.minutes` after the later of
    /// their commit and the group becoming empty (KIP-211); returns how many expired.
    pub(super) fn expire_group_offsets(&self, group: &mut Group, now_ms: i64) -> usize {
        if !group.is_empty() {
            return 0;
        }
        let retention = self.config.offsets_retention_ms;
        let empty_since = if group.protocol_type.is_some() {
            group.state_timestamp
        } else {
            i64::MIN
        };
        let expired: Vec<(String, i32)> = group
            .offsets
            .iter()
            .filter(|(_, c)| {
                c.commit_timestamp
                    .max(empty_since)
                    .saturating_add(retention)
                    <= now_ms
            })
            .map(|(k, _)| k.clone())
            .collect();
        if expired.is_empty() {
            return 0;
        }
        if let Err(e) = self.store.delete_offsets(&group.group_id, &expired) {
            tracing::error!(group = %group.group_id, error = %e, "expiring committed offsets failed");
            return 0;
        }
        for key in &expired {
            group.offsets.remove(key);
        }
        tracing::info!(group = %group.group_id, offsets = expired.len(), "expired committed offsets");
        expired.len()
    }
}

impl GroupCoordinator {
    /// The member checks of a TxnOffsetCommit, as Kafka makes them for transactional
    /// commits: a commit without member information is accepted (old clients send none),
    /// one with it must come from a current member of the current generation.
    pub(crate) fn check_txn_commit(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        let mut groups = self.lock();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, self.clock.now_ms()));
        if generation_id < 0 && member_id.is_empty() && group_instance_id.is_none() {
            return Ok(());
        }
        if let Some(cg) = &group.consumer {
            return match Self::check_consumer_member_epoch(cg, member_id, generation_id) {
                // Transactional clients know ILLEGAL_GENERATION, not STALE_MEMBER_EPOCH.
                Some(ResponseError::StaleMemberEpoch) => Err(ResponseError::IllegalGeneration),
                Some(e) => Err(e),
                None => Ok(()),
            };
        }
        if group.is_static_member_fenced(group_instance_id, member_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if !group.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation_id != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// The per-partition checks of an offset commit: the partition exists and the
    /// metadata fits `offset.metadata.max.bytes`.
    pub(crate) fn check_commit_entry(
        &self,
        topic: &str,
        partition: i32,
        metadata: &str,
    ) -> Option<ResponseError> {
        let exists = self.topics.partition_exists(topic, partition);
        if !exists {
            return Some(ResponseError::UnknownTopicOrPartition);
        }
        if metadata.len() > self.config.offset_metadata_max_bytes.max(0) as usize {
            return Some(ResponseError::OffsetMetadataTooLarge);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_config::BrokerConfig;
    use sluice_storage::Storage;

    use super::*;
    use crate::clock::SystemClock;
    use crate::coordinator_log::{CoordinatorFlush, CoordinatorLog, SoleReplica};
    use crate::group::log_store::LogGroupStore;
    use crate::internal_topics::GROUP_METADATA_TOPIC;

    fn open(dir: &std::path::Path) -> GroupCoordinator {
        let d = dir.to_string_lossy().into_owned();
        let config = BrokerConfig::from_properties([
            ("log.dirs", d.as_str()),
            ("offsets.retention.minutes", "1"),
        ])
        .expect("config");
        let storage = Arc::new(Storage::open(&config).expect("storage"));
        let partitions = config.groups.offsets_topic_num_partitions;
        for (name, count) in [("t", 2), (GROUP_METADATA_TOPIC, partitions)] {
            if storage.topic(name).is_none() {
                storage
                    .create_topic(name, count, Default::default())
                    .expect("topic");
            }
        }
        let log = Arc::new(CoordinatorLog::new(
            storage.clone(),
            Arc::new(SoleReplica),
            CoordinatorFlush::AsPolicy,
        ));
        let store = Arc::new(LogGroupStore::new(log, partitions));
        let c = GroupCoordinator::new(store, storage, Arc::new(SystemClock), config.groups);
        for p in 0..partitions {
            assert!(c.load_partition(p));
        }
        c
    }

    fn committed(c: &GroupCoordinator, partition: i32) -> Option<CommittedOffset> {
        let wanted = [("t".to_string(), vec![partition])];
        c.fetch_offsets("g", Some(&wanted))[0].1[0].1.clone()
    }

    #[test]
    fn offsets_of_an_empty_group_expire_after_offsets_retention_minutes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = open(dir.path());
        let commit = |partition, offset| OffsetCommitEntry {
            topic: "t".into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: Some("m".into()),
        };
        c.commit_offsets("g", "", None, -1, &[commit(0, 5)])
            .expect("commit");
        let at = committed(&c, 0).expect("committed").commit_timestamp;
        c.commit_offsets("g", "", None, -1, &[commit(1, 7)])
            .expect("commit");
        let later = committed(&c, 1).expect("committed").commit_timestamp;

        assert_eq!(c.expire_offsets(at + 60_000 - 1), 0);
        assert_eq!(committed(&c, 0).map(|o| o.offset), Some(5));
        // Each offset expires one minute after its own commit (both, if committed in the
        // same millisecond).
        let expected = if later == at { 2 } else { 1 };
        assert_eq!(c.expire_offsets(at + 60_000), expected);
        assert_eq!(committed(&c, 0), None);
        c.expire_offsets(later + 60_000);
        assert_eq!(committed(&c, 1), None);
        drop(c);

        // Gone from storage too: nothing comes back after a restart.
        let c = open(dir.path());
        assert_eq!((committed(&c, 0), committed(&c, 1)), (None, None));
    }
}
