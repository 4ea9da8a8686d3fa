//! One partition's log: offsets, high watermark, log start offset, segment rolls, reads.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use rocksdb::{Direction, IteratorMode, WriteBatch};
use sluice_config::{CompressionType, TimestampType, TopicConfig};
use sluice_protocol::batch::{self, BatchHeader, Compression, ControlType};
use sluice_protocol::records;
use tokio::sync::watch;
use uuid::Uuid;

use super::aborted::AbortedIndex;
use super::open_files::OpenFiles;
use super::region::FileRegion;
use super::segment::Segment;
use super::validate::{self, RecordError, TimeRange};
use crate::db::{
    timestamp_key, Db, IndexEntry, PartitionKey, CF_ABORTED_TXNS, CF_OFFSETS, CF_PRODUCERS,
    CF_TIMES,
};
use crate::producers::{ProducerStates, SequenceCheck, SequenceError};
use crate::StorageError;

/// Leader epoch stamped into batches: a single node is leader from epoch 0 forever.
pub const LEADER_EPOCH: i32 = 0;

/// Coordinator epoch written into transaction markers: a single node's transaction
/// coordinator never moves, so its epoch never changes.
pub const COORDINATOR_EPOCH: i32 = 0;

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
    /// The disk or the index failed (KAFKA_STORAGE_ERROR).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Which records a read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything up to the high watermark.
    ReadUncommitted,
    /// Only up to the last stable offset, with the aborted transactions listed.
    ReadCommitted,
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
    fn with_records<T>(self, records: T) -> FetchData<T> {
        FetchData {
            records,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            last_stable_offset: self.last_stable_offset,
            aborted_transactions: self.aborted_transactions,
        }
    }
}

pub(super) struct LogState {
    pub(super) segments: BTreeMap<i64, Segment>,
    pub(super) log_end_offset: i64,
    pub(super) log_start_offset: i64,
    pub(super) producers: ProducerStates,
    /// Largest timestamp appended so far; the time index records each new maximum.
    pub(super) max_timestamp: i64,
    pub(super) unflushed_messages: u64,
    /// Rolled segments whose data is not yet forced to disk.
    pub(super) unflushed_files: Vec<Arc<File>>,
    pub(super) config: TopicConfig,
    /// Open transactions: first offset → producer id. The first is the LSO.
    pub(super) ongoing_txns: BTreeMap<i64, i64>,
    /// Aborted transactions, for read-committed fetches.
    pub(super) aborted_txns: AbortedIndex,
}

impl LogState {
    pub(super) fn active(&mut self) -> Result<&mut Segment, StorageError> {
        self.segments
            .values_mut()
            .next_back()
            .ok_or_else(|| StorageError::Corrupt("partition has no segment".into()))
    }

    /// The first offset of the oldest open transaction, else the log end offset.
    pub(super) fn last_stable_offset(&self) -> i64 {
        self.ongoing_txns
            .keys()
            .next()
            .map_or(self.log_end_offset, |first| {
                (*first).clamp(self.log_start_offset, self.log_end_offset)
            })
    }
}

/// One partition of a topic.
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub index: i32,
    pub(super) key: PartitionKey,
    pub(super) dir: PathBuf,
    pub(super) db: Arc<Db>,
    pub(super) log: Mutex<LogState>,
    /// Everything below this offset is on disk.
    flushed_offset: AtomicI64,
    flush_lock: tokio::sync::Mutex<()>,
    /// Held by a cleaning pass, so that passes on one partition never overlap.
    pub(super) cleaner_lock: Mutex<()>,
    /// Set when a segment swap failed after its commit point: recovery must finish it first.
    pub(super) cleaner_stopped: std::sync::atomic::AtomicBool,
    /// The high watermark; long-poll fetches wait for it to move.
    high_watermark: watch::Sender<i64>,
    /// What opening the partition had to repair (see [`Partition::recovery_work`]).
    recovery_work: u64,
    /// The data directory's budget of open segment files.
    pub(super) files: Arc<OpenFiles>,
    /// This partition, for background work started from `&self`.
    me: Weak<Partition>,
}

impl Partition {
    /// Opens (or creates) the partition's directory and recovers its tail.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open(
        db: Arc<Db>,
        log_root: &Path,
        topic: &str,
        topic_id: Uuid,
        index: i32,
        config: TopicConfig,
        files: Arc<OpenFiles>,
        now_ms: i64,
    ) -> Result<Arc<Self>, StorageError> {
        let dir = log_root.join(format!("{topic}-{index}"));
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let key = PartitionKey::new(topic_id, index);
        let (state, recovery_work) =
            super::recovery::recover(&db, &files, &dir, key, config, now_ms)?;
        let leo = state.log_end_offset;
        Ok(Arc::new_cyclic(|me| Partition {
            topic: topic.to_string(),
            topic_id,
            index,
            key,
            dir,
            db,
            log: Mutex::new(state),
            flushed_offset: AtomicI64::new(leo),
            flush_lock: tokio::sync::Mutex::new(()),
            cleaner_lock: Mutex::new(()),
            cleaner_stopped: std::sync::atomic::AtomicBool::new(false),
            high_watermark: watch::channel(leo).0,
            recovery_work,
            files,
            me: me.clone(),
        }))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock cannot leave the log half-written on disk (files
        // are written before the index), so the state is still usable.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What opening the partition had to repair: batches found beyond the index, torn
    /// tails truncated, segments removed after them. 0 after a clean shutdown.
    pub fn recovery_work(&self) -> u64 {
        self.recovery_work
    }

    /// The directory holding the segment files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Log end offset, which on a single node is also the high watermark.
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// Log start offset.
    pub fn log_start_offset(&self) -> i64 {
        self.lock().log_start_offset
    }

    /// Last stable offset: below it every transaction is decided.
    pub fn last_stable_offset(&self) -> i64 {
        self.lock().last_stable_offset()
    }

    /// Total bytes of the partition's segments.
    pub fn size_bytes(&self) -> u64 {
        self.lock().segments.values().map(|s| s.size).sum()
    }

    /// A receiver that changes whenever the high watermark moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Replaces the topic configuration in force (segment size, retention, limits).
    pub fn set_config(&self, config: TopicConfig) {
        self.lock().config = config;
    }

    /// Appends one validated batch from a producer: checks the producer's sequence,
    /// assigns offsets by writing the base offset in place, writes the segment, then the
    /// index.
    pub fn append(
        &self,
        header: BatchHeader,
        batch: &Bytes,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        if header.is_control() {
            return Err(AppendError::InvalidRecord(
                "control batches are written by the transaction coordinator, not by producers",
            ));
        }
        if header.is_transactional() && !header.has_producer_id() {
            return Err(AppendError::InvalidRecord(
                "a transactional batch must carry a producer id",
            ));
        }
        let (timestamp_type, before_max, after_max, compacted, codec) = {
            let log = self.lock();
            (
                log.config.timestamp_type,
                log.config.timestamp_before_max_ms,
                log.config.timestamp_after_max_ms,
                log.config.cleanup_policy.compacts(),
                stored_codec(log.config.compression_type),
            )
        };
        // Kafka checks every record's CreateTime; the header's maximum rules out the future
        // bound without decoding the records, and only a configured past bound needs them.
        let times = (timestamp_type == TimestampType::CreateTime
            && (header.max_timestamp > now_ms.saturating_add(after_max) || before_max != i64::MAX))
            .then_some((now_ms, before_max, after_max));
        let rewritten = self.check_records(&header, batch, compacted, times, codec)?;
        let (header, batch) = match &rewritten {
            Some((h, b)) => (*h, b),
            None => (header, batch),
        };
        let log_append_time = (timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        self.append_inner(header, batch, None, log_append_time, now_ms)
    }

    /// Looks inside a producer's batch where the topic's configs require it: a compacted
    /// topic refuses records without a key, records outside `times` are refused (both per
    /// record, as Kafka's LogValidator), and a named `compression.type` recompresses.
    /// Returns the batch to store when it differs from the one given.
    fn check_records(
        &self,
        header: &BatchHeader,
        batch: &Bytes,
        compacted: bool,
        times: Option<TimeRange>,
        codec: Option<Compression>,
    ) -> Result<Option<(BatchHeader, Bytes)>, AppendError> {
        let recompress = codec.filter(|c| header.compression() != Some(*c));
        if !compacted && times.is_none() && recompress.is_none() {
            return Ok(None);
        }
        let (h, recs) = records::decode_records(batch)
            .map_err(|_| AppendError::InvalidRecord("the batch's records do not decode"))?;
        validate::check_records(
            &self.topic,
            self.index,
            h.base_offset,
            &recs,
            compacted,
            times,
        )?;
        let Some(to) = recompress else {
            return Ok(None);
        };
        let bytes = records::encode_with_codec(&h, &recs, to)
            .map_err(|_| AppendError::InvalidRecord("the batch's records do not encode"))?;
        let header = batch::read_header(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("recompressed batch: {e}")))?;
        Ok(Some((header, Bytes::from(bytes))))
    }

    /// Appends a transaction marker that ends the producer's transaction on this
    /// partition (written by the transaction coordinator).
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        control: ControlType,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let bytes = batch::control_batch(
            producer_id,
            producer_epoch,
            control,
            COORDINATOR_EPOCH,
            now_ms,
        );
        let header = batch::read_header(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("control batch: {e}")))?;
        self.append_inner(header, &bytes, Some(control), None, now_ms)
    }

    /// Appends a batch; `log_append_time` stamps it with that time (LogAppendTime topics)
    /// on the copy that takes its offsets.
    fn append_inner(
        &self,
        header: BatchHeader,
        batch: &Bytes,
        control: Option<ControlType>,
        log_append_time: Option<i64>,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let mut log = self.lock();
        if batch.len() > log.config.max_message_bytes.max(0) as usize {
            return Err(AppendError::TooLarge {
                size: batch.len(),
                max: log.config.max_message_bytes,
            });
        }
        if control.is_some() {
            log.producers.check_marker(&header)?;
        } else if header.has_producer_id() {
            if let SequenceCheck::Duplicate {
                base_offset,
                last_offset,
            } = log.producers.check(&header)?
            {
                return Ok(AppendInfo {
                    base_offset,
                    last_offset,
                    log_start_offset: log.log_start_offset,
                    duplicate: true,
                    flush_due: false,
                    log_append_time_ms: -1,
                });
            }
        }
        self.maybe_roll(&mut log, batch.len() as u64, now_ms)?;

        let base_offset = log.log_end_offset;
        let mut bytes = batch.to_vec();
        batch::set_base_offset(&mut bytes, base_offset);
        batch::set_partition_leader_epoch(&mut bytes, LEADER_EPOCH);
        let header = match log_append_time {
            Some(t) => {
                batch::set_log_append_time(&mut bytes, t);
                batch::read_header(&bytes)
                    .map_err(|e| StorageError::Corrupt(format!("stamped batch: {e}")))?
            }
            None => BatchHeader {
                base_offset,
                partition_leader_epoch: LEADER_EPOCH,
                ..header
            },
        };
        let segment = log.active()?;
        let segment_base = segment.base_offset;
        let position = segment.size;
        if let Err(e) = segment.append(&bytes) {
            // Never leave a partial batch behind an acknowledged one.
            let _ = segment.truncate(position);
            return Err(e.into());
        }
        segment.max_timestamp = segment.max_timestamp.max(header.max_timestamp);

        let mut wb = WriteBatch::default();
        self.index_batch(&mut log, &mut wb, &header, control, segment_base, position)?;
        if let Err(e) = self.db.write(wb, false) {
            let segment = log.active()?;
            let _ = segment.truncate(position);
            return Err(e.into());
        }
        log.log_end_offset = header.last_offset() + 1;
        log.unflushed_messages += header.records_count.max(1) as u64;
        // flush.messages (topic) over log.flush.interval.messages (broker).
        let flush_due = log.unflushed_messages >= log.config.flush_messages;
        let info = AppendInfo {
            base_offset,
            last_offset: header.last_offset(),
            log_start_offset: log.log_start_offset,
            duplicate: false,
            flush_due,
            log_append_time_ms: if header.is_log_append_time() {
                header.max_timestamp
            } else {
                -1
            },
        };
        let leo = log.log_end_offset;
        drop(log);
        self.high_watermark.send_replace(leo);
        Ok(info)
    }

    /// Adds the index entries and producer state of a batch written at `position` of the
    /// segment starting at `segment_base`.
    pub(super) fn index_batch(
        &self,
        log: &mut LogState,
        wb: &mut WriteBatch,
        header: &BatchHeader,
        control: Option<ControlType>,
        segment_base: i64,
        position: u64,
    ) -> Result<(), StorageError> {
        index_batch(
            &self.db,
            self.key,
            log,
            wb,
            header,
            control,
            segment_base,
            position,
        )
    }

    fn maybe_roll(
        &self,
        log: &mut LogState,
        incoming: u64,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let segment_bytes = log.config.segment_bytes;
        // A compacted log rolls by max.compaction.lag.ms too, so that no record waits in
        // the active segment longer than that for the cleaner (KIP-354).
        let segment_ms = if log.config.cleanup_policy.compacts() {
            log.config.segment_ms.min(log.config.max_compaction_lag_ms)
        } else {
            log.config.segment_ms
        };
        let leo = log.log_end_offset;
        let active = log.active()?;
        let full = active.size > 0 && active.size + incoming > segment_bytes;
        let old = active.size > 0 && now_ms.saturating_sub(active.created_ms) >= segment_ms;
        if full || old {
            self.roll(log, now_ms, leo)?;
        }
        Ok(())
    }

    pub(super) fn roll(
        &self,
        log: &mut LogState,
        now_ms: i64,
        base: i64,
    ) -> Result<(), StorageError> {
        let old = log.active()?.file.handle()?;
        log.unflushed_files.push(old.clone());
        let segment = Segment::create(&self.files, &self.dir, base, now_ms)?;
        tracing::debug!(topic = %self.topic, partition = self.index, base_offset = base, "rolled segment");
        log.segments.insert(base, segment);
        self.flush_rolled(old);
        Ok(())
    }

    /// Forces a rolled segment to disk in the background, whatever the flush policy, as
    /// Kafka does: afterwards nothing holds its file open, so the open-files budget can
    /// close it and retention's deletion frees its space at once.
    fn flush_rolled(&self, file: Arc<File>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Outside the broker (tools, tests): the next flush takes it.
            return;
        };
        let me = self.me.clone();
        runtime.spawn_blocking(move || {
            let started = std::time::Instant::now();
            let synced = file.sync_data();
            let Some(p) = me.upgrade() else { return };
            match synced {
                Ok(()) => {
                    crate::FSYNC_STATS.record(started.elapsed());
                    p.lock().unflushed_files.retain(|f| !Arc::ptr_eq(f, &file));
                }
                // Left in the list: the next flush retries it and reports the error.
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flushing a rolled segment failed")
                }
            }
        });
    }

    /// Reads whole batches starting at the batch that holds `offset`, up to `max_bytes`
    /// (at least one whole batch, as KIP-74 requires), never past the high watermark, and
    /// for read-committed reads never past the last stable offset.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<FetchData, ReadError> {
        let data = self.read_region(offset, max_bytes, isolation)?;
        let records = match &data.records {
            Some(region) => region.read()?,
            None => Bytes::new(),
        };
        Ok(data.with_records(records))
    }

    /// Like [`Partition::read`], but names the batches as a region of their segment file
    /// instead of reading them: the batches are found from the index alone. `None` when
    /// there is nothing to return.
    pub fn read_region(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<FetchData<Option<FileRegion>>, ReadError> {
        // The offsets, the index and the segment map are read under one lock, so that the
        // cleaner cannot swap the file between finding the batches and taking its handle.
        let log = self.lock();
        let (log_start_offset, high_watermark, last_stable_offset) = (
            log.log_start_offset,
            log.log_end_offset,
            log.last_stable_offset(),
        );
        if offset < log_start_offset || offset > high_watermark {
            return Err(ReadError::OutOfRange {
                offset,
                log_start_offset,
                log_end_offset: high_watermark,
            });
        }
        let upper = match isolation {
            Isolation::ReadUncommitted => high_watermark,
            Isolation::ReadCommitted => last_stable_offset,
        };
        let mut data = FetchData {
            records: None,
            high_watermark,
            log_start_offset,
            last_stable_offset,
            aborted_transactions: Vec::new(),
        };
        if offset >= upper {
            return Ok(data);
        }
        let Some((first, segment)) = self.find_batch(&log, offset)? else {
            return Ok(data);
        };
        if first.base_offset >= upper {
            return Ok(data);
        }
        let (end, next_offset) = self.batches_end(&log, &first, segment.size, max_bytes, upper)?;
        if isolation == Isolation::ReadCommitted {
            data.aborted_transactions = log.aborted_txns.overlapping(offset, next_offset);
        }
        let len = end.saturating_sub(first.position) as usize;
        data.records = Some(FileRegion::new(&segment.file, first.position, len)?);
        Ok(data)
    }

    /// Where a read starting at batch `first` ends in its segment: after the last whole
    /// batch that starts below `upper` and ends within `max_bytes` of `first` (or after
    /// `first` alone if it is larger). Returns the position and the offset after it.
    fn batches_end(
        &self,
        log: &LogState,
        first: &IndexEntry,
        segment_size: u64,
        max_bytes: usize,
        upper: i64,
    ) -> Result<(u64, i64), StorageError> {
        let segment = first.segment;
        let limit = first
            .position
            .saturating_add((first.size as u64).max(max_bytes as u64));
        // Everything below `upper` in this segment: up to the batch holding `upper`, or to
        // the segment's end (the next segment's base offset comes after it).
        let (upper_end, upper_next) = match self.batch_containing(upper)? {
            Some(e) if e.segment == segment && e.base_offset < upper => {
                (e.position + e.size as u64, e.last_offset + 1)
            }
            Some(e) if e.segment == segment => (e.position, e.base_offset),
            _ => {
                let next = log
                    .segments
                    .range(segment + 1..)
                    .next()
                    .map_or(log.log_end_offset, |(base, _)| *base);
                (segment_size, next)
            }
        };
        if upper_end <= limit {
            return Ok((upper_end, upper_next));
        }
        // Positions grow with offsets within a segment: search the offsets for the last
        // batch that still ends within the limit.
        let mut best = (first.position + first.size as u64, first.last_offset + 1);
        let (mut lo, mut hi) = (first.last_offset, upper - 1);
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2;
            match self.batch_containing(mid)? {
                Some(e)
                    if e.segment == segment
                        && e.base_offset < upper
                        && e.position + e.size as u64 <= limit =>
                {
                    best = (e.position + e.size as u64, e.last_offset + 1);
                    lo = e.last_offset.max(mid);
                }
                _ => hi = mid - 1,
            }
        }
        Ok(best)
    }

    /// Producers with state on this partition, for DescribeProducers.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        let log = self.lock();
        let mut out: Vec<ProducerInfo> = log
            .producers
            .producers
            .iter()
            .map(|(pid, e)| ProducerInfo {
                producer_id: *pid,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// The batch holding `offset` (or the first after it) and the region of its segment
    /// file it fills, looked up together under the log lock so that the cleaner cannot
    /// swap the file in between.
    pub(super) fn locate(
        &self,
        offset: i64,
    ) -> Result<Option<(IndexEntry, FileRegion)>, StorageError> {
        let log = self.lock();
        let Some((entry, segment)) = self.find_batch(&log, offset)? else {
            return Ok(None);
        };
        let region = FileRegion::new(&segment.file, entry.position, entry.size as usize)?;
        Ok(Some((entry, region)))
    }

    /// The batch holding `offset` (or the first after it) and its segment; `log` is the
    /// held log lock, which keeps the two consistent.
    fn find_batch<'a>(
        &self,
        log: &'a LogState,
        offset: i64,
    ) -> Result<Option<(IndexEntry, &'a Segment)>, StorageError> {
        let Some(entry) = self.batch_containing(offset)? else {
            return Ok(None);
        };
        // A segment missing from the map was just removed by retention.
        Ok(log.segments.get(&entry.segment).map(|s| (entry, s)))
    }

    /// The index entry of the first batch whose last offset is at or after `offset`.
    pub(super) fn batch_containing(&self, offset: i64) -> Result<Option<IndexEntry>, StorageError> {
        let cf = self.db.cf(CF_OFFSETS)?;
        let start = self.key.with_i64(offset.max(0));
        let mut it = self
            .db
            .db
            .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward));
        match it.next() {
            Some(Ok((k, v))) if k.starts_with(self.key.as_bytes()) => {
                Ok(Some(IndexEntry::decode(&k, &v)?))
            }
            Some(Err(e)) => Err(e.into()),
            _ => Ok(None),
        }
    }

    /// Forces everything appended so far to disk unless a concurrent flush already covered
    /// `offset`. Waiters share one fsync: group commit.
    pub async fn flush_to(&self, offset: i64) -> Result<(), StorageError> {
        if self.flushed_offset.load(Ordering::Acquire) > offset {
            return Ok(());
        }
        let _guard = self.flush_lock.lock().await;
        if self.flushed_offset.load(Ordering::Acquire) > offset {
            return Ok(());
        }
        self.flush_now().await
    }

    /// Forces all appended data to disk now.
    pub async fn flush_now(&self) -> Result<(), StorageError> {
        let (rolled, active, leo) = {
            let mut log = self.lock();
            let rolled = std::mem::take(&mut log.unflushed_files);
            let active = log.active()?.file.handle()?;
            log.unflushed_messages = 0;
            (rolled, active, log.log_end_offset)
        };
        let dir = self.dir.clone();
        let synced = tokio::task::spawn_blocking(move || {
            let mut failed = None;
            for (i, f) in rolled.iter().chain([&active]).enumerate() {
                let started = std::time::Instant::now();
                if let Err(e) = f.sync_data() {
                    failed = Some((i, StorageError::io(&dir, e)));
                    break;
                }
                crate::FSYNC_STATS.record(started.elapsed());
            }
            match failed {
                Some((i, e)) => Err((rolled, i, e)),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| StorageError::Corrupt(format!("flush task failed: {e}")))?;
        if let Err((rolled, failed, e)) = synced {
            // The rolled segments not yet synced stay due, so a later flush retries them.
            let mut log = self.lock();
            log.unflushed_files.extend(rolled.into_iter().skip(failed));
            return Err(e);
        }
        self.flushed_offset.fetch_max(leo, Ordering::AcqRel);
        Ok(())
    }

    /// True when appended data is not yet forced to disk.
    pub fn has_unflushed(&self) -> bool {
        self.flushed_offset.load(Ordering::Acquire) < self.high_watermark()
    }

    /// Deletes this partition's files and index entries (the topic is being deleted).
    pub(crate) fn destroy(&self) -> Result<(), StorageError> {
        let mut log = self.lock();
        log.segments.clear();
        log.unflushed_files.clear();
        let mut wb = WriteBatch::default();
        for cf in [CF_OFFSETS, CF_TIMES, CF_PRODUCERS, CF_ABORTED_TXNS] {
            self.db.delete_partition_keys(&mut wb, cf, &self.key)?;
        }
        wb.delete_cf(
            self.db.cf(crate::db::CF_META)?,
            super::delete_records::log_start_key(&self.key),
        );
        super::cleaner::delete_checkpoint(&self.db, &mut wb, &self.key)?;
        self.db.write(wb, false)?;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(&self.dir, e)),
        }
    }
}

/// Index entries and producer state for one batch, added to `wb`; shared by append and
/// recovery so both index a batch the same way.
#[allow(clippy::too_many_arguments)]
pub(super) fn index_batch(
    db: &Db,
    key: PartitionKey,
    log: &mut LogState,
    wb: &mut WriteBatch,
    header: &BatchHeader,
    control: Option<ControlType>,
    segment_base: i64,
    position: u64,
) -> Result<(), StorageError> {
    let entry = IndexEntry {
        segment: segment_base,
        position,
        size: header.size() as u32,
        base_offset: header.base_offset,
        last_offset: header.last_offset(),
        max_timestamp: header.max_timestamp,
    };
    wb.put_cf(
        db.cf(CF_OFFSETS)?,
        key.with_i64(entry.last_offset),
        entry.encode(),
    );
    if header.max_timestamp > log.max_timestamp {
        log.max_timestamp = header.max_timestamp;
        wb.put_cf(
            db.cf(CF_TIMES)?,
            key.with_u64(timestamp_key(header.max_timestamp)),
            header.base_offset.to_be_bytes(),
        );
    }
    if !header.has_producer_id() {
        return Ok(());
    }
    let producers = db.cf(CF_PRODUCERS)?;
    if header.is_control() {
        let Some(control) = control else {
            // A control record that is not a transaction marker changes no producer.
            return Ok(());
        };
        let (state, completed) = log
            .producers
            .record_marker(header, control, COORDINATOR_EPOCH);
        wb.put_cf(producers, key.with_i64(header.producer_id), state.encode());
        if let Some(done) = completed {
            log.ongoing_txns.remove(&done.first_offset);
            if done.aborted {
                let aborted = AbortedTxn {
                    producer_id: done.producer_id,
                    first_offset: done.first_offset,
                    last_offset: done.last_offset,
                };
                wb.put_cf(
                    db.cf(CF_ABORTED_TXNS)?,
                    key.with_i64(aborted.last_offset),
                    aborted.encode(),
                );
                log.aborted_txns.insert(aborted);
            }
        }
    } else {
        let was_open = log
            .producers
            .producers
            .get(&header.producer_id)
            .is_some_and(|e| e.txn_first_offset.is_some());
        let state = log.producers.record(header);
        if let (false, Some(first)) = (was_open, state.txn_first_offset) {
            log.ongoing_txns.insert(first, header.producer_id);
        }
        wb.put_cf(producers, key.with_i64(header.producer_id), state.encode());
    }
    Ok(())
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

/// The codec a topic's `compression.type` stores batches in; `None` keeps the producer's.
fn stored_codec(c: CompressionType) -> Option<Compression> {
    match c {
        CompressionType::Producer => None,
        CompressionType::Uncompressed => Some(Compression::None),
        CompressionType::Gzip => Some(Compression::Gzip),
        CompressionType::Snappy => Some(Compression::Snappy),
        CompressionType::Lz4 => Some(Compression::Lz4),
        CompressionType::Zstd => Some(Compression::Zstd),
    }
}
