//! Appending to a partition: a producer's batch (validated, deduplicated by producer
//! sequence, stamped with its offsets) or a transaction marker, then the segment roll
//! policy (`segment.bytes`, `segment.ms`).

use bytes::Bytes;
use rocksdb::WriteBatch;
use sluice_config::{CompressionType, TimestampType};
use sluice_protocol::batch::{self, BatchHeader, Compression, ControlType};
use sluice_protocol::records;

use super::index::index_batch;
use super::log_state::LogState;
use super::partition::Partition;
use super::types::{AppendError, AppendInfo, Marker, COORDINATOR_EPOCH};
use super::validate::{self, TimeRange};
use crate::producers::SequenceCheck;
use crate::StorageError;

impl Partition {
    /// Appends one validated batch from a producer: checks the producer's sequence,
    /// assigns offsets by writing the base offset in place, writes the segment, then the
    /// index.
    pub fn append(
        &self,
        header: BatchHeader,
        batch: &Bytes,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.append_checked(None, header, batch, now_ms)
    }

    /// [`Partition::append`] by the leader of a replicated partition in `leader_epoch`:
    /// refused (NotLeader) unless that is still the latest epoch of the log, checked with
    /// the append under the log's lock. A leader that turned follower after its leadership
    /// check may already hold its new leader's batches of a later epoch: a client batch
    /// after them would be stamped with that epoch at an offset where the new leader has
    /// another batch, a divergence that no comparison of epochs would ever find.
    pub fn append_as_leader(
        &self,
        leader_epoch: i32,
        header: BatchHeader,
        batch: &Bytes,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.append_checked(Some(leader_epoch), header, batch, now_ms)
    }

    fn append_checked(
        &self,
        leader_epoch: Option<i32>,
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
        self.on_disk(|| {
            self.append_inner(header, batch, None, log_append_time, leader_epoch, now_ms)
        })
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
        let marker = Marker {
            producer_id,
            producer_epoch,
            control,
            coordinator_epoch: COORDINATOR_EPOCH,
        };
        self.append_marker_checked(None, marker, now_ms)
    }

    /// [`Partition::append_marker`] by the leader of a replicated partition in
    /// `leader_epoch`, from the coordinator of `marker.coordinator_epoch`: refused when a
    /// later coordinator has written a marker for the producer here (a coordinator that
    /// lost its partition but has not noticed yet).
    pub fn append_marker_as_leader(
        &self,
        leader_epoch: i32,
        marker: Marker,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.append_marker_checked(Some(leader_epoch), marker, now_ms)
    }

    fn append_marker_checked(
        &self,
        leader_epoch: Option<i32>,
        m: Marker,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let bytes = batch::control_batch(
            m.producer_id,
            m.producer_epoch,
            m.control,
            m.coordinator_epoch,
            now_ms,
        );
        let header = batch::read_header(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("control batch: {e}")))?;
        self.on_disk(|| {
            self.append_inner(
                header,
                &bytes,
                Some((m.control, m.coordinator_epoch)),
                None,
                leader_epoch,
                now_ms,
            )
        })
    }

    /// Appends a batch; `log_append_time` stamps it with that time (LogAppendTime topics)
    /// on the copy that takes its offsets, and the leader epoch in force.
    fn append_inner(
        &self,
        header: BatchHeader,
        batch: &Bytes,
        control: Option<(ControlType, i32)>,
        log_append_time: Option<i64>,
        leader_epoch: Option<i32>,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let mut log = self.lock();
        if let Some(leader_epoch) = leader_epoch {
            let latest = log.epochs.latest_epoch();
            if latest != Some(leader_epoch) {
                return Err(AppendError::NotLeader {
                    leader_epoch,
                    latest,
                });
            }
        }
        if batch.len() > log.config.max_message_bytes.max(0) as usize {
            return Err(AppendError::TooLarge {
                size: batch.len(),
                max: log.config.max_message_bytes,
            });
        }
        if let Some((_, coordinator_epoch)) = control {
            log.producers.check_marker(&header, coordinator_epoch)?;
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
        let leo = log.log_end_offset();
        self.maybe_roll(&mut log, batch.len() as u64, now_ms, leo)?;

        let base_offset = log.log_end_offset();
        let leader_epoch = log.epochs.latest_epoch().unwrap_or(0);
        let mut bytes = batch.to_vec();
        batch::set_base_offset(&mut bytes, base_offset);
        batch::set_partition_leader_epoch(&mut bytes, leader_epoch);
        let header = match log_append_time {
            Some(t) => {
                batch::set_log_append_time(&mut bytes, t);
                batch::read_header(&bytes)
                    .map_err(|e| StorageError::Corrupt(format!("stamped batch: {e}")))?
            }
            None => BatchHeader {
                base_offset,
                partition_leader_epoch: leader_epoch,
                ..header
            },
        };
        let (segment_base, position) = log.local.append(&bytes, header.max_timestamp)?;

        let mut wb = WriteBatch::default();
        index_batch(
            &self.db,
            self.key,
            &mut log,
            &mut wb,
            &header,
            control,
            segment_base,
            position,
        )?;
        if let Err(e) = self.db.write(wb, false) {
            let _ = log.local.truncate_active(position);
            return Err(e.into());
        }
        log.set_log_end_offset(header.last_offset() + 1);
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
        self.publish(&log);
        Ok(info)
    }

    /// Rolls the active segment first if the batch about to be appended must start a new
    /// one, which then starts at `base`.
    pub(super) fn maybe_roll(
        &self,
        log: &mut LogState,
        incoming: u64,
        now_ms: i64,
        base: i64,
    ) -> Result<(), StorageError> {
        let segment_bytes = log.config.segment_bytes;
        // A compacted log rolls by max.compaction.lag.ms too, so that no record waits in
        // the active segment longer than that for the cleaner (KIP-354).
        let segment_ms = if log.config.cleanup_policy.compacts() {
            log.config.segment_ms.min(log.config.max_compaction_lag_ms)
        } else {
            log.config.segment_ms
        };
        if log
            .local
            .should_roll(incoming, now_ms, segment_bytes, segment_ms)?
        {
            self.roll(log, now_ms, base)?;
        }
        Ok(())
    }

    /// Starts a new active segment at `base` and flushes the old one in the background.
    pub(super) fn roll(
        &self,
        log: &mut LogState,
        now_ms: i64,
        base: i64,
    ) -> Result<(), StorageError> {
        let old = log.local.roll(now_ms, base)?;
        tracing::debug!(topic = %self.topic, partition = self.index, base_offset = base, "rolled segment");
        self.flush_rolled(old);
        Ok(())
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
