//! The partition's side of tiered storage (KIP-405): which sealed segment to copy next,
//! recording copies as they start and finish, the remote segments a read or a timestamp
//! lookup needs, and total retention over the remote tier. The local log keeps offsets
//! from the local log start; the remote tier holds what lies below it, down to the log
//! start offset.

use std::collections::BTreeMap;

use rocksdb::WriteBatch;
use uuid::Uuid;

use super::log_state::LogState;
use super::meta::{leader_epochs_key, log_start_key};
use super::partition::Partition;
use crate::db::CF_META;
use crate::remote::{
    self, encode_batch_index, encode_producer_snapshot, encode_txn_index, BatchEntry, CopyJob,
    RemoteSegment, RemoteSegmentState,
};
use crate::StorageError;

/// The remote segments of a partition, as this broker knows them.
#[derive(Debug, Default)]
pub(super) struct RemoteLog {
    /// Copied segments (COPY_FINISHED) by base offset.
    pub(super) segments: BTreeMap<i64, RemoteSegment>,
    /// The copy in progress (COPY_STARTED), if any.
    pub(super) copying: Option<RemoteSegment>,
}

impl RemoteLog {
    /// The last offset copied, if any.
    pub(super) fn end_offset(&self) -> Option<i64> {
        self.segments.values().next_back().map(|s| s.end_offset)
    }

    /// The copied segment holding `offset`.
    pub(super) fn containing(&self, offset: i64) -> Option<&RemoteSegment> {
        self.segments
            .range(..=offset)
            .next_back()
            .map(|(_, s)| s)
            .filter(|s| s.end_offset >= offset)
    }

    /// Bytes of the copied segments.
    pub(super) fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size_bytes).sum()
    }
}

/// Where a fetch below the local log start must read: a remote segment, with the
/// partition's offsets at the time of the read.
#[derive(Debug, Clone)]
pub struct RemoteRead {
    /// The offset to read from.
    pub offset: i64,
    /// The remote segment holding the offset.
    pub segment: RemoteSegment,
    /// Reads stop below it (the high watermark or the last stable offset).
    pub upper: i64,
    /// High watermark.
    pub high_watermark: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
}

impl LogState {
    /// The first offset held by the local segment files.
    pub(super) fn local_log_start_offset(&self) -> i64 {
        let first = self
            .local
            .segments
            .keys()
            .next()
            .copied()
            .unwrap_or(self.local.log_end_offset);
        first.max(self.log_start_offset)
    }
}

impl Partition {
    /// Whether this partition copies sealed segments to the remote tier: the broker's
    /// `remote.log.storage.system.enable` and the topic's `remote.storage.enable`.
    pub fn tiered(&self) -> bool {
        self.tiered_under(&self.lock())
    }

    pub(super) fn tiered_under(&self, log: &LogState) -> bool {
        self.db.remote_log_enabled && log.config.remote_storage_enable
    }

    /// The first offset held locally (Kafka's local log start offset, KIP-1005's
    /// `earliest-local`); the log start offset when nothing is remote.
    pub fn local_log_start_offset(&self) -> i64 {
        self.lock().local_log_start_offset()
    }

    /// The copied remote segments, by base offset.
    pub fn remote_segments(&self) -> Vec<RemoteSegment> {
        self.lock().remote.segments.values().cloned().collect()
    }

    /// Bytes of the copied remote segments.
    pub fn remote_size_bytes(&self) -> u64 {
        self.lock().remote.size_bytes()
    }

    /// The highest offset copied to the remote tier (ListOffsets `latest-tiered`).
    pub fn highest_remote_offset(&self) -> Option<i64> {
        self.lock().remote.end_offset()
    }

    /// Rolled segments not yet copied, and their bytes: the upload lag.
    pub fn copy_lag(&self) -> (usize, u64) {
        let log = self.lock();
        if !self.tiered_under(&log) {
            return (0, 0);
        }
        // Offsets below the log start offset need no copy.
        let copied_end = log
            .remote
            .end_offset()
            .unwrap_or(-1)
            .max(log.log_start_offset - 1);
        let count = log.local.segments.len();
        log.local
            .segments
            .iter()
            .take(count.saturating_sub(1))
            .filter(|(base, _)| log.local.segment_end(**base) - 1 > copied_end)
            .fold((0, 0), |(n, b), (_, s)| (n + 1, b + s.size))
    }

    /// Starts copying the next sealed segment: the first one past what is remote, wholly
    /// below the high watermark and the last stable offset (so its transaction index is
    /// final). Records it as COPY_STARTED before any object is written, so that a crash
    /// leaves nothing unaccounted for. `None` when there is nothing to copy.
    pub fn begin_copy(&self, now_ms: i64) -> Result<Option<CopyJob>, StorageError> {
        let mut log = self.lock();
        if !self.tiered_under(&log) || log.config.remote_log_copy_disable {
            return Ok(None);
        }
        if log.remote.copying.is_some() {
            return Ok(None);
        }
        let next = log
            .remote
            .end_offset()
            .map_or(log.log_start_offset, |e| e + 1);
        let upper = log.high_watermark.min(log.last_stable_offset());
        let active = log.local.segments.keys().next_back().copied();
        let Some((base, seg)) = log
            .local
            .segments
            .iter()
            .find(|(base, _)| log.local.segment_end(**base) > next)
        else {
            return Ok(None);
        };
        let end = log.local.segment_end(*base);
        if Some(*base) == active || end > upper {
            return Ok(None);
        }
        let (base, size, max_timestamp) = (*base, seg.size, seg.max_timestamp);
        let file = seg.file.handle()?;
        let batches = self.batches_of_segment(base, end)?;
        let aborted = log.aborted_txns.overlapping(base, end);
        let mut producers: Vec<(i64, Vec<u8>)> = log
            .producers
            .producers
            .iter()
            .map(|(pid, e)| (*pid, e.encode()))
            .collect();
        producers.sort_by_key(|(pid, _)| *pid);
        let segment = RemoteSegment {
            segment_id: Uuid::new_v4(),
            topic: self.topic.clone(),
            topic_id: self.topic_id,
            partition: self.index,
            base_offset: base,
            end_offset: end - 1,
            max_timestamp,
            size_bytes: size,
            leader_epochs: epochs_within(log.epochs.entries(), base, end - 1),
            state: RemoteSegmentState::CopyStarted,
            event_ms: now_ms,
        };
        let mut wb = WriteBatch::default();
        wb.put_cf(
            self.db.cf(CF_META)?,
            remote::segment_key(&self.key, base),
            segment.encode(),
        );
        self.db.write(wb, true)?;
        log.remote.copying = Some(segment.clone());
        Ok(Some(CopyJob {
            segment,
            file,
            offset_index: encode_batch_index(&batches),
            txn_index: encode_txn_index(&aborted),
            producer_snapshot: encode_producer_snapshot(&producers),
        }))
    }

    /// The offset index entries of the batches in the segment `[base, end)`.
    fn batches_of_segment(&self, base: i64, end: i64) -> Result<Vec<BatchEntry>, StorageError> {
        Ok(self
            .entries_in(base, end)?
            .into_iter()
            .map(|e| BatchEntry {
                base_offset: e.base_offset,
                last_offset: e.last_offset,
                position: e.position,
                size: e.size,
                max_timestamp: e.max_timestamp,
            })
            .collect())
    }

    /// Marks the copy of `segment` finished (COPY_FINISHED): fetches may read it and local
    /// retention may delete the local file. A copy the partition no longer expects (the
    /// topic was deleted meanwhile) is queued for deletion instead; returns whether the
    /// copy counts.
    pub fn finish_copy(&self, segment: &RemoteSegment, now_ms: i64) -> Result<bool, StorageError> {
        let mut log = self.lock();
        let expected = log
            .remote
            .copying
            .as_ref()
            .is_some_and(|c| c.segment_id == segment.segment_id);
        let mut wb = WriteBatch::default();
        if !expected {
            remote::queue_deletion(&self.db, &mut wb, &self.key, segment, now_ms)?;
            self.db.write(wb, true)?;
            return Ok(false);
        }
        let mut done = segment.clone();
        done.state = RemoteSegmentState::CopyFinished;
        done.event_ms = now_ms;
        wb.put_cf(
            self.db.cf(CF_META)?,
            remote::segment_key(&self.key, done.base_offset),
            done.encode(),
        );
        self.db.write(wb, true)?;
        log.remote.copying = None;
        log.remote.segments.insert(done.base_offset, done);
        Ok(true)
    }

    /// Gives up a copy that failed: its (possibly partial) objects are queued for deletion
    /// and the next attempt starts afresh under a new segment id.
    pub fn abandon_copy(&self, segment: &RemoteSegment, now_ms: i64) -> Result<(), StorageError> {
        let mut log = self.lock();
        if log
            .remote
            .copying
            .as_ref()
            .is_some_and(|c| c.segment_id == segment.segment_id)
        {
            log.remote.copying = None;
        }
        let mut wb = WriteBatch::default();
        remote::queue_deletion(&self.db, &mut wb, &self.key, segment, now_ms)?;
        self.db.write(wb, true)
    }

    /// Total retention over the whole log (`retention.ms`, `retention.bytes`), and the log
    /// start offset a DeleteRecords moved: remote segments past them are queued for
    /// deletion and the log start offset moves past them, as Kafka's remote log manager
    /// does. Returns the segments queued.
    pub fn expire_remote(&self, now_ms: i64) -> Result<Vec<RemoteSegment>, StorageError> {
        let mut log = self.lock();
        if log.remote.segments.is_empty() {
            return Ok(Vec::new());
        }
        let deletes = log.config.cleanup_policy.deletes();
        let retention_ms = log.config.retention_ms;
        let retention_bytes = log.config.retention_bytes;
        let copied_end = log.remote.end_offset().unwrap_or(-1);
        let local_only: u64 = log
            .local
            .segments
            .iter()
            .filter(|(base, _)| **base > copied_end)
            .map(|(_, s)| s.size)
            .sum();
        let mut total = log.remote.size_bytes() + local_only;
        // Tiered storage turned off (with remote.log.delete.on.disable): all of it goes
        // and the log starts at the local log start, as in Kafka (KIP-950).
        let disabled = !log.config.remote_storage_enable;
        let mut doomed = Vec::new();
        for seg in log.remote.segments.values() {
            let below_start = disabled || seg.end_offset < log.log_start_offset;
            let expired = deletes
                && retention_ms >= 0
                && seg.max_timestamp >= 0
                && seg.max_timestamp < now_ms - retention_ms;
            let oversize = deletes
                && retention_bytes >= 0
                && total.saturating_sub(seg.size_bytes) >= retention_bytes as u64;
            if !(below_start || expired || oversize) {
                break;
            }
            total = total.saturating_sub(seg.size_bytes);
            doomed.push(seg.clone());
        }
        let Some(last) = doomed.last() else {
            return Ok(Vec::new());
        };
        let new_start = if disabled {
            log.local_log_start_offset()
        } else {
            log.log_start_offset.max(last.end_offset + 1)
        };
        let mut wb = WriteBatch::default();
        for seg in &doomed {
            remote::queue_deletion(&self.db, &mut wb, &self.key, seg, now_ms)?;
        }
        let meta = self.db.cf(CF_META)?;
        wb.put_cf(meta, log_start_key(&self.key), new_start.to_be_bytes());
        let mut epochs = log.epochs.clone();
        if epochs.truncate_from_start(new_start) {
            wb.put_cf(meta, leader_epochs_key(&self.key), epochs.encode());
        }
        self.db.write(wb, true)?;
        for seg in &doomed {
            log.remote.segments.remove(&seg.base_offset);
        }
        log.epochs = epochs;
        if new_start > log.log_start_offset {
            log.log_start_offset = new_start;
            tracing::info!(topic = %self.topic, partition = self.index, log_start_offset = new_start,
                segments = doomed.len(), "remote segments past retention queued for deletion");
        }
        self.publish(&log);
        Ok(doomed)
    }

    /// Where a read of `offset` below the local log start goes: the remote segment holding
    /// it, if any.
    pub(super) fn remote_read(
        &self,
        log: &LogState,
        offset: i64,
        upper: i64,
    ) -> Option<RemoteRead> {
        let segment = log.remote.containing(offset)?.clone();
        Some(RemoteRead {
            offset,
            segment,
            upper,
            high_watermark: log.high_watermark,
            log_start_offset: log.log_start_offset,
            last_stable_offset: log.last_stable_offset(),
        })
    }

    /// The upload in progress, if any.
    pub fn remote_copying(&self) -> Option<RemoteSegment> {
        self.lock().remote.copying.clone()
    }

    /// In a cluster: takes the partition's copied remote segments as the cluster metadata
    /// has them (COPY_FINISHED), so that a new leader reads them and a follower's local
    /// retention knows what is copied. The records in the data directory follow.
    pub fn sync_remote(&self, copied: Vec<RemoteSegment>) -> Result<(), StorageError> {
        let mut log = self.lock();
        let next: BTreeMap<i64, RemoteSegment> = copied
            .into_iter()
            .filter(|s| s.topic_id == self.topic_id && s.partition == self.index)
            .map(|s| (s.base_offset, s))
            .collect();
        if next == log.remote.segments {
            return Ok(());
        }
        let cf = self.db.cf(CF_META)?;
        let mut wb = WriteBatch::default();
        for base in log.remote.segments.keys() {
            if !next.contains_key(base) {
                wb.delete_cf(cf, remote::segment_key(&self.key, *base));
            }
        }
        for (base, seg) in &next {
            if log.remote.segments.get(base) != Some(seg) {
                wb.put_cf(cf, remote::segment_key(&self.key, *base), seg.encode());
            }
        }
        self.db.write(wb, true)?;
        log.remote.segments = next;
        self.publish(&log);
        Ok(())
    }

    /// Queues every remote segment of the partition for deletion (the topic is going).
    pub(super) fn queue_all_remote(
        &self,
        log: &mut LogState,
        wb: &mut WriteBatch,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let all: Vec<RemoteSegment> = log
            .remote
            .segments
            .values()
            .cloned()
            .chain(log.remote.copying.take())
            .collect();
        for seg in &all {
            remote::queue_deletion(&self.db, wb, &self.key, seg, now_ms)?;
        }
        log.remote.segments.clear();
        Ok(())
    }
}

/// The leader epochs that apply to offsets `[base, end]`: the one in force at `base` and
/// those starting after it.
fn epochs_within(entries: &[(i32, i64)], base: i64, end: i64) -> Vec<(i32, i64)> {
    let first = entries.iter().rposition(|(_, start)| *start <= base);
    entries
        .iter()
        .enumerate()
        .filter(|(i, (_, start))| Some(*i) == first || (*start > base && *start <= end))
        .map(|(_, e)| *e)
        .collect()
}

/// Loads a partition's remote segments at start-up: copies that finished are readable;
/// a copy a crash interrupted is queued for deletion (its objects may be partial).
pub(super) fn load_remote(
    db: &crate::db::Db,
    key: &crate::db::PartitionKey,
    wb: &mut WriteBatch,
    now_ms: i64,
) -> Result<RemoteLog, StorageError> {
    let mut remote = RemoteLog::default();
    for seg in remote::partition_segments(db, key)? {
        match seg.state {
            RemoteSegmentState::CopyFinished => {
                remote.segments.insert(seg.base_offset, seg);
            }
            _ => {
                tracing::info!(topic = %seg.topic, partition = seg.partition, base_offset = seg.base_offset,
                    segment_id = %seg.segment_id, "an interrupted copy to the remote tier is queued for deletion");
                remote::queue_deletion(db, wb, key, &seg, now_ms)?;
            }
        }
    }
    Ok(remote)
}

#[cfg(test)]
mod tests {
    use super::epochs_within;

    #[test]
    fn epochs_within_keeps_the_epoch_in_force_and_later_starts() {
        let e = [(0, 0), (1, 50), (3, 120), (4, 300)];
        assert_eq!(epochs_within(&e, 100, 199), vec![(1, 50), (3, 120)]);
        assert_eq!(epochs_within(&e, 120, 299), vec![(3, 120)]);
        assert_eq!(epochs_within(&e, 0, 10), vec![(0, 0)]);
        assert_eq!(epochs_within(&[], 0, 10), vec![]);
    }
}
