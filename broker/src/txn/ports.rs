//! What the transaction coordinator depends on, as narrow ports: the store of
//! transaction records (and producer ids), and the log it writes transaction markers to.
//! The broker plugs in [`Storage`]; unit tests plug in the in-memory doubles below.

use futures::future::BoxFuture;
use sluice_protocol::batch::ControlType;
use sluice_storage::{AppendError, Storage, StorageError, TxnRecord};

/// Durable transaction state.
pub(crate) trait TxnStore: Send + Sync {
    /// Every stored transactional id, for start-up.
    fn load_txns(&self) -> Result<Vec<(String, TxnRecord)>, StorageError>;
    /// Stores a transactional id's record.
    fn store_txn(&self, transactional_id: &str, record: &TxnRecord) -> Result<(), StorageError>;
    /// Forgets a transactional id.
    fn delete_txn(&self, transactional_id: &str) -> Result<(), StorageError>;
    /// A producer id never handed out before.
    fn allocate_producer_id(&self) -> Result<i64, StorageError>;
}

/// What writing a marker to one partition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarkerWrite {
    /// The partition no longer exists: nothing of the transaction is left there.
    PartitionGone,
    /// Written at `offset`; `flush_due` when the flush policy wants it on disk before the
    /// transaction completes.
    Written {
        /// The marker's offset.
        offset: i64,
        /// Whether to flush up to it first.
        flush_due: bool,
    },
}

/// The partitions' logs, as far as transaction markers go.
pub(crate) trait MarkerLog: Send + Sync {
    /// Appends a COMMIT or ABORT marker of the producer to a partition.
    fn append_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        control: ControlType,
        now_ms: i64,
    ) -> Result<MarkerWrite, AppendError>;

    /// Forces a partition's log to disk up to `offset`.
    fn flush_to<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        offset: i64,
    ) -> BoxFuture<'a, Result<(), StorageError>>;
}

impl TxnStore for Storage {
    fn load_txns(&self) -> Result<Vec<(String, TxnRecord)>, StorageError> {
        Storage::load_txns(self)
    }

    fn store_txn(&self, transactional_id: &str, record: &TxnRecord) -> Result<(), StorageError> {
        Storage::store_txn(self, transactional_id, record)
    }

    fn delete_txn(&self, transactional_id: &str) -> Result<(), StorageError> {
        Storage::delete_txn(self, transactional_id)
    }

    fn allocate_producer_id(&self) -> Result<i64, StorageError> {
        Storage::allocate_producer_id(self)
    }
}

impl MarkerLog for Storage {
    fn append_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        control: ControlType,
        now_ms: i64,
    ) -> Result<MarkerWrite, AppendError> {
        let Some(p) = self.partition(topic, partition) else {
            return Ok(MarkerWrite::PartitionGone);
        };
        let info = p.append_marker(producer_id, producer_epoch, control, now_ms)?;
        Ok(MarkerWrite::Written {
            offset: info.last_offset,
            flush_due: info.flush_due,
        })
    }

    fn flush_to<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        offset: i64,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            match self.partition(topic, partition) {
                Some(p) => p.flush_to(offset).await,
                // Deleted since the marker was written: nothing left to flush.
                None => Ok(()),
            }
        })
    }
}

#[cfg(test)]
pub(crate) use memory::{Marker, MemoryMarkerLog, MemoryTxnStore};

#[cfg(test)]
mod memory {
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
        fn load_txns(&self) -> Result<Vec<(String, TxnRecord)>, StorageError> {
            Ok(self
                .txns
                .lock()
                .unwrap()
                .iter()
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

    /// A marker as written to a partition.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Marker {
        /// The producer whose transaction it ends.
        pub(crate) producer_id: i64,
        /// The producer epoch it carries.
        pub(crate) producer_epoch: i16,
        /// COMMIT or ABORT.
        pub(crate) control: ControlType,
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
        fn append_marker(
            &self,
            topic: &str,
            partition: i32,
            producer_id: i64,
            producer_epoch: i16,
            control: ControlType,
            _now_ms: i64,
        ) -> Result<MarkerWrite, AppendError> {
            let mut partitions = self.partitions.lock().unwrap();
            let Some(log) = partitions.get_mut(&(topic.to_string(), partition)) else {
                return Ok(MarkerWrite::PartitionGone);
            };
            log.push(Marker {
                producer_id,
                producer_epoch,
                control,
            });
            Ok(MarkerWrite::Written {
                offset: log.len() as i64 - 1,
                flush_due: false,
            })
        }

        fn flush_to<'a>(
            &'a self,
            _topic: &'a str,
            _partition: i32,
            _offset: i64,
        ) -> BoxFuture<'a, Result<(), StorageError>> {
            Box::pin(async { Ok(()) })
        }
    }
}
