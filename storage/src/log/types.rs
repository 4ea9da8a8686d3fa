//! What the partition log hands its callers: append and fetch results, their errors, and
//! the epochs a single node stamps.

use bytes::Bytes;

use crate::producers::SequenceError;
use crate::StorageError;

/// The leader epoch of a single node, which leads from epoch 0 forever: what the broker
/// reports for a partition whose leader-epoch cache is empty. Batches are stamped with
/// [`Partition::leader_epoch`](super::Partition::leader_epoch), which is this until a
/// replica becomes leader at a later epoch.
pub const LEADER_EPOCH: i32 = 0;

/// Coordinator epoch written into transaction markers: a single node's transaction
/// coordinator never moves, so its epoch never changes.
pub const COORDINATOR_EPOCH: i32 = 0;

/// A transaction marker as a coordinator writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The producer whose transaction it ends.
    pub producer_id: i64,
    /// The producer epoch of the transaction.
    pub producer_epoch: i16,
    /// COMMIT or ABORT.
    pub control: sluice_protocol::batch::ControlType,
    /// The epoch of the coordinator that writes it.
    pub coordinator_epoch: i32,
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// True when this batch was a duplicate of one already appended.
    pub duplicate: bool,
    /// True when the flush policy wants the log flushed before the append is acknowledged.
    pub flush_due: bool,
    /// The broker time stamped on the batch (`LogAppendTime` topics), else -1.
    pub log_append_time_ms: i64,
}

/// Why an append was refused; each maps to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The batch exceeds `max.message.bytes` (MESSAGE_TOO_LARGE).
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge {
        /// Batch size.
        size: usize,
        /// Limit in force.
        max: i32,
    },
    /// The idempotent producer's sequence or epoch is wrong.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// The batch is well formed but not acceptable from a client (INVALID_RECORD).
    #[error("{0}")]
    InvalidRecord(&'static str),
    /// Records Kafka's LogValidator refuses one by one (KIP-467): INVALID_TIMESTAMP when a
    /// CreateTime is outside the topic's range, else INVALID_RECORD (a keyless record on a
    /// compacted topic). Nothing of the batch is appended.
    #[error("{message}")]
    RecordErrors {
        /// Whether any record's timestamp is out of range (INVALID_TIMESTAMP).
        invalid_timestamp: bool,
        /// The partition's error message, in Kafka's words.
        message: String,
        /// Each refused record.
        records: Vec<RecordError>,
    },
    /// A follower's batches do not continue its log: the first base offset is not the log
    /// end offset, or the batches overlap each other.
    #[error("replicated batch at offset {got} does not continue the log at {expected}")]
    OffsetMismatch {
        /// The first offset the batch could have.
        expected: i64,
        /// Its base offset.
        got: i64,
    },
    /// A leader's append in an epoch that is no longer the log's latest: this replica
    /// follows a later leader now (NOT_LEADER_OR_FOLLOWER).
    #[error("leader epoch {leader_epoch} is not the log's latest ({latest:?})")]
    NotLeader {
        /// The epoch the append was made in.
        leader_epoch: i32,
        /// The log's latest epoch.
        latest: Option<i32>,
    },
    /// The disk or the index failed (KAFKA_STORAGE_ERROR).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a follower's [`Partition::append_replicated`](super::Partition::append_replicated) appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicatedAppend {
    /// Base offset of the first batch (the log end offset before; it too if none).
    pub first_offset: i64,
    /// Last offset of the last batch (first_offset - 1 if none).
    pub last_offset: i64,
    /// True when the flush policy wants the log flushed now.
    pub flush_due: bool,
}

/// Which records a read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything up to the high watermark.
    ReadUncommitted,
    /// Only up to the last stable offset, with the aborted transactions listed.
    ReadCommitted,
    /// Everything up to the log end offset, no aborted list: what followers fetch.
    LogEnd,
}

/// A transaction that ended with an ABORT marker, as Fetch lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer of the aborted records.
    pub producer_id: i64,
    /// Offset of the transaction's first record on this partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
}

/// Why a read was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The offset is outside [log start, log end] (OFFSET_OUT_OF_RANGE).
    #[error("offset {offset} is outside the log range {log_start_offset}..={log_end_offset}")]
    OutOfRange {
        /// The requested offset.
        offset: i64,
        /// Log start offset.
        log_start_offset: i64,
        /// Log end offset.
        log_end_offset: i64,
    },
    /// The disk or the index failed (KAFKA_STORAGE_ERROR).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The offset is below the local log start: the remote tier holds it.
    #[error("offset is in remote segment {} (base offset {})", .0.segment.segment_id, .0.segment.base_offset)]
    InRemoteTier(Box<super::tiered::RemoteRead>),
}

/// Batches read for a fetch, with the offsets a fetch response reports. `R` is how the
/// batches are held: in memory ([`Partition::read`]) or as a file region
/// ([`Partition::read_region`]).
#[derive(Debug, Clone)]
pub struct FetchData<R = Bytes> {
    /// Whole batches, byte for byte as stored.
    pub records: R,
    /// High watermark at the time of the read.
    pub high_watermark: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Last stable offset at the time of the read.
    pub last_stable_offset: i64,
    /// For a read-committed read: aborted transactions overlapping the returned batches.
    pub aborted_transactions: Vec<AbortedTxn>,
}

impl<R> FetchData<R> {
    /// The same read with its batches held another way.
    pub(super) fn with_records<T>(self, records: T) -> FetchData<T> {
        FetchData {
            records,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            last_stable_offset: self.last_stable_offset,
            aborted_transactions: self.aborted_transactions,
        }
    }
}

/// One producer's state on a partition, as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Producer id.
    pub producer_id: i64,
    /// Latest epoch seen in a batch or marker.
    pub producer_epoch: i16,
    /// Last sequence of the newest remembered batch, -1 if none.
    pub last_sequence: i32,
    /// Largest timestamp of the last batch or marker.
    pub last_timestamp: i64,
    /// Coordinator epoch of the last marker, -1 if none.
    pub coordinator_epoch: i32,
    /// First offset of the open transaction, -1 if none.
    pub current_txn_start_offset: i64,
}

impl AbortedTxn {
    /// Value stored in the aborted-transaction index (the key holds the marker offset).
    pub(crate) fn encode(&self) -> [u8; 16] {
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&self.producer_id.to_be_bytes());
        v[8..].copy_from_slice(&self.first_offset.to_be_bytes());
        v
    }

    /// Parses [`AbortedTxn::encode`] for the marker at `last_offset`.
    pub(crate) fn decode(last_offset: i64, v: &[u8]) -> Option<Self> {
        Some(AbortedTxn {
            producer_id: i64::from_be_bytes(v.get(..8)?.try_into().ok()?),
            first_offset: i64::from_be_bytes(v.get(8..16)?.try_into().ok()?),
            last_offset,
        })
    }
}

/// One refused record of a batch, as a Produce answer lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The record's index in its batch.
    pub batch_index: i32,
    /// Why it was refused.
    pub message: String,
}

impl std::fmt::Display for RecordError {
    // Kafka's `RecordError.toString`, which the partition's message embeds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecordError(batchIndex={}, message='{}')",
            self.batch_index, self.message
        )
    }
}

impl AppendError {
    /// Kafka's `processRecordErrors`: the partition's error and message for refused records.
    pub fn records(records: Vec<RecordError>, invalid_timestamp: bool) -> Self {
        let message = if invalid_timestamp {
            "One or more records have been rejected due to invalid timestamp".to_string()
        } else {
            let shown: Vec<String> = records.iter().take(3).map(|e| e.to_string()).collect();
            format!(
                "One or more records have been rejected due to {} record errors in total, and \
                 only showing the first three errors at most: [{}]",
                records.len(),
                shown.join(", ")
            )
        };
        AppendError::RecordErrors {
            invalid_timestamp,
            message,
            records,
        }
    }
}
