//! DeleteRecords: moving the log start offset forward on request, deleting the segments
//! that fall wholly below it. The log start offset is kept in RocksDB, since it may lie
//! inside a segment.

use rocksdb::WriteBatch;

use super::meta::{leader_epochs_key, log_start_key};
use super::partition::Partition;
use super::types::ReadError;
use crate::db::{CF_META, CF_OFFSETS};

impl Partition {
    /// Makes `offset` the log start offset (-1: the high watermark) and returns the new
    /// log start (the low watermark DeleteRecords answers with). An offset beyond the high
    /// watermark is OFFSET_OUT_OF_RANGE; one at or below the log start changes nothing.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, ReadError> {
        let mut log = self.lock();
        let high_watermark = log.high_watermark;
        let target = if offset == -1 { high_watermark } else { offset };
        if target < 0 || target > high_watermark {
            return Err(ReadError::OutOfRange {
                offset,
                log_start_offset: log.log_start_offset,
                log_end_offset: high_watermark,
            });
        }
        if target <= log.log_start_offset {
            return Ok(log.log_start_offset);
        }
        // Segments whose every offset is below the target go; the active one stays.
        let bases: Vec<i64> = log.local.segments.keys().copied().collect();
        let doomed: Vec<i64> = bases
            .windows(2)
            .filter(|w| w[1] <= target)
            .map(|w| w[0])
            .collect();
        let first_kept = bases
            .iter()
            .copied()
            .find(|b| !doomed.contains(b))
            .unwrap_or(target);
        let mut wb = WriteBatch::default();
        wb.put_cf(
            self.db.cf(CF_META)?,
            log_start_key(&self.key),
            target.to_be_bytes(),
        );
        wb.delete_range_cf(
            self.db.cf(CF_OFFSETS)?,
            self.key.with_u64(0),
            self.key.with_i64(first_kept),
        );
        // Epochs wholly below the new start go (Kafka's truncateFromStart).
        let mut epochs = log.epochs.clone();
        if epochs.truncate_from_start(target) {
            wb.put_cf(
                self.db.cf(CF_META)?,
                leader_epochs_key(&self.key),
                epochs.encode(),
            );
        }
        self.db.write(wb, true)?;
        log.epochs = epochs;
        log.log_start_offset = target;
        log.aborted_txns.prune_below(target);
        let removed: Vec<_> = doomed
            .iter()
            .filter_map(|b| log.local.segments.remove(b))
            .collect();
        drop(log);
        for seg in removed {
            tracing::info!(topic = %self.topic, partition = self.index, segment = seg.base_offset, "deleting segment below the log start offset");
            if let Err(e) = std::fs::remove_file(seg.path()) {
                tracing::warn!(path = %seg.path().display(), error = %e, "could not delete segment file");
            }
        }
        tracing::info!(topic = %self.topic, partition = self.index, log_start_offset = target, "deleted records");
        Ok(target)
    }
}
