//! A follower's append: the leader's batches written as they are (offsets, leader epochs,
//! timestamps, producer ids kept), indexed as the leader indexed them.

use bytes::Bytes;
use rocksdb::WriteBatch;
use sluice_protocol::batch::{self, BatchHeader};

use super::index::index_batch;
use super::partition::Partition;
use super::types::{AppendError, ReplicatedAppend};
use crate::StorageError;

impl Partition {
    /// A follower appends the leader's batches as they are: one or more whole batches
    /// whose first base offset must equal the LEO (later ones must follow the previous
    /// batch; compaction may leave gaps), each CRC-checked, all checked before any is
    /// written. Producer state, open transactions, the aborted index, the time index and
    /// the leader-epoch cache are updated as the leader's were. Returns the offsets
    /// appended and whether a flush is due under the flush policy.
    pub fn append_replicated(
        &self,
        records: &Bytes,
        now_ms: i64,
    ) -> Result<ReplicatedAppend, AppendError> {
        self.on_disk(|| self.append_replicated_on_disk(records, now_ms))
    }

    fn append_replicated_on_disk(
        &self,
        records: &Bytes,
        now_ms: i64,
    ) -> Result<ReplicatedAppend, AppendError> {
        let batches = batch::split_batches(records)
            .map_err(|_| AppendError::InvalidRecord("a replicated batch is corrupt"))?;
        let mut log = self.lock();
        let leo = log.log_end_offset();
        let mut expected = leo;
        for (h, _) in &batches {
            let continues = if expected == leo {
                h.base_offset == leo
            } else {
                h.base_offset >= expected
            };
            if !continues || h.last_offset() < h.base_offset {
                return Err(AppendError::OffsetMismatch {
                    expected,
                    got: h.base_offset,
                });
            }
            expected = h.last_offset() + 1;
        }
        let mut flush_due = false;
        for (h, bytes) in &batches {
            self.append_one(&mut log, h, bytes, now_ms)?;
            log.set_log_end_offset(h.last_offset() + 1);
            log.unflushed_messages += h.records_count.max(1) as u64;
            flush_due |= log.unflushed_messages >= log.config.flush_messages;
            // Each batch is published as it lands, so a failure later leaves the watchers
            // where the log is.
            self.publish(&log);
        }
        Ok(ReplicatedAppend {
            first_offset: leo,
            last_offset: log.log_end_offset() - 1,
            flush_due,
        })
    }

    /// Writes one of the leader's batches at the end of the log and indexes it.
    fn append_one(
        &self,
        log: &mut super::log_state::LogState,
        h: &BatchHeader,
        bytes: &Bytes,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        // A batch after a compaction gap starts its segment at its own base offset.
        self.maybe_roll(log, bytes.len() as u64, now_ms, h.base_offset)?;
        let (segment_base, position) = log.local.append(bytes, h.max_timestamp)?;
        let mut wb = WriteBatch::default();
        let control = batch::control_marker(bytes);
        index_batch(
            &self.db,
            self.key,
            log,
            &mut wb,
            h,
            control,
            segment_base,
            position,
        )?;
        if let Err(e) = self.db.write(wb, false) {
            let _ = log.local.truncate_active(position);
            return Err(e);
        }
        Ok(())
    }
}
