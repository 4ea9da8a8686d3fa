//! Transaction state in the replicated `__transaction_state` topic, as Kafka keeps it:
//! each change of a transactional id is a keyed record in the id's partition, expiry is a
//! tombstone, and a coordinator that becomes leader of a partition replays it.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use sluice_storage::{Storage, StorageError, TxnRecord};

use super::ports::TxnStore;
use super::records;
use crate::coordinator_log::{CoordinatorLog, LogEntry};
use crate::internal_topics::{partition_for, TRANSACTION_STATE_TOPIC};

/// The transaction store of a cluster member.
pub(crate) struct LogTxnStore {
    log: Arc<CoordinatorLog>,
    /// Where producer ids come from (the cluster's blocks).
    storage: Arc<Storage>,
    /// `transaction.state.log.num.partitions`.
    partitions: i32,
}

impl LogTxnStore {
    /// A store over the partitions of `__transaction_state` this broker leads.
    pub(crate) fn new(log: Arc<CoordinatorLog>, storage: Arc<Storage>, partitions: i32) -> Self {
        LogTxnStore {
            log,
            storage,
            partitions,
        }
    }

    fn append(&self, id: &str, value: Option<bytes::Bytes>) -> Result<(), StorageError> {
        let partition = partition_for(id, self.partitions);
        self.log
            .append(
                TRANSACTION_STATE_TOPIC,
                partition,
                vec![(records::key(id), value)],
            )
            .map(|_| ())
    }
}

impl TxnStore for LogTxnStore {
    fn load_partition(
        &self,
        partition: i32,
        _partitions: i32,
    ) -> Result<Vec<(String, TxnRecord)>, StorageError> {
        replay(self.log.read_all(TRANSACTION_STATE_TOPIC, partition)?)
    }

    fn store_txn(&self, transactional_id: &str, record: &TxnRecord) -> Result<(), StorageError> {
        self.append(transactional_id, Some(records::value(record)))
    }

    fn delete_txn(&self, transactional_id: &str) -> Result<(), StorageError> {
        self.append(transactional_id, None)
    }

    fn wait_durable(&self, partition: i32) -> BoxFuture<'_, Result<(), ResponseError>> {
        Box::pin(self.log.wait_durable(TRANSACTION_STATE_TOPIC, partition))
    }

    fn allocate_producer_id(&self) -> Result<i64, StorageError> {
        self.storage.allocate_producer_id()
    }
}

/// The transactional ids a partition's records leave: the last value of each key, none
/// for a tombstone. A record that cannot be read fails the load.
fn replay(entries: Vec<LogEntry>) -> Result<Vec<(String, TxnRecord)>, StorageError> {
    let mut txns: BTreeMap<String, TxnRecord> = BTreeMap::new();
    for entry in entries {
        let LogEntry::Record { key, value, .. } = entry else {
            continue;
        };
        let corrupt = |e: records::RecordError| StorageError::Corrupt(e.to_string());
        let id = records::decode_key(&key).map_err(corrupt)?;
        match records::decode_value(value.as_deref()).map_err(corrupt)? {
            Some(record) => {
                txns.insert(id, record);
            }
            None => {
                txns.remove(&id);
            }
        }
    }
    Ok(txns.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use sluice_storage::TxnState;

    use super::*;

    fn entry(id: &str, r: Option<&TxnRecord>) -> LogEntry {
        LogEntry::Record {
            key: records::key(id),
            value: r.map(records::value),
            producer_id: None,
        }
    }

    #[test]
    fn replay_keeps_each_ids_last_record_and_forgets_tombstoned_ids() {
        let ongoing = TxnRecord {
            producer_id: 1,
            previous_producer_id: -1,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms: 1000,
            state: TxnState::Ongoing,
            partitions: vec![("t".into(), 0)],
            groups: Vec::new(),
            pending_offsets: Vec::new(),
            start_ms: 5,
            last_update_ms: 5,
            next_producer_id: -1,
            client_transaction_version: 0,
        };
        let prepared = TxnRecord {
            state: TxnState::PrepareCommit,
            ..ongoing.clone()
        };
        let loaded = replay(vec![
            entry("a", Some(&ongoing)),
            entry("b", Some(&ongoing)),
            entry("a", Some(&prepared)),
            entry("b", None),
        ])
        .unwrap();
        assert_eq!(loaded, vec![("a".to_string(), prepared)]);
    }
}
