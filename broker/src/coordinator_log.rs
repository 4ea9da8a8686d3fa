//! The coordinators' partitions of the internal topics as their log: a coordinator
//! appends its state changes as keyed records to the partition it leads, waits for the
//! high watermark before it answers (Kafka's `acks=all` for coordinator writes), and a new
//! leader reads the partition back to load the state. In a cluster the replica manager
//! says who leads and when a write is replicated; on a single node the broker leads every
//! partition alone ([`SoleReplica`]), and the same code runs with one replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use sluice_protocol::batch::{self, BatchHeader, Compression, ControlType};
use sluice_protocol::records::{self, Record};
use sluice_storage::{now_ms, Isolation, Partition, Storage, StorageError};

use crate::replication::ReplicaManager;

/// This broker does not lead the partition (now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotLeading;

/// Who leads the internal partitions and when a write is on enough replicas.
pub(crate) trait CoordinatorReplicas: Send + Sync {
    /// The leader epoch this broker leads the partition in; `None` where no epoch fences
    /// the append (a single node's sole replica).
    fn leader_epoch(&self, topic: &str, partition: i32) -> Result<Option<i32>, NotLeading>;
    /// Records were appended to a led partition.
    fn appended(&self, topic: &str, partition: i32);
    /// Waits until the high watermark passes `last_offset`; the error is a Kafka error
    /// code (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT).
    fn wait_replicated<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        last_offset: i64,
        min_isr: i32,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), i16>>;
}

impl CoordinatorReplicas for ReplicaManager {
    fn leader_epoch(&self, topic: &str, partition: i32) -> Result<Option<i32>, NotLeading> {
        self.check_leader(topic, partition, -1)
            .map(Some)
            .map_err(|_| NotLeading)
    }

    fn appended(&self, topic: &str, partition: i32) {
        ReplicaManager::appended(self, topic, partition);
    }

    fn wait_replicated<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        last_offset: i64,
        min_isr: i32,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), i16>> {
        Box::pin(ReplicaManager::wait_replicated(
            self,
            topic,
            partition,
            last_offset,
            min_isr,
            timeout,
        ))
    }
}

/// A single node: it leads every partition it holds, alone, so a write is as replicated as
/// it will be once it is appended here (and flushed as the flush policy says).
pub(crate) struct SoleReplica;

impl CoordinatorReplicas for SoleReplica {
    fn leader_epoch(&self, _topic: &str, _partition: i32) -> Result<Option<i32>, NotLeading> {
        Ok(None)
    }

    fn appended(&self, _topic: &str, _partition: i32) {}

    fn wait_replicated<'a>(
        &'a self,
        _topic: &'a str,
        _partition: i32,
        _last_offset: i64,
        _min_isr: i32,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<(), i16>> {
        Box::pin(async { Ok(()) })
    }
}

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

/// When a coordinator's write is flushed before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoordinatorFlush {
    /// Every write (a cluster's coordinators).
    Always,
    /// As the flush policy (`log.flush.interval.*`) says, like a producer's write.
    AsPolicy,
}

/// Appends to and reads back the internal topics' partitions this broker leads.
pub(crate) struct CoordinatorLog {
    storage: Arc<Storage>,
    replicas: Arc<dyn CoordinatorReplicas>,
    flush: CoordinatorFlush,
    /// Under [`CoordinatorFlush::AsPolicy`]: the highest offset per partition whose flush
    /// the policy asked for.
    flush_due: Mutex<HashMap<(String, i32), i64>>,
}

impl CoordinatorLog {
    /// A log over `storage`'s internal partitions, led as `replicas` says.
    pub(crate) fn new(
        storage: Arc<Storage>,
        replicas: Arc<dyn CoordinatorReplicas>,
        flush: CoordinatorFlush,
    ) -> Self {
        CoordinatorLog {
            storage,
            replicas,
            flush,
            flush_due: Mutex::new(HashMap::new()),
        }
    }

    fn due(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), i64>> {
        self.flush_due.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn led_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(Arc<Partition>, Option<i32>), StorageError> {
        let name = || format!("{topic}-{partition}");
        let epoch = self
            .replicas
            .leader_epoch(topic, partition)
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
        let appended = match leader_epoch {
            Some(epoch) => p.append_as_leader(epoch, header, &bytes, now),
            None => p.append(header, &bytes, now),
        };
        let info = appended.map_err(CoordinatorAppendError)?;
        if info.flush_due {
            let mut due = self.due();
            let owed = due.entry((topic.to_string(), partition)).or_insert(-1);
            *owed = (*owed).max(info.last_offset);
        }
        self.replicas.appended(topic, partition);
        Ok(info.last_offset)
    }

    /// Waits until everything appended to the partition so far is flushed here as
    /// [`CoordinatorFlush`] says (with the group commit of other writers) and below the
    /// high watermark, that is on every ISR member. The error is what Kafka's coordinators answer when their write fails.
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
        let flush = match self.flush {
            CoordinatorFlush::Always => Some(last),
            // Once flushed, an owed offset stays below the flushed one: flush_to returns.
            CoordinatorFlush::AsPolicy => self.due().get(&(topic.to_string(), partition)).copied(),
        };
        let flushed = match flush {
            Some(offset) => p.flush_to(offset).await,
            None => Ok(()),
        };
        if let Err(e) = flushed {
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
        Ok(self.read_from(topic, partition, 0)?.0)
    }

    /// The records of the partition from `from` (or its log start, if later) to its log
    /// end offset, in order, and the offset to read from next time.
    pub(crate) fn read_from(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
    ) -> Result<(Vec<LogEntry>, i64), StorageError> {
        let Some(p) = self.storage.partition(topic, partition) else {
            return Ok((Vec::new(), from));
        };
        let mut offset = p.log_start_offset().max(from);
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
        Ok((out, offset.max(from)))
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
