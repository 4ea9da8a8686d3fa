//! What a replica of a replicated partition needs beyond a single node's log: the high
//! watermark moved by the leader's view of the ISR, the leader-epoch cache, and
//! OffsetForLeaderEpoch. Off (the default), the high watermark follows the log end offset.

use rocksdb::WriteBatch;

use super::epoch_cache::EpochCache;
use super::log_state::LogState;
use super::meta::{high_watermark_key, leader_epochs_key};
use super::partition::Partition;
use crate::db::CF_META;
use crate::StorageError;

impl Partition {
    /// Off (the default, single node, RF=1): the high watermark follows the log end offset
    /// at every append and truncation. On: it moves only through
    /// [`Partition::advance_high_watermark`] (and down on truncation); switching on sets it
    /// to min(checkpointed high watermark, log end offset).
    pub fn set_replicated(&self, on: bool) {
        let mut log = self.lock();
        if log.replicated == on {
            return;
        }
        log.replicated = on;
        let leo = log.log_end_offset();
        log.high_watermark = if on {
            log.checkpointed_high_watermark
                .max(log.log_start_offset)
                .min(leo)
        } else {
            leo
        };
        self.publish(&log);
    }

    /// Whether the high watermark is moved by replication (see [`Partition::set_replicated`]).
    pub fn is_replicated(&self) -> bool {
        self.lock().replicated
    }

    /// Leader/follower: HW = max(current, min(hw, LEO)); returns the HW in force and
    /// notifies subscribers when it moved. Without replication the HW is the LEO already.
    pub fn advance_high_watermark(&self, hw: i64) -> i64 {
        let mut log = self.lock();
        let target = hw.min(log.log_end_offset());
        if target > log.high_watermark {
            log.high_watermark = target;
            self.publish(&log);
        }
        log.high_watermark
    }

    /// Writes the high watermark checkpoint (replicated mode; at flush and shutdown) if it
    /// moved since the last one. Never ahead of the log end offset, since the HW is not.
    pub fn checkpoint_high_watermark(&self) -> Result<(), StorageError> {
        let mut log = self.lock();
        if !log.replicated || log.high_watermark == log.checkpointed_high_watermark {
            return Ok(());
        }
        let mut wb = WriteBatch::default();
        wb.put_cf(
            self.db.cf(CF_META)?,
            high_watermark_key(&self.key),
            log.high_watermark.to_be_bytes(),
        );
        self.db.write(wb, false)?;
        log.checkpointed_high_watermark = log.high_watermark;
        Ok(())
    }

    /// The epoch stamped on batches appended by `append`/`append_marker`: the latest in
    /// the leader-epoch cache, 0 when it is empty.
    pub fn leader_epoch(&self) -> i32 {
        self.lock().epochs.latest_epoch().unwrap_or(0)
    }

    /// This replica leads from now on at `epoch`: records (epoch, LEO) in the leader-epoch
    /// cache unless the latest entry already has that epoch; an epoch below the latest is
    /// an error.
    pub fn become_leader(&self, epoch: i32) -> Result<(), StorageError> {
        let mut log = self.lock();
        match log.epochs.latest_epoch() {
            Some(latest) if epoch < latest => {
                return Err(StorageError::StaleLeaderEpoch { epoch, latest })
            }
            Some(latest) if epoch == latest => return Ok(()),
            _ => {}
        }
        if epoch < 0 {
            return Err(StorageError::StaleLeaderEpoch { epoch, latest: -1 });
        }
        let leo = log.log_end_offset();
        let mut epochs = log.epochs.clone();
        epochs.assign(epoch, leo);
        self.store_epochs(&mut log, epochs)?;
        tracing::info!(topic = %self.topic, partition = self.index, leader_epoch = epoch, start_offset = leo, "became leader");
        Ok(())
    }

    /// The leader-epoch cache, oldest first: (epoch, start offset).
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.lock().epochs.entries().to_vec()
    }

    /// OffsetForLeaderEpoch: Kafka's `LeaderEpochFileCache.endOffsetFor(requested, LEO)`:
    /// the largest epoch <= requested and the start offset of the next epoch, or the LEO
    /// for the latest epoch; (-1, -1) when it is undefined.
    pub fn end_offset_for_epoch(&self, requested_epoch: i32) -> (i32, i64) {
        let log = self.lock();
        log.epochs
            .end_offset_for(requested_epoch, log.log_end_offset())
    }

    /// Makes `epochs` the cache, durably first: a follower truncates by it after a crash.
    pub(super) fn store_epochs(
        &self,
        log: &mut LogState,
        epochs: EpochCache,
    ) -> Result<(), StorageError> {
        if epochs == log.epochs {
            return Ok(());
        }
        let mut wb = WriteBatch::default();
        wb.put_cf(
            self.db.cf(CF_META)?,
            leader_epochs_key(&self.key),
            epochs.encode(),
        );
        self.db.write(wb, true)?;
        log.epochs = epochs;
        Ok(())
    }
}
