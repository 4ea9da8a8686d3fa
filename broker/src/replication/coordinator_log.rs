//! The coordinators' partitions of the internal topics as a replicated log: a coordinator
//! appends its state changes as keyed records to the partition it leads, waits for the
//! high watermark before it answers (Kafka's `acks=all` for coordinator writes), and a new
//! leader reads the partition back to load the state.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use sluice_protocol::batch::{self, BatchHeader, Compression, ControlType};
use sluice_protocol::records::{self, Record};
use sluice_storage::{now_ms, Isolation, Partition, Storage, StorageError};

use super::ReplicaManager;

/// A keyed record; a `None` value is a tombstone.
pub(crate) type KeyedRecord = (Bytes, Option<Bytes>);

/// What a load reads back from a coordinator's partition, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogEntry {
    /// A keyed record; `producer_id` is set when it belongs to a transaction, which
    /// decides it with a later marker.
    Record {
        /// The key.
        key: Bytes,
        /// The value; `None` for a tombstone.
        value: Option<Bytes>,
        /// The producer of a transactional batch.
        producer_id: Option<i64>,
    },
    /// The end of a producer's transaction in this partition.
    Marker {
        /// The producer.
        producer_id: i64,
        /// COMMIT (else ABORT).
        commit: bool,
    },
}

/// The producer of a transactional coordinator write (a TxnOffsetCommit's offsets).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxnProducer {
    /// The producer id.
    pub(crate) producer_id: i64,
    /// Its epoch.
    pub(crate) producer_epoch: i16,
}

/// How long a coordinator waits for its write to reach the ISR before it answers
/// REQUEST_TIMED_OUT (Kafka's `offsets.commit.timeout.ms` default).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How many bytes one read of a load takes.
const LOAD_CHUNK_BYTES: usize = 1 << 20;

/// Appends to and reads back the internal topics' partitions this broker leads.
pub(crate) struct CoordinatorLog {
    storage: Arc<Storage>,
    replicas: Arc<ReplicaManager>,
}

impl CoordinatorLog {
    /// A log over `storage`'s internal partitions, led as `replicas` says.
    pub(crate) fn new(storage: Arc<Storage>, replicas: Arc<ReplicaManager>) -> Self {
        CoordinatorLog { storage, replicas }
    }

    fn led_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(Arc<Partition>, i32), StorageError> {
        let name = || format!("{topic}-{partition}");
        let epoch = self
            .replicas
            .check_leader(topic, partition, -1)
            .map_err(|_| StorageError::NotLeader(name()))?;
        let p = self
            .storage
            .partition(topic, partition)
            .ok_or_else(|| StorageError::NotLeader(name()))?;
        Ok((p, epoch))
    }

    /// Appends `records` as one batch to a partition this broker leads; returns the last
    /// offset. Nothing is appended when this broker does not lead the partition.
    pub(crate) fn append(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<KeyedRecord>,
    ) -> Result<i64, StorageError> {
        self.append_batch(topic, partition, records, None)
    }

    /// [`CoordinatorLog::append`] as a transactional batch of `producer`, which the
    /// producer's marker later commits or aborts. The producer epoch is checked against
    /// the partition's producer state (INVALID_PRODUCER_EPOCH as an error).
    pub(crate) fn append_transactional(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<KeyedRecord>,
        producer: TxnProducer,
    ) -> Result<i64, sluice_storage::AppendError> {
        self.append_batch(topic, partition, records, Some(producer))
    }

    fn append_batch<E>(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<KeyedRecord>,
        producer: Option<TxnProducer>,
    ) -> Result<i64, E>
    where
        E: From<StorageError> + From<CoordinatorAppendError>,
    {
        let (p, leader_epoch) = self.led_partition(topic, partition)?;
        let now = now_ms();
        let count = records.len() as i32;
        let records: Vec<Record> = records
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                attributes: 0,
                timestamp: now,
                offset_delta: i as i32,
                key: Some(key),
                value,
                headers: Bytes::from_static(&[0]),
            })
            .collect();
        let header = BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: -1,
            crc: 0,
            attributes: Compression::None.attribute_bits()
                | if producer.is_some() {
                    TRANSACTIONAL_ATTRIBUTE
                } else {
                    0
                },
            last_offset_delta: count - 1,
            base_timestamp: now,
            max_timestamp: now,
            producer_id: producer.map_or(-1, |p| p.producer_id),
            producer_epoch: producer.map_or(-1, |p| p.producer_epoch),
            // No sequence: a coordinator's write, checked by epoch only.
            base_sequence: -1,
            records_count: count,
        };
        let bytes = records::encode_batch(&header, &records)
            .map_err(|e| StorageError::Corrupt(format!("coordinator batch: {e}")))?;
        let bytes = Bytes::from(bytes);
        let header = batch::read_header(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("coordinator batch: {e}")))?;
        let info = p
            .append_as_leader(leader_epoch, header, &bytes, now)
            .map_err(CoordinatorAppendError)?;
        self.replicas.appended(topic, partition);
        Ok(info.last_offset)
    }

    /// Waits until everything appended to the partition so far is on disk here (under the
    /// flush policy's group commit) and below the high watermark, that is on every ISR
    /// member. The error is what Kafka's coordinators answer when their write fails.
    pub(crate) async fn wait_durable(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(), ResponseError> {
        let Some(p) = self.storage.partition(topic, partition) else {
            return Err(ResponseError::NotCoordinator);
        };
        let last = p.log_end_offset() - 1;
        if last < 0 {
            return Ok(());
        }
        if let Err(e) = p.flush_to(last).await {
            tracing::error!(topic, partition, error = %e, "flushing a coordinator write failed");
            return Err(ResponseError::NotCoordinator);
        }
        let min_isr = self
            .storage
            .topic(topic)
            .map_or(1, |t| t.config.min_insync_replicas);
        let waited = self
            .replicas
            .wait_replicated(topic, partition, last, min_isr, WRITE_TIMEOUT)
            .await;
        waited.map_err(|code| coordinator_write_error(ResponseError::try_from_code(code)))
    }

    /// Every record of the partition from its log start to its log end offset, in order
    /// (Kafka's coordinators load up to the log end: as leader, it is all theirs).
    pub(crate) fn read_all(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<LogEntry>, StorageError> {
        let Some(p) = self.storage.partition(topic, partition) else {
            return Ok(Vec::new());
        };
        let mut offset = p.log_start_offset();
        let end = p.log_end_offset();
        let mut out = Vec::new();
        while offset < end {
            let data = p
                .read(offset, LOAD_CHUNK_BYTES, Isolation::LogEnd)
                .map_err(|e| StorageError::Corrupt(format!("loading {topic}-{partition}: {e}")))?;
            let batches = batch::split_batches(&data.records)
                .map_err(|e| StorageError::Corrupt(format!("loading {topic}-{partition}: {e}")))?;
            let Some((last, _)) = batches.last() else {
                break;
            };
            let next = last.last_offset() + 1;
            for (header, bytes) in batches {
                if header.is_control() {
                    if let Some((control, _)) = batch::control_marker(&bytes) {
                        out.push(LogEntry::Marker {
                            producer_id: header.producer_id,
                            commit: control == ControlType::Commit,
                        });
                    }
                    continue;
                }
                let (_, recs) = records::decode_records(&bytes).map_err(|e| {
                    StorageError::Corrupt(format!("loading {topic}-{partition}: {e}"))
                })?;
                let producer_id = header.is_transactional().then_some(header.producer_id);
                out.extend(recs.into_iter().filter_map(|r| {
                    r.key.map(|key| LogEntry::Record {
                        key,
                        value: r.value,
                        producer_id,
                    })
                }));
            }
            offset = next;
        }
        Ok(out)
    }
}

/// The transactional bit of a batch's attributes.
const TRANSACTIONAL_ATTRIBUTE: i16 = 1 << 4;

/// A coordinator's append the partition refused.
#[derive(Debug)]
pub(crate) struct CoordinatorAppendError(sluice_storage::AppendError);

impl From<CoordinatorAppendError> for StorageError {
    fn from(e: CoordinatorAppendError) -> Self {
        match e.0 {
            sluice_storage::AppendError::Storage(e) => e,
            sluice_storage::AppendError::NotLeader { .. } => {
                StorageError::NotLeader("a coordinator partition".to_string())
            }
            other => StorageError::Corrupt(format!("coordinator batch refused: {other}")),
        }
    }
}

impl From<CoordinatorAppendError> for sluice_storage::AppendError {
    fn from(e: CoordinatorAppendError) -> Self {
        e.0
    }
}

/// Kafka's mapping of a failed coordinator write to what the client is told.
fn coordinator_write_error(e: Option<ResponseError>) -> ResponseError {
    match e {
        Some(ResponseError::RequestTimedOut) => ResponseError::RequestTimedOut,
        Some(ResponseError::NotEnoughReplicas | ResponseError::NotEnoughReplicasAfterAppend) => {
            ResponseError::CoordinatorNotAvailable
        }
        _ => ResponseError::NotCoordinator,
    }
}
