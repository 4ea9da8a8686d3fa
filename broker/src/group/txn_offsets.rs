//! Offsets committed inside a transaction, as Kafka's group coordinator keeps them:
//! TxnOffsetCommit writes them to the group's partition of `__consumer_offsets` as a
//! transactional batch of the producer, and they stay pending until the transaction's
//! marker reaches that partition: COMMIT makes them the group's committed offsets, ABORT
//! drops them. A new leader replays the same from the log.

use std::collections::HashMap;

use kafka_protocol::ResponseError;
use sluice_storage::{AppendError, PendingOffset, StorageError};

use super::records;
use super::state::Group;
use super::GroupCoordinator;
use crate::coordinator_log::{CoordinatorLog, KeyedRecord, TxnProducer};
use crate::internal_topics::GROUP_METADATA_TOPIC;

/// The open transactions' offsets of one partition: producer id → offsets.
pub(crate) type OpenTxnOffsets = HashMap<i64, Vec<PendingOffset>>;

/// A partition's transactions as this coordinator knows them.
pub(super) enum PartitionTxns {
    /// Being loaded: markers that arrive meanwhile (producer id, COMMIT) are applied to
    /// what the load read, which may or may not include them.
    Loading(Vec<(i64, bool)>),
    /// Loaded: the open transactions.
    Open(OpenTxnOffsets),
}

impl GroupCoordinator {
    /// Writes a transaction's offsets for `group_id` to its partition as the producer's
    /// transactional batch and holds them pending. Nothing is answered durable here: the
    /// caller waits for the partition's high watermark.
    pub(crate) fn write_txn_offsets(
        &self,
        log: &CoordinatorLog,
        group_id: &str,
        producer: TxnProducer,
        offsets: Vec<PendingOffset>,
    ) -> Result<(), ResponseError> {
        let partition = self.partition_of(group_id);
        let records: Vec<KeyedRecord> = offsets
            .iter()
            .map(|o| {
                (
                    records::offset_key(&o.group, &o.topic, o.partition),
                    Some(records::offset_value(&o.committed)),
                )
            })
            .collect();
        // Under the lock, so that a marker for the producer cannot complete between the
        // append and the pending entry.
        let mut open = self.open_txns();
        match log.append_transactional(GROUP_METADATA_TOPIC, partition, records, producer) {
            Ok(_) => {}
            Err(AppendError::Sequence(_)) => return Err(ResponseError::InvalidProducerEpoch),
            Err(
                AppendError::NotLeader { .. } | AppendError::Storage(StorageError::NotLeader(_)),
            ) => return Err(ResponseError::NotCoordinator),
            Err(e) => {
                tracing::error!(group = group_id, error = %e, "writing transactional offsets failed");
                return Err(ResponseError::UnknownServerError);
            }
        }
        let Some(PartitionTxns::Open(txns)) = open.get_mut(&partition) else {
            // Written as leader, so loaded; a load racing with this write reads it back.
            return Ok(());
        };
        let pending = txns.entry(producer.producer_id).or_default();
        for o in offsets {
            pending.retain(|p| {
                !(p.group == o.group && p.topic == o.topic && p.partition == o.partition)
            });
            pending.push(o);
        }
        Ok(())
    }

    /// The marker of a producer's transaction reached `partition` of `__consumer_offsets`:
    /// its offsets there become committed offsets, or are dropped.
    pub(crate) fn complete_txn_offsets(&self, partition: i32, producer_id: i64, commit: bool) {
        let mut open = self.open_txns();
        let offsets = match open.get_mut(&partition) {
            Some(PartitionTxns::Open(txns)) => txns.remove(&producer_id),
            Some(PartitionTxns::Loading(late)) => {
                late.push((producer_id, commit));
                None
            }
            None => None,
        };
        drop(open);
        let Some(offsets) = offsets else {
            return;
        };
        if !commit {
            tracing::debug!(
                producer_id,
                partition,
                "dropped aborted transactional offsets"
            );
            return;
        }
        let mut groups = self.lock();
        apply(&mut groups, offsets, self.clock.now_ms());
    }

    /// Whether an open transaction holds an offset of the group for the partition
    /// (OffsetFetch's UNSTABLE_OFFSET_COMMIT).
    pub(crate) fn has_open_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let open = self.open_txns();
        open.get(&self.partition_of(group_id)).is_some_and(|txns| {
            let PartitionTxns::Open(txns) = txns else {
                return false;
            };
            txns.values()
                .flatten()
                .any(|o| o.group == group_id && o.topic == topic && o.partition == partition)
        })
    }

    /// A load of the partition starts: markers are collected until it ends.
    pub(super) fn start_txn_load(&self, partition: i32) {
        self.open_txns()
            .insert(partition, PartitionTxns::Loading(Vec::new()));
    }

    /// A load ends with the open transactions it read: markers that arrived during the
    /// load complete theirs (into `groups`, whose lock the caller holds).
    pub(super) fn finish_txn_load(
        &self,
        groups: &mut HashMap<String, Group>,
        partition: i32,
        mut loaded: OpenTxnOffsets,
    ) {
        let mut open = self.open_txns();
        if let Some(PartitionTxns::Loading(late)) = open.remove(&partition) {
            for (producer_id, commit) in late {
                match loaded.remove(&producer_id) {
                    Some(offsets) if commit => apply(groups, offsets, self.clock.now_ms()),
                    _ => {}
                }
            }
        }
        open.insert(partition, PartitionTxns::Open(loaded));
    }

    /// Forgets a partition's transactions (given up).
    pub(super) fn forget_txns(&self, partition: i32) {
        self.open_txns().remove(&partition);
    }

    fn open_txns(&self) -> std::sync::MutexGuard<'_, HashMap<i32, PartitionTxns>> {
        self.open_txn_offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// Makes committed transactional offsets the groups' committed offsets.
fn apply(groups: &mut HashMap<String, Group>, offsets: Vec<PendingOffset>, now_ms: i64) {
    for o in offsets {
        let group = groups
            .entry(o.group.clone())
            .or_insert_with(|| Group::new(&o.group, now_ms));
        group.offsets.insert((o.topic, o.partition), o.committed);
    }
}
