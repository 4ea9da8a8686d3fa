//! The coordinators' partitions of the internal topics as a replicated log: a coordinator
//! appends its state changes as keyed records to the partition it leads, waits for the
//! high watermark before it answers (Kafka's `acks=all` for coordinator writes), and a new
//! leader reads the partition back to load the state.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use sluice_protocol::batch::{self, BatchHeader, Compression};
use sluice_protocol::records::{self, Record};
use sluice_storage::{now_ms, Isolation, Partition, Storage, StorageError};

use super::ReplicaManager;

/// A keyed record; a `None` value is a tombstone.
pub(crate) type KeyedRecord = (Bytes, Option<Bytes>);

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

    fn led_partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, StorageError> {
        let name = || format!("{topic}-{partition}");
        self.replicas
            .check_leader(topic, partition, -1)
            .map_err(|_| StorageError::NotLeader(name()))?;
        self.storage
            .partition(topic, partition)
            .ok_or_else(|| StorageError::NotLeader(name()))
    }

    /// Appends `records` as one batch to a partition this broker leads; returns the last
    /// offset. Nothing is appended when this broker does not lead the partition.
    pub(crate) fn append(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<KeyedRecord>,
    ) -> Result<i64, StorageError> {
        let p = self.led_partition(topic, partition)?;
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
            attributes: Compression::None.attribute_bits(),
            last_offset_delta: count - 1,
            base_timestamp: now,
            max_timestamp: now,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records_count: count,
        };
        let bytes = records::encode_batch(&header, &records)
            .map_err(|e| StorageError::Corrupt(format!("coordinator batch: {e}")))?;
        let bytes = Bytes::from(bytes);
        let header = batch::read_header(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("coordinator batch: {e}")))?;
        let info = p.append(header, &bytes, now).map_err(|e| match e {
            sluice_storage::AppendError::Storage(e) => e,
            other => StorageError::Corrupt(format!("coordinator batch refused: {other}")),
        })?;
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
        let waited = self
            .replicas
            .wait_replicated(topic, partition, last, 1, WRITE_TIMEOUT)
            .await;
        waited.map_err(|code| coordinator_write_error(ResponseError::try_from_code(code)))
    }

    /// Every record of the partition from its log start to its log end offset, in order
    /// (Kafka's coordinators load up to the log end: as leader, it is all theirs).
    pub(crate) fn read_all(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<KeyedRecord>, StorageError> {
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
                    continue;
                }
                let (_, recs) = records::decode_records(&bytes).map_err(|e| {
                    StorageError::Corrupt(format!("loading {topic}-{partition}: {e}"))
                })?;
                out.extend(
                    recs.into_iter()
                        .filter_map(|r| r.key.map(|key| (key, r.value))),
                );
            }
            offset = next;
        }
        Ok(out)
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
