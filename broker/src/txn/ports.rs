//! What the transaction coordinator depends on, as narrow ports: the store of
//! transaction records (and producer ids), and the log it writes transaction markers to.
//! The broker plugs in `__transaction_state` ([`super::log_store`]) and its markers (this
//! broker's partitions on a single node, the partitions' leaders in a cluster); unit tests
//! plug in the in-memory doubles below.

use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use sluice_storage::{Marker, StorageError, TxnRecord};

/// Durable transaction state.
pub(crate) trait TxnStore: Send + Sync {
    /// The transactional ids whose state lives in `partition` (of `partitions`) of the
    /// transaction state topic, for a coordinator that has just become its leader.
    fn load_partition(
        &self,
        partition: i32,
        partitions: i32,
    ) -> Result<Vec<(String, TxnRecord)>, StorageError>;
    /// Stores a transactional id's record.
    fn store_txn(&self, transactional_id: &str, record: &TxnRecord) -> Result<(), StorageError>;
    /// Forgets a transactional id.
    fn delete_txn(&self, transactional_id: &str) -> Result<(), StorageError>;
    /// Waits until what was stored for the ids of `partition` survives the loss of this
    /// broker; at once where a store is synchronous.
    fn wait_durable(&self, _partition: i32) -> BoxFuture<'_, Result<(), ResponseError>> {
        Box::pin(async { Ok(()) })
    }
    /// A producer id never handed out before.
    fn allocate_producer_id(&self) -> Result<i64, StorageError>;
}

/// The markers that end one transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxnMarkers<'a> {
    /// The transaction's partitions.
    pub(crate) partitions: &'a [(String, i32)],
    /// Its producer and epoch, and COMMIT or ABORT.
    pub(crate) marker: Marker,
}

/// The partitions' logs, as far as transaction markers go.
pub(crate) trait MarkerLog: Send + Sync {
    /// Writes the marker to every partition of the transaction (a partition deleted since
    /// has nothing left to end) and returns once they are durable as the broker's flush
    /// policy and replication require.
    fn write_markers<'a>(
        &'a self,
        markers: TxnMarkers<'a>,
    ) -> BoxFuture<'a, Result<(), ResponseError>>;
}

#[cfg(test)]
pub(crate) use memory::{MemoryMarkerLog, MemoryTxnStore};

#[cfg(test)]
mod memory {
    use crate::internal_topics::partition_for;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// Transaction records in a map, producer ids from a counter.
    #[derive(Default)]
    pub(crate) struct MemoryTxnStore {
        txns: Mutex<BTreeMap<String, TxnRecord>>,
        next_producer_id: Mutex<i64>,
    }

    impl MemoryTxnStore {
        /// The stored record of a transactional id.
        pub(crate) fn txn(&self, transactional_id: &str) -> Option<TxnRecord> {
            self.txns.lock().unwrap().get(transactional_id).cloned()
        }
    }

    impl TxnStore for MemoryTxnStore {
        fn load_partition(
            &self,
            partition: i32,
            partitions: i32,
        ) -> Result<Vec<(String, TxnRecord)>, StorageError> {
            Ok(self
                .txns
                .lock()
                .unwrap()
                .iter()
                .filter(|(id, _)| partition_for(id, partitions) == partition)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }

        fn store_txn(
            &self,
            transactional_id: &str,
            record: &TxnRecord,
        ) -> Result<(), StorageError> {
            self.txns
                .lock()
                .unwrap()
                .insert(transactional_id.to_string(), record.clone());
            Ok(())
        }

        fn delete_txn(&self, transactional_id: &str) -> Result<(), StorageError> {
            self.txns.lock().unwrap().remove(transactional_id);
            Ok(())
        }

        fn allocate_producer_id(&self) -> Result<i64, StorageError> {
            let mut next = self.next_producer_id.lock().unwrap();
            let id = *next;
            *next += 1;
            Ok(id)
        }
    }

    /// Partitions that hold only the markers written to them.
    #[derive(Default)]
    pub(crate) struct MemoryMarkerLog {
        partitions: Mutex<BTreeMap<(String, i32), Vec<Marker>>>,
    }

    impl MemoryMarkerLog {
        /// Creates the partitions `0..count` of a topic.
        pub(crate) fn add_topic(&self, topic: &str, count: i32) {
            let mut partitions = self.partitions.lock().unwrap();
            for i in 0..count {
                partitions.entry((topic.to_string(), i)).or_default();
            }
        }

        /// The markers written to a partition, in order.
        pub(crate) fn markers(&self, topic: &str, partition: i32) -> Vec<Marker> {
            self.partitions
                .lock()
                .unwrap()
                .get(&(topic.to_string(), partition))
                .cloned()
                .unwrap_or_default()
        }
    }

    impl MarkerLog for MemoryMarkerLog {
        fn write_markers<'a>(
            &'a self,
            markers: TxnMarkers<'a>,
        ) -> BoxFuture<'a, Result<(), ResponseError>> {
            let mut partitions = self.partitions.lock().unwrap();
            for p in markers.partitions {
                if let Some(log) = partitions.get_mut(p) {
                    log.push(markers.marker);
                }
            }
            Box::pin(async { Ok(()) })
        }
    }
}
