//! What the group coordinator depends on, as narrow ports: the store of group metadata
//! and committed offsets, and the topics it checks and assigns. The broker plugs in
//! `__consumer_offsets` ([`super::log_store`]) and [`Storage`] (or the cluster's view) for
//! the topics; unit tests plug in the in-memory doubles below.

use sluice_storage::{CommittedOffset, GroupOffsets, GroupRecord, Storage, StorageError};

use std::collections::BTreeMap;

use super::consumer_records::ConsumerRecords;
use super::txn_offsets::OpenTxnOffsets;
use crate::coordinator_log::KeyedRecord;
use uuid::Uuid;

/// A stored group: its id, its last generation if any, and its committed offsets.
pub(crate) type StoredGroup = (String, Option<GroupRecord>, GroupOffsets);

/// What a partition of the group metadata topic holds.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PartitionState {
    /// Its groups.
    pub(crate) groups: Vec<StoredGroup>,
    /// Offsets of transactions without a marker yet.
    pub(crate) open_txns: OpenTxnOffsets,
    /// The consumer-protocol (KIP-848) records of each group that has some.
    pub(crate) consumer_groups: BTreeMap<String, ConsumerRecords>,
    /// Share groups (KIP-932) and their group epochs.
    pub(crate) share_groups: BTreeMap<String, i32>,
}

/// Durable group metadata and committed offsets.
pub(crate) trait GroupStore: Send + Sync {
    /// The stored groups whose state lives in `partition` of the group metadata topic
    /// (of `partitions`), for a coordinator that has just become its leader.
    fn load_partition(
        &self,
        partition: i32,
        partitions: i32,
    ) -> Result<PartitionState, StorageError>;
    /// Writes keyed records of a group's state (a `None` value removes the key): the
    /// consumer-protocol records, which the coordinator encodes itself.
    fn store_records(&self, group_id: &str, records: Vec<KeyedRecord>) -> Result<(), StorageError>;
    /// Stores a group's current generation.
    fn store_group(&self, group_id: &str, record: &GroupRecord) -> Result<(), StorageError>;
    /// Forgets a group and its committed `offsets`.
    fn delete_group(&self, group_id: &str, offsets: &[(String, i32)]) -> Result<(), StorageError>;
    /// Stores committed offsets.
    fn commit_offsets(
        &self,
        group_id: &str,
        offsets: &[(String, i32, CommittedOffset)],
    ) -> Result<(), StorageError>;
    /// Deletes committed offsets.
    fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), StorageError>;
}

/// The topics the coordinator checks offsets against and assigns to consumer groups.
pub(crate) trait TopicCatalog: Send + Sync {
    /// Every topic name.
    fn list_topic_names(&self) -> Vec<String>;
    /// A topic's id and partition count.
    fn topic_partitions(&self, name: &str) -> Option<(Uuid, i32)>;
    /// A topic's name by id.
    fn topic_name_by_id(&self, id: Uuid) -> Option<String>;

    /// Whether the topic has this partition.
    fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.topic_partitions(topic)
            .is_some_and(|(_, count)| partition >= 0 && partition < count)
    }
}

impl TopicCatalog for Storage {
    fn list_topic_names(&self) -> Vec<String> {
        self.topic_names()
    }

    fn topic_partitions(&self, name: &str) -> Option<(Uuid, i32)> {
        self.topic(name)
            .map(|t| (t.record.id, t.partitions.len() as i32))
    }

    fn topic_name_by_id(&self, id: Uuid) -> Option<String> {
        self.topic_by_id(id).map(|t| t.record.name.clone())
    }

    fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.partition(topic, partition).is_some()
    }
}

#[cfg(test)]
pub(crate) use memory::{MemoryGroupStore, MemoryTopics};

#[cfg(test)]
mod memory {
    use crate::internal_topics::partition_for;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// One group's committed offsets by partition.
    type PartitionOffsets = BTreeMap<(String, i32), CommittedOffset>;

    /// Group metadata, offsets and consumer-protocol records in maps.
    #[derive(Default)]
    pub(crate) struct MemoryGroupStore {
        groups: Mutex<BTreeMap<String, GroupRecord>>,
        offsets: Mutex<BTreeMap<String, PartitionOffsets>>,
        records: Mutex<BTreeMap<String, ConsumerRecords>>,
    }

    impl MemoryGroupStore {
        /// The stored generation of a group.
        pub(crate) fn group(&self, group_id: &str) -> Option<GroupRecord> {
            self.groups.lock().unwrap().get(group_id).cloned()
        }

        /// Every stored group.
        fn all_groups(&self) -> Vec<StoredGroup> {
            let groups = self.groups.lock().unwrap();
            let offsets = self.offsets.lock().unwrap();
            let mut ids: Vec<&String> = groups.keys().chain(offsets.keys()).collect();
            ids.sort();
            ids.dedup();
            ids.into_iter()
                .map(|id| {
                    let committed = offsets
                        .get(id)
                        .into_iter()
                        .flatten()
                        .map(|((t, p), o)| (t.clone(), *p, o.clone()))
                        .collect();
                    (id.clone(), groups.get(id).cloned(), committed)
                })
                .collect()
        }

        /// How many consumer-protocol records of a group are stored.
        pub(crate) fn consumer_record_count(&self, group_id: &str) -> usize {
            self.records
                .lock()
                .unwrap()
                .get(group_id)
                .map_or(0, |r| r.len())
        }
    }

    impl GroupStore for MemoryGroupStore {
        fn load_partition(
            &self,
            partition: i32,
            partitions: i32,
        ) -> Result<PartitionState, StorageError> {
            let mut groups = self.all_groups();
            groups.retain(|(id, _, _)| partition_for(id, partitions) == partition);
            let mut consumer_groups = BTreeMap::new();
            let mut share_groups = BTreeMap::new();
            for (id, records) in self.records.lock().unwrap().iter() {
                if partition_for(id, partitions) != partition {
                    continue;
                }
                let mut consumer = records.clone();
                consumer.retain(|k, v| {
                    let share = crate::group::share_records::group_of(k)
                        .ok()
                        .flatten()
                        .is_some();
                    if share {
                        if let Ok(epoch) = crate::group::share_records::decode_epoch(v) {
                            share_groups.insert(id.clone(), epoch);
                        }
                    }
                    !share
                });
                if !consumer.is_empty() {
                    consumer_groups.insert(id.clone(), consumer);
                }
            }
            Ok(PartitionState {
                groups,
                open_txns: OpenTxnOffsets::new(),
                consumer_groups,
                share_groups,
            })
        }

        fn store_records(
            &self,
            group_id: &str,
            records: Vec<KeyedRecord>,
        ) -> Result<(), StorageError> {
            let mut all = self.records.lock().unwrap();
            let group = all.entry(group_id.to_string()).or_default();
            for (k, v) in records {
                match v {
                    Some(v) => group.insert(k, v),
                    None => group.remove(&k),
                };
            }
            Ok(())
        }

        fn store_group(&self, group_id: &str, record: &GroupRecord) -> Result<(), StorageError> {
            self.groups
                .lock()
                .unwrap()
                .insert(group_id.to_string(), record.clone());
            Ok(())
        }

        fn delete_group(
            &self,
            group_id: &str,
            _offsets: &[(String, i32)],
        ) -> Result<(), StorageError> {
            self.groups.lock().unwrap().remove(group_id);
            self.offsets.lock().unwrap().remove(group_id);
            Ok(())
        }

        fn commit_offsets(
            &self,
            group_id: &str,
            offsets: &[(String, i32, CommittedOffset)],
        ) -> Result<(), StorageError> {
            let mut all = self.offsets.lock().unwrap();
            let group = all.entry(group_id.to_string()).or_default();
            for (t, p, o) in offsets {
                group.insert((t.clone(), *p), o.clone());
            }
            Ok(())
        }

        fn delete_offsets(
            &self,
            group_id: &str,
            partitions: &[(String, i32)],
        ) -> Result<(), StorageError> {
            if let Some(group) = self.offsets.lock().unwrap().get_mut(group_id) {
                for tp in partitions {
                    group.remove(tp);
                }
            }
            Ok(())
        }
    }

    /// Topics by name: id and partition count.
    #[derive(Default)]
    pub(crate) struct MemoryTopics {
        topics: Mutex<BTreeMap<String, (Uuid, i32)>>,
    }

    impl MemoryTopics {
        /// Adds (or resizes) a topic; returns its id.
        pub(crate) fn add(&self, name: &str, partitions: i32) -> Uuid {
            let mut topics = self.topics.lock().unwrap();
            let id = topics.get(name).map_or_else(Uuid::new_v4, |(id, _)| *id);
            topics.insert(name.to_string(), (id, partitions));
            id
        }
    }

    impl TopicCatalog for MemoryTopics {
        fn list_topic_names(&self) -> Vec<String> {
            self.topics.lock().unwrap().keys().cloned().collect()
        }

        fn topic_partitions(&self, name: &str) -> Option<(Uuid, i32)> {
            self.topics.lock().unwrap().get(name).copied()
        }

        fn topic_name_by_id(&self, id: Uuid) -> Option<String> {
            self.topics
                .lock()
                .unwrap()
                .iter()
                .find(|(_, (i, _))| *i == id)
                .map(|(n, _)| n.clone())
        }
    }
}
