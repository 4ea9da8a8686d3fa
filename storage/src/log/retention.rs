//! Retention: deleting whole segments from the front of the log by time and by size.
//! With tiered storage this is the local retention (`local.retention.*`), and only
//! segments already copied to the remote tier go; total retention is in `tiered.rs`.

use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::meta::leader_epochs_key;
use super::partition::Partition;
use crate::db::{timestamp_key, IndexEntry, CF_ABORTED_TXNS, CF_META, CF_OFFSETS, CF_TIMES};
use crate::StorageError;

impl Partition {
    /// Deletes the segments that retention allows; returns how many were deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        let mut log = self.lock();
        if !log.config.cleanup_policy.deletes() {
            return Ok(0);
        }
        let tiered = self.tiered_under(&log);
        let (retention_ms, retention_bytes) = if tiered {
            (
                log.config.effective_local_retention_ms(),
                log.config.effective_local_retention_bytes(),
            )
        } else {
            (log.config.retention_ms, log.config.retention_bytes)
        };
        // Offsets below it are in the remote tier (or below the log start offset).
        let copied_end = log
            .remote
            .end_offset()
            .map_or(log.log_start_offset, |e| (e + 1).max(log.log_start_offset));
        let mut total: u64 = log.local.segments.values().map(|s| s.size).sum();
        let mut delete = Vec::new();
        let count = log.local.segments.len();
        let high_watermark = log.high_watermark;
        for (i, (base, seg)) in log.local.segments.iter().enumerate() {
            let is_active = i + 1 == count;
            let end = log.local.segment_end(*base);
            // Kafka deletes only segments wholly below the high watermark: a follower may
            // still need what is above it (on a single node it is the log end offset).
            if end > high_watermark {
                break;
            }
            if seg.size == 0 && is_active {
                break;
            }
            // A tiered log keeps every segment until the remote tier has it.
            if tiered && end > copied_end {
                break;
            }
            // A sealed segment the cleaner emptied holds nothing to keep.
            let expired = (seg.size == 0 && retention_ms >= 0)
                || (retention_ms >= 0
                    && seg.max_timestamp >= 0
                    && seg.max_timestamp < now_ms - retention_ms);
            let oversize =
                retention_bytes >= 0 && total.saturating_sub(seg.size) >= retention_bytes as u64;
            // Total retention moved the log start past it.
            let below_start = tiered && !is_active && end <= log.log_start_offset;
            if !(expired || oversize || below_start) {
                break;
            }
            if is_active && !expired {
                break;
            }
            total -= seg.size;
            delete.push((*base, is_active));
        }
        if delete.is_empty() {
            return Ok(0);
        }
        if delete.last().is_some_and(|(_, active)| *active) {
            // An expired active segment is rolled so that it can go, as Kafka does.
            let leo = log.local.log_end_offset;
            self.roll(&mut log, now_ms, leo)?;
        }
        let mut deleted_max_ts = -1;
        let mut removed = Vec::new();
        for (base, _) in &delete {
            if let Some(seg) = log.local.segments.remove(base) {
                deleted_max_ts = deleted_max_ts.max(seg.max_timestamp);
                removed.push(seg);
            }
        }
        let first_base = *log
            .local
            .segments
            .keys()
            .next()
            .unwrap_or(&log.local.log_end_offset);
        // A DeleteRecords may already have moved the log start past the first segment base.
        // What the local log dropped of a tiered log is still in the remote tier: the log
        // start offset stays, and only the local index goes.
        let local_start = first_base.max(log.log_start_offset);
        let new_start = if log.remote.segments.is_empty() {
            local_start
        } else {
            log.log_start_offset
        };
        log.log_start_offset = new_start;
        // Aborted transactions whose marker went with the segments are of no use to a
        // local fetch; the remote tier has its own transaction index.
        log.aborted_txns.prune_below(local_start);
        let mut wb = WriteBatch::default();
        // Epochs wholly below the new start go (Kafka's truncateFromStart).
        if log.epochs.truncate_from_start(new_start) {
            wb.put_cf(
                self.db.cf(CF_META)?,
                leader_epochs_key(&self.key),
                log.epochs.encode(),
            );
        }
        drop(log);

        let offsets = self.db.cf(CF_OFFSETS)?;
        wb.delete_range_cf(
            offsets,
            self.key.with_u64(0),
            self.key.with_i64(local_start),
        );
        wb.delete_range_cf(
            self.db.cf(CF_ABORTED_TXNS)?,
            self.key.with_u64(0),
            self.key.with_i64(local_start),
        );
        self.rebuild_time_index_head(&mut wb, local_start, deleted_max_ts)?;
        self.db.write(wb, false)?;
        for seg in removed {
            tracing::info!(topic = %self.topic, partition = self.index, segment = seg.base_offset, "deleting segment by retention");
            if let Err(e) = std::fs::remove_file(seg.path()) {
                tracing::warn!(path = %seg.path().display(), error = %e, "could not delete segment file");
            }
        }
        Ok(delete.len())
    }

    /// After deleting the log prefix whose largest timestamp was `deleted_max`, the time
    /// index entries at or below it are redone over the remaining batches, so the index
    /// still names, for each timestamp, the first remaining batch that reaches it.
    fn rebuild_time_index_head(
        &self,
        wb: &mut WriteBatch,
        new_start: i64,
        deleted_max: i64,
    ) -> Result<(), StorageError> {
        let times = self.db.cf(CF_TIMES)?;
        wb.delete_range_cf(
            times,
            self.key.with_u64(0),
            self.key
                .with_u64(timestamp_key(deleted_max).saturating_add(1)),
        );
        let offsets = self.db.cf(CF_OFFSETS)?;
        let start = self.key.with_i64(new_start);
        let mut running = i64::MIN;
        for item in self
            .db
            .db
            .iterator_cf(offsets, IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(self.key.as_bytes()) {
                break;
            }
            let e = IndexEntry::decode(&k, &v)?;
            if e.max_timestamp > deleted_max {
                break;
            }
            if e.max_timestamp > running {
                running = e.max_timestamp;
                wb.put_cf(
                    times,
                    self.key.with_u64(timestamp_key(running)),
                    e.base_offset.to_be_bytes(),
                );
            }
        }
        Ok(())
    }
}
