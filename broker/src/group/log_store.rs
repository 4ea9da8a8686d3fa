//! Group state in the replicated `__consumer_offsets` topic, as Kafka keeps it: each change
//! is a keyed record in the group's partition, a removal is a tombstone, and a coordinator
//! that becomes leader of a partition replays it to load the groups it now answers for.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_storage::{CommittedOffset, GroupRecord, PendingOffset, StorageError};

use super::consumer_records::{self, ConsumerRecords};
use super::ports::{GroupStore, PartitionState, StoredGroup};
use super::records::{self, GroupLogRecord};
use super::share_records;
use super::txn_offsets::OpenTxnOffsets;
use crate::coordinator_log::{CoordinatorLog, KeyedRecord, LogEntry};
use crate::internal_topics::{partition_for, GROUP_METADATA_TOPIC};

/// The group store of a cluster member.
pub(crate) struct LogGroupStore {
    log: Arc<CoordinatorLog>,
    /// `offsets.topic.num.partitions`.
    partitions: i32,
}

impl LogGroupStore {
    /// A store over the internal topic's partitions this broker leads.
    pub(crate) fn new(log: Arc<CoordinatorLog>, partitions: i32) -> Self {
        LogGroupStore { log, partitions }
    }

    fn append(&self, group_id: &str, records: Vec<KeyedRecord>) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        let partition = partition_for(group_id, self.partitions);
        self.log
            .append(GROUP_METADATA_TOPIC, partition, records)
            .map(|_| ())
    }
}

impl GroupStore for LogGroupStore {
    fn load_partition(
        &self,
        partition: i32,
        _partitions: i32,
    ) -> Result<PartitionState, StorageError> {
        let entries = self.log.read_all(GROUP_METADATA_TOPIC, partition)?;
        replay(entries)
    }

    fn store_records(&self, group_id: &str, records: Vec<KeyedRecord>) -> Result<(), StorageError> {
        self.append(group_id, records)
    }

    fn store_group(&self, group_id: &str, record: &GroupRecord) -> Result<(), StorageError> {
        let records = vec![(
            records::group_key(group_id),
            Some(records::group_value(record)),
        )];
        self.append(group_id, records)
    }

    fn delete_group(&self, group_id: &str, offsets: &[(String, i32)]) -> Result<(), StorageError> {
        // Offsets first, then the group: compaction keeps no offset of a deleted group.
        let mut records: Vec<KeyedRecord> = offsets
            .iter()
            .map(|(t, p)| (records::offset_key(group_id, t, *p), None))
            .collect();
        records.push((records::group_key(group_id), None));
        self.append(group_id, records)
    }

    fn commit_offsets(
        &self,
        group_id: &str,
        offsets: &[(String, i32, CommittedOffset)],
    ) -> Result<(), StorageError> {
        let records = offsets
            .iter()
            .map(|(t, p, c)| {
                (
                    records::offset_key(group_id, t, *p),
                    Some(records::offset_value(c)),
                )
            })
            .collect();
        self.append(group_id, records)
    }

    fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), StorageError> {
        let records = partitions
            .iter()
            .map(|(t, p)| (records::offset_key(group_id, t, *p), None))
            .collect();
        self.append(group_id, records)
    }
}

/// The groups a partition's records leave, applying them in log order; a transaction's
/// offsets apply at its COMMIT marker and are dropped at its ABORT, and those of
/// transactions without a marker yet stay open. A record that cannot be read fails the
/// load rather than loading a group without it.
pub(crate) fn replay(entries: Vec<LogEntry>) -> Result<PartitionState, StorageError> {
    type Offsets = BTreeMap<(String, i32), CommittedOffset>;
    let mut groups: BTreeMap<String, (Option<GroupRecord>, Offsets)> = BTreeMap::new();
    let mut open: OpenTxnOffsets = OpenTxnOffsets::new();
    let mut consumer: BTreeMap<String, ConsumerRecords> = BTreeMap::new();
    let mut share: BTreeMap<String, i32> = BTreeMap::new();
    for entry in entries {
        let (key, value) = match entry {
            LogEntry::Record {
                key,
                value,
                producer_id: None,
            } => (key, value),
            LogEntry::Record {
                key,
                value,
                producer_id: Some(pid),
            } => {
                let decoded = records::decode(&key, value.as_deref())
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?;
                if let Some(GroupLogRecord::Offset {
                    group,
                    topic,
                    partition,
                    committed: Some(committed),
                }) = decoded
                {
                    let pending = open.entry(pid).or_default();
                    pending.retain(|p| {
                        !(p.group == group && p.topic == topic && p.partition == partition)
                    });
                    pending.push(PendingOffset {
                        group,
                        topic,
                        partition,
                        committed,
                    });
                }
                continue;
            }
            LogEntry::Marker {
                producer_id,
                commit,
            } => {
                let Some(offsets) = open.remove(&producer_id) else {
                    continue;
                };
                if commit {
                    for o in offsets {
                        groups
                            .entry(o.group)
                            .or_default()
                            .1
                            .insert((o.topic, o.partition), o.committed);
                    }
                }
                continue;
            }
        };
        let corrupt = |e: records::RecordError| StorageError::Corrupt(e.to_string());
        if let Some(group) = share_records::group_of(&key).map_err(corrupt)? {
            match value {
                Some(v) => share.insert(group, share_records::decode_epoch(&v).map_err(corrupt)?),
                None => share.remove(&group),
            };
            continue;
        }
        if let Some(group) = consumer_records::group_of(&key).map_err(corrupt)? {
            let records = consumer.entry(group).or_default();
            match value {
                Some(v) => records.insert(key, v),
                None => records.remove(&key),
            };
            continue;
        }
        let decoded = records::decode(&key, value.as_deref()).map_err(corrupt)?;
        match decoded {
            Some(GroupLogRecord::Offset {
                group,
                topic,
                partition,
                committed,
            }) => {
                let entry = groups.entry(group).or_default();
                match committed {
                    Some(c) => {
                        entry.1.insert((topic, partition), c);
                    }
                    None => {
                        entry.1.remove(&(topic, partition));
                    }
                }
            }
            Some(GroupLogRecord::Group { group, record }) => {
                groups.entry(group).or_default().0 = record;
            }
            None => {}
        }
    }
    let groups = groups
        .into_iter()
        .filter(|(_, (record, offsets))| record.is_some() || !offsets.is_empty())
        .map(|(id, (record, offsets))| {
            let offsets = offsets.into_iter().map(|((t, p), c)| (t, p, c)).collect();
            (id, record, offsets)
        })
        .collect::<Vec<StoredGroup>>();
    consumer.retain(|_, records| !records.is_empty());
    Ok(PartitionState {
        groups,
        open_txns: open,
        consumer_groups: consumer,
        share_groups: share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(records: Vec<KeyedRecord>) -> Vec<LogEntry> {
        records
            .into_iter()
            .map(|(key, value)| LogEntry::Record {
                key,
                value,
                producer_id: None,
            })
            .collect()
    }

    fn txn(producer_id: i64, group: &str, partition: i32, offset: i64) -> LogEntry {
        LogEntry::Record {
            key: records::offset_key(group, "t", partition),
            value: Some(records::offset_value(&committed(offset))),
            producer_id: Some(producer_id),
        }
    }

    fn committed(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 1,
        }
    }

    #[test]
    fn replay_keeps_the_last_value_and_drops_tombstoned_state() {
        let g1 = GroupRecord {
            protocol_type: Some("consumer".into()),
            generation: 1,
            ..Default::default()
        };
        let g2 = GroupRecord {
            generation: 2,
            ..g1.clone()
        };
        let records = vec![
            (records::group_key("a"), Some(records::group_value(&g1))),
            (
                records::offset_key("a", "t", 0),
                Some(records::offset_value(&committed(5))),
            ),
            (
                records::offset_key("a", "t", 0),
                Some(records::offset_value(&committed(9))),
            ),
            (
                records::offset_key("a", "t", 1),
                Some(records::offset_value(&committed(3))),
            ),
            (records::offset_key("a", "t", 1), None),
            (records::group_key("a"), Some(records::group_value(&g2))),
            // A deleted group: its offsets, then its metadata, tombstoned.
            (records::group_key("b"), Some(records::group_value(&g1))),
            (
                records::offset_key("b", "t", 0),
                Some(records::offset_value(&committed(1))),
            ),
            (records::offset_key("b", "t", 0), None),
            (records::group_key("b"), None),
        ];
        let loaded = replay(plain(records)).unwrap();
        assert_eq!(
            loaded.groups,
            vec![(
                "a".to_string(),
                Some(g2),
                vec![("t".to_string(), 0, committed(9))]
            )]
        );
    }

    #[test]
    fn an_unreadable_record_fails_the_load() {
        let records = vec![(records::offset_key("a", "t", 0), Some("x".into()))];
        assert!(replay(plain(records)).is_err());
    }

    #[test]
    fn transactional_offsets_wait_for_their_marker() {
        let mut entries = plain(vec![(
            records::offset_key("g", "t", 0),
            Some(records::offset_value(&committed(1))),
        )]);
        entries.extend([
            txn(7, "g", 0, 10),
            txn(8, "g", 1, 20),
            txn(9, "g", 2, 30),
            txn(7, "g", 0, 11),
            LogEntry::Marker {
                producer_id: 7,
                commit: true,
            },
            LogEntry::Marker {
                producer_id: 8,
                commit: false,
            },
        ]);
        let loaded = replay(entries).unwrap();
        // Producer 7 committed its last offset, 8 aborted, 9 is still open.
        assert_eq!(
            loaded.groups,
            vec![(
                "g".to_string(),
                None,
                vec![("t".to_string(), 0, committed(11))]
            )]
        );
        let open: Vec<_> = loaded.open_txns.into_iter().collect();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].0, 9);
        assert_eq!(
            open[0].1,
            vec![PendingOffset {
                group: "g".into(),
                topic: "t".into(),
                partition: 2,
                committed: committed(30)
            }]
        );
    }
}
