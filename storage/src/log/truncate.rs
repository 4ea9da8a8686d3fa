//! Truncation of a replica's log: the divergent tail after a leader change (`truncate_to`)
//! or everything when a follower fell behind the leader's log start
//! (`truncate_fully_and_start_at`).
//!
//! Durability: every index change (offsets, times, producers, aborted transactions, leader
//! epochs, high watermark) is one synced RocksDB write that also records the file changes
//! still to do; the files are cut afterwards and the record removed. A crash in between
//! leaves the record, and recovery finishes the file changes before it reads the log, so
//! it converges on the truncated log.
//!
//! Producer state: only producers with a batch or marker in the removed tail change; every
//! other producer's entry is a function of its own batches, all retained, so it stays. The
//! changed ones are rebuilt by replaying their retained batches in offset order from the
//! first indexed batch, exactly as appends built them. Only batch headers (and the few
//! bytes of markers) are read. A producer whose earlier batches retention already deleted
//! is rebuilt from what remains — what a replica given only the retained log would have
//! (Kafka, without a producer snapshot, does the same).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rocksdb::{Direction, IteratorMode, WriteBatch};
use sluice_protocol::batch::{self, BatchHeader, HEADER_SIZE};

use super::epoch_cache::EpochCache;
use super::log_state::LogState;
use super::meta::{
    cleaner_checkpoint_key, high_watermark_key, leader_epochs_key, log_start_key, truncation_key,
};
use super::partition::Partition;
use super::segment::{parse_segment_file_name, read_at, segment_file_name, Segment};
use super::segment_files::{remove_if_present, sync_dir};
use crate::db::{
    key_suffix_u64, timestamp_from_key, Db, IndexEntry, PartitionKey, CF_ABORTED_TXNS, CF_META,
    CF_OFFSETS, CF_PRODUCERS, CF_TIMES,
};
use crate::producers::{ProducerEntry, ProducerStates};
use crate::StorageError;

/// What a follower restarting its local log inside a tiered partition keeps.
struct TieredStart {
    log_start_offset: i64,
    producers: Vec<(i64, Vec<u8>)>,
}

/// Where a test stops a truncation, as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncationCrashPoint {
    /// The index is truncated; the segment files are not yet.
    AfterIndex,
    /// The segment files are cut too; the record of the pending file changes remains.
    AfterFiles,
}

impl TruncationCrashPoint {
    fn name(self) -> &'static str {
        match self {
            TruncationCrashPoint::AfterIndex => "truncation-after-index",
            TruncationCrashPoint::AfterFiles => "truncation-after-files",
        }
    }
}

/// The file changes of a truncation: segments after `segment` go (and before it too when
/// `full`), `segment` is cut to `position` (created empty if missing when `full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileCut {
    segment: i64,
    /// `None`: the segment keeps its length.
    position: Option<u64>,
    full: bool,
}

impl FileCut {
    fn encode(&self) -> [u8; 17] {
        let mut v = [0u8; 17];
        v[..8].copy_from_slice(&self.segment.to_be_bytes());
        v[8..16].copy_from_slice(&self.position.unwrap_or(u64::MAX).to_be_bytes());
        v[16] = u8::from(self.full);
        v
    }

    fn decode(v: &[u8]) -> Result<Self, StorageError> {
        let bad = || StorageError::Corrupt("pending truncation record".into());
        if v.len() != 17 {
            return Err(bad());
        }
        let segment = i64::from_be_bytes(v[..8].try_into().map_err(|_| bad())?);
        let position = u64::from_be_bytes(v[8..16].try_into().map_err(|_| bad())?);
        Ok(FileCut {
            segment,
            position: (position != u64::MAX).then_some(position),
            full: v[16] != 0,
        })
    }

    /// Applies the cut to the files of `dir`; doing it twice changes nothing.
    fn apply(&self, dir: &Path) -> Result<(), StorageError> {
        for entry in std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
            let entry = entry.map_err(|e| StorageError::io(dir, e))?;
            let Some(base) = entry.file_name().to_str().and_then(parse_segment_file_name) else {
                continue;
            };
            if base > self.segment || (self.full && base < self.segment) {
                remove_if_present(&entry.path())?;
            }
        }
        let path = dir.join(segment_file_name(self.segment));
        if let Some(position) = self.position {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(self.full)
                .truncate(false)
                .open(&path);
            match file {
                Ok(f) => {
                    if f.metadata().map_err(|e| StorageError::io(&path, e))?.len() > position {
                        f.set_len(position)
                            .map_err(|e| StorageError::io(&path, e))?;
                    }
                    f.sync_all().map_err(|e| StorageError::io(&path, e))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(&path, e)),
            }
        }
        sync_dir(dir)
    }
}

/// Finishes the file changes of a truncation a crash interrupted (before recovery reads the
/// segments, so that it does not index the removed tail again).
pub(super) fn finish_interrupted_truncation(
    db: &Db,
    key: PartitionKey,
    dir: &Path,
) -> Result<(), StorageError> {
    let meta = db.cf(CF_META)?;
    let Some(v) = db.db.get_cf(meta, truncation_key(&key))? else {
        return Ok(());
    };
    let cut = FileCut::decode(&v)?;
    tracing::warn!(dir = %dir.display(), segment = cut.segment, "finishing a truncation interrupted by a crash");
    cut.apply(dir)?;
    let mut wb = WriteBatch::default();
    wb.delete_cf(meta, truncation_key(&key));
    db.write(wb, true)
}

impl Partition {
    /// Removes every batch at or after `offset` (a divergent tail after a leader change);
    /// a batch holding `offset` goes whole, so the log end offset becomes its base offset.
    /// Afterwards the partition is what it would be had it only ever received the batches
    /// below: segments, offset and time index, producer state, last stable offset, aborted
    /// index, leader-epoch cache (entries at or after the new log end offset go), high
    /// watermark (clamped to it). Survives a crash at any point (see the module comment).
    /// `offset` >= LEO is a no-op; `offset` < log start offset is an error.
    pub fn truncate_to(&self, offset: i64) -> Result<(), StorageError> {
        self.on_disk(|| self.truncate_to_inner(offset, None))
    }

    /// [`Partition::truncate_to`] stopped at `crash` with [`StorageError::CrashPoint`]: a
    /// test hook for crash recovery. The partition must be reopened afterwards.
    #[doc(hidden)]
    pub fn truncate_to_crashing(
        &self,
        offset: i64,
        crash: TruncationCrashPoint,
    ) -> Result<(), StorageError> {
        self.truncate_to_inner(offset, Some(crash))
    }

    fn truncate_to_inner(
        &self,
        offset: i64,
        crash: Option<TruncationCrashPoint>,
    ) -> Result<(), StorageError> {
        let _cleaning = self.cleaner_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut log = self.lock();
        if offset >= log.log_end_offset() {
            return Ok(());
        }
        if offset < log.log_start_offset {
            return Err(StorageError::BelowLogStart {
                offset,
                log_start_offset: log.log_start_offset,
            });
        }
        let tail = self.entries_from(offset)?;
        let new_leo = tail.first().map_or(offset, |e| e.base_offset.min(offset));
        if new_leo < log.log_start_offset {
            // The batch holding the log start goes: nothing below it is left to keep.
            drop(log);
            drop(_cleaning);
            return self.truncate_fully_and_start_at(offset);
        }
        // The segment that ends up active: the last one starting below the new end (one
        // starting at it would be left empty, where a replica that never had the tail
        // would still append to the segment before), else the first.
        let Some((&active_base, _)) = log
            .local
            .segments
            .range(..new_leo)
            .next_back()
            .or_else(|| log.local.segments.range(..=new_leo).next_back())
        else {
            return Err(StorageError::Corrupt(format!(
                "no segment holds offset {new_leo}"
            )));
        };
        let cut = FileCut {
            segment: active_base,
            position: tail
                .first()
                .filter(|e| e.segment == active_base)
                .map(|e| e.position),
            full: false,
        };

        let mut wb = WriteBatch::default();
        let rebuilt = self.rebuild_producers(&log, &tail, offset, &mut wb)?;
        let offsets = self.db.cf(CF_OFFSETS)?;
        wb.delete_range_cf(
            offsets,
            self.key.with_i64(offset),
            self.key.with_u64(u64::MAX),
        );
        wb.delete_cf(offsets, self.key.with_u64(u64::MAX));
        let aborted = self.db.cf(CF_ABORTED_TXNS)?;
        wb.delete_range_cf(
            aborted,
            self.key.with_i64(new_leo),
            self.key.with_u64(u64::MAX),
        );
        wb.delete_cf(aborted, self.key.with_u64(u64::MAX));
        let max_timestamp = self.truncate_time_index(new_leo, &mut wb)?;
        let meta = self.db.cf(CF_META)?;
        let mut epochs = log.epochs.clone();
        if epochs.truncate_from_end(new_leo) {
            wb.put_cf(meta, leader_epochs_key(&self.key), epochs.encode());
        }
        let high_watermark = log.high_watermark.min(new_leo);
        if log.checkpointed_high_watermark > new_leo {
            wb.put_cf(
                meta,
                high_watermark_key(&self.key),
                high_watermark.to_be_bytes(),
            );
        }
        if self.cleaner_checkpoint_beyond(new_leo)? {
            // The cleaner's progress named offsets that are gone: it starts over.
            wb.delete_cf(meta, cleaner_checkpoint_key(&self.key));
        }
        wb.put_cf(meta, truncation_key(&self.key), cut.encode());
        self.db.write(wb, true)?;

        // The index is the truncated log now; memory follows it, then the files.
        let segment_max_ts = self.segment_max_timestamp(active_base, new_leo)?;
        for (pid, entry) in rebuilt {
            match entry {
                Some(e) => log.producers.producers.insert(pid, e),
                None => log.producers.producers.remove(&pid),
            };
        }
        log.ongoing_txns = log
            .producers
            .producers
            .iter()
            .filter_map(|(pid, e)| e.txn_first_offset.map(|first| (first, *pid)))
            .collect::<BTreeMap<_, _>>();
        log.aborted_txns.truncate_from(new_leo);
        log.max_timestamp = max_timestamp;
        log.epochs = epochs;
        if log.checkpointed_high_watermark > new_leo {
            log.checkpointed_high_watermark = high_watermark;
        }
        log.truncations += 1;
        self.flushed_offset
            .fetch_min(new_leo, std::sync::atomic::Ordering::AcqRel);
        if let Some(point @ TruncationCrashPoint::AfterIndex) = crash {
            return Err(StorageError::CrashPoint(point.name()));
        }
        let removed: Vec<Segment> = {
            let later: Vec<i64> = log
                .local
                .segments
                .range(active_base + 1..)
                .map(|(b, _)| *b)
                .collect();
            later
                .iter()
                .filter_map(|b| log.local.segments.remove(b))
                .collect()
        };
        for seg in &removed {
            tracing::info!(topic = %self.topic, partition = self.index, segment = seg.base_offset, "deleting segment past the truncation offset");
        }
        let active = log.local.active()?;
        if let Some(position) = cut.position {
            active.truncate(position)?;
        }
        active.max_timestamp = segment_max_ts;
        cut.apply(&self.dir)?;
        log.set_log_end_offset(new_leo);
        self.publish(&log);
        if let Some(point @ TruncationCrashPoint::AfterFiles) = crash {
            return Err(StorageError::CrashPoint(point.name()));
        }
        let mut wb = WriteBatch::default();
        wb.delete_cf(meta, truncation_key(&self.key));
        self.db.write(wb, true)?;
        tracing::info!(topic = %self.topic, partition = self.index, offset, log_end_offset = new_leo, "truncated the log");
        Ok(())
    }

    /// Deletes everything and restarts the log at `offset` (a follower fell behind the
    /// leader's log start): no segments but an empty one at `offset`, no producers, no
    /// aborted transactions, no leader epochs; log start, log end and high watermark
    /// `offset`.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), StorageError> {
        self.on_disk(|| self.truncate_fully_on_disk(offset, None))
    }

    /// A follower of a tiered partition behind the leader's local log start (Kafka's
    /// OFFSET_MOVED_TO_TIERED_STORAGE): deletes everything and restarts the local log at
    /// the leader's `local_log_start_offset`, keeping the leader's `log_start_offset` below
    /// it, since the remote tier holds the offsets between. The leader epochs come from the
    /// remote segments (as Kafka rebuilds them from the remote leader-epoch checkpoint) and
    /// the producers from the remote producer snapshot (`producer_snapshot`, as uploaded).
    pub fn truncate_fully_and_start_at_tiered(
        &self,
        local_log_start_offset: i64,
        log_start_offset: i64,
        producer_snapshot: Option<&[u8]>,
    ) -> Result<(), StorageError> {
        let producers = match producer_snapshot {
            Some(bytes) => crate::remote::decode_producer_snapshot(bytes)?,
            None => Vec::new(),
        };
        let start = TieredStart {
            log_start_offset: log_start_offset.min(local_log_start_offset),
            producers,
        };
        self.on_disk(|| self.truncate_fully_on_disk(local_log_start_offset, Some(&start)))
    }

    fn truncate_fully_on_disk(
        &self,
        offset: i64,
        tiered: Option<&TieredStart>,
    ) -> Result<(), StorageError> {
        let _cleaning = self.cleaner_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut log = self.lock();
        if offset < 0 {
            return Err(StorageError::BelowLogStart {
                offset,
                log_start_offset: log.log_start_offset,
            });
        }
        let cut = FileCut {
            segment: offset,
            position: Some(0),
            full: true,
        };
        let mut wb = WriteBatch::default();
        for cf in [CF_OFFSETS, CF_TIMES, CF_PRODUCERS, CF_ABORTED_TXNS] {
            self.db.delete_partition_keys(&mut wb, cf, &self.key)?;
        }
        let meta = self.db.cf(CF_META)?;
        let log_start = tiered.map_or(offset, |t| t.log_start_offset);
        let mut epochs = EpochCache::default();
        let mut producers = ProducerStates::default();
        if let Some(t) = tiered {
            for seg in log.remote.segments.values() {
                if seg.base_offset < offset {
                    for (epoch, start) in &seg.leader_epochs {
                        epochs.assign(*epoch, (*start).max(log_start));
                    }
                }
            }
            let cf = self.db.cf(CF_PRODUCERS)?;
            for (pid, bytes) in &t.producers {
                if let Some(entry) = ProducerEntry::decode(bytes) {
                    wb.put_cf(cf, self.key.with_i64(*pid), bytes);
                    producers.producers.insert(*pid, entry);
                }
            }
        }
        wb.put_cf(meta, log_start_key(&self.key), log_start.to_be_bytes());
        if epochs.entries().is_empty() {
            wb.delete_cf(meta, leader_epochs_key(&self.key));
        } else {
            wb.put_cf(meta, leader_epochs_key(&self.key), epochs.encode());
        }
        wb.delete_cf(meta, cleaner_checkpoint_key(&self.key));
        if log.replicated {
            wb.put_cf(meta, high_watermark_key(&self.key), offset.to_be_bytes());
        } else {
            wb.delete_cf(meta, high_watermark_key(&self.key));
        }
        wb.put_cf(meta, truncation_key(&self.key), cut.encode());
        self.db.write(wb, true)?;

        log.producers = producers;
        log.ongoing_txns.clear();
        log.aborted_txns.truncate_from(i64::MIN);
        log.max_timestamp = -1;
        log.epochs = epochs;
        log.log_start_offset = log_start;
        log.checkpointed_high_watermark = if log.replicated { offset } else { -1 };
        log.truncations += 1;
        let now = crate::now_ms();
        let old = std::mem::take(&mut log.local.segments);
        drop(old);
        cut.apply(&self.dir)?;
        let segment = Segment::create(&self.files, &self.dir, offset, now)?;
        log.local.segments.insert(offset, segment);
        log.local.log_end_offset = offset;
        log.high_watermark = offset;
        self.flushed_offset
            .store(offset, std::sync::atomic::Ordering::Release);
        self.publish(&log);
        let mut wb = WriteBatch::default();
        wb.delete_cf(meta, truncation_key(&self.key));
        self.db.write(wb, true)?;
        tracing::info!(topic = %self.topic, partition = self.index, offset, "truncated the whole log");
        Ok(())
    }

    /// Index entries of the batches whose last offset is at or after `offset`, in order.
    fn entries_from(&self, offset: i64) -> Result<Vec<IndexEntry>, StorageError> {
        self.entries_in(offset, i64::MAX)
    }

    /// Index entries whose last offset is in `[from, to)`, in order.
    pub(super) fn entries_in(&self, from: i64, to: i64) -> Result<Vec<IndexEntry>, StorageError> {
        let cf = self.db.cf(CF_OFFSETS)?;
        let start = self.key.with_i64(from.max(0));
        let mut out = Vec::new();
        for item in self
            .db
            .db
            .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(self.key.as_bytes()) {
                break;
            }
            let e = IndexEntry::decode(&k, &v)?;
            if e.last_offset >= to {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }

    /// The header of the indexed batch `e`, and the whole batch when it is a control batch.
    fn batch_at(
        &self,
        log: &LogState,
        e: &IndexEntry,
    ) -> Result<(BatchHeader, Option<Vec<u8>>), StorageError> {
        let seg =
            log.local.segments.get(&e.segment).ok_or_else(|| {
                StorageError::Corrupt(format!("segment {} is missing", e.segment))
            })?;
        let file = seg.file.handle()?;
        let head = read_at(&file, seg.path(), e.position, HEADER_SIZE)?;
        let h = batch::read_header(&head)
            .map_err(|err| StorageError::Corrupt(format!("{}: {err}", seg.path().display())))?;
        let body = if h.is_control() {
            Some(read_at(&file, seg.path(), e.position, e.size as usize)?)
        } else {
            None
        };
        Ok((h, body))
    }

    /// The producers with batches in `tail`, rebuilt from their batches below `offset`
    /// (`None`: none left); their stored entries are updated in `wb`.
    #[allow(clippy::type_complexity)]
    fn rebuild_producers(
        &self,
        log: &LogState,
        tail: &[IndexEntry],
        offset: i64,
        wb: &mut WriteBatch,
    ) -> Result<Vec<(i64, Option<crate::producers::ProducerEntry>)>, StorageError> {
        let mut affected = HashSet::new();
        for e in tail {
            let (h, _) = self.batch_at(log, e)?;
            if h.has_producer_id() {
                affected.insert(h.producer_id);
            }
        }
        if affected.is_empty() {
            return Ok(Vec::new());
        }
        let mut states = ProducerStates::default();
        for e in self.entries_in(i64::MIN, offset)? {
            let (h, body) = self.batch_at(log, &e)?;
            if !h.has_producer_id() || !affected.contains(&h.producer_id) {
                continue;
            }
            match body {
                Some(body) => {
                    if let Some((control, coordinator_epoch)) = batch::control_marker(&body) {
                        states.record_marker(&h, control, coordinator_epoch);
                    }
                }
                None => {
                    states.record(&h);
                }
            }
        }
        let cf = self.db.cf(CF_PRODUCERS)?;
        let mut out = Vec::with_capacity(affected.len());
        for pid in affected {
            let entry = states.producers.remove(&pid);
            match &entry {
                Some(e) => wb.put_cf(cf, self.key.with_i64(pid), e.encode()),
                None => wb.delete_cf(cf, self.key.with_i64(pid)),
            }
            out.push((pid, entry));
        }
        Ok(out)
    }

    /// Deletes the time index entries of batches at or after `new_leo` (the newest ones:
    /// entries grow in both timestamp and offset); returns the largest timestamp left.
    fn truncate_time_index(&self, new_leo: i64, wb: &mut WriteBatch) -> Result<i64, StorageError> {
        let cf = self.db.cf(CF_TIMES)?;
        let end = self.key.with_u64(u64::MAX);
        for item in self
            .db
            .db
            .iterator_cf(cf, IteratorMode::From(&end, Direction::Reverse))
        {
            let (k, v) = item?;
            if !k.starts_with(self.key.as_bytes()) {
                break;
            }
            let base = i64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("time index".into()))?,
            );
            if base < new_leo {
                return Ok(key_suffix_u64(&k).map(timestamp_from_key).unwrap_or(-1));
            }
            wb.delete_cf(cf, &k);
        }
        Ok(-1)
    }

    /// The largest timestamp of the batches of segment `base` below `end`.
    fn segment_max_timestamp(&self, base: i64, end: i64) -> Result<i64, StorageError> {
        Ok(self
            .entries_in(base, end)?
            .iter()
            .filter(|e| e.segment == base)
            .map(|e| e.max_timestamp)
            .max()
            .unwrap_or(-1))
    }

    /// Whether the cleaner's checkpoint names an offset beyond `leo`.
    fn cleaner_checkpoint_beyond(&self, leo: i64) -> Result<bool, StorageError> {
        let meta = self.db.cf(CF_META)?;
        Ok(self
            .db
            .db
            .get_cf(meta, cleaner_checkpoint_key(&self.key))?
            .and_then(|v| v.get(..8).and_then(|b| b.try_into().ok()))
            .is_some_and(|b: [u8; 8]| i64::from_be_bytes(b) > leo))
    }
}
