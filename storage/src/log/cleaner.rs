//! Log compaction (`cleanup.policy=compact`): the cleaner keeps the latest record of
//! every key.
//!
//! One pass over a partition:
//! 1. Under the log lock, snapshot the sealed segments below the first uncleanable offset
//!    (the active segment, the last stable offset and `min.compaction.lag.ms` bound it).
//! 2. Map each key of the dirty section (from the cleaner checkpoint on) to its latest
//!    offset, within `log.cleaner.dedupe.buffer.size`.
//! 3. Without the lock, rewrite the segments from the log start to the end of the mapped
//!    section, in groups that fit `segment.bytes`, into `.cleaned` files.
//! 4. Swap each group in under the lock: `.cleaned` becomes `.swap` (the commit point),
//!    the index entries are replaced, the old files go, `.swap` becomes `.log`. Start-up
//!    recovery finishes a swap a crash interrupted and deletes any `.cleaned` file.
//!
//! Tombstones get a delete horizon (KIP-534) the first time they are cleaned and are
//! dropped by the first clean after it. Transaction markers are kept; records of aborted
//! transactions are dropped; records of open transactions are never reached (the clean
//! stops at the last stable offset).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use rocksdb::WriteBatch;
use sluice_protocol::batch;
use sluice_protocol::records;

use super::compact_batch::{aborted_by_producer, is_aborted, BatchCleaner};
use super::meta::cleaner_checkpoint_key;
use super::open_files::SegmentFile;
use super::partition::Partition;
use super::segment::{segment_file_name, Segment};
use super::segment_files::{
    cleaned_file_name, remove_if_present, swap_file_name, sync_dir, SegmentBatches, READ_CHUNK,
};
use crate::db::{Db, IndexEntry, PartitionKey, CF_META, CF_OFFSETS};
use crate::StorageError;

/// Bytes the key map is charged per entry on top of the key: the offset, the hash
/// table's slot and the allocation.
const MAP_ENTRY_OVERHEAD: u64 = 48;

/// A point inside a cleaning pass where a test makes the pass stop as a crash would,
/// leaving the files and the index exactly as they are at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanerCrashPoint {
    /// The cleaned copy of a group is written; the swap has not begun.
    BeforeSwap,
    /// The copy is renamed `.swap`; the index still describes the old segments.
    AfterSwapFile,
    /// The index describes the copy; the old segment files are still there.
    AfterIndex,
}

impl CleanerCrashPoint {
    /// The name `SLUICE_CRASH_POINT` gives this point.
    pub fn name(self) -> &'static str {
        match self {
            CleanerCrashPoint::BeforeSwap => "cleaner-before-swap",
            CleanerCrashPoint::AfterSwapFile => "cleaner-after-swap-file",
            CleanerCrashPoint::AfterIndex => "cleaner-after-index",
        }
    }

    /// Parses [`CleanerCrashPoint::name`].
    pub fn parse(name: &str) -> Option<Self> {
        [
            CleanerCrashPoint::BeforeSwap,
            CleanerCrashPoint::AfterSwapFile,
            CleanerCrashPoint::AfterIndex,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }
}

/// How a cleaning pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanOptions {
    /// `log.cleaner.dedupe.buffer.size`: the key map's memory budget.
    pub dedupe_buffer_size: u64,
    /// A test hook: stop at this point with [`StorageError::CrashPoint`].
    pub crash_point: Option<CleanerCrashPoint>,
}

fn crash_here(opts: &CleanOptions, here: CleanerCrashPoint) -> Result<(), StorageError> {
    if opts.crash_point == Some(here) {
        return Err(StorageError::CrashPoint(here.name()));
    }
    Ok(())
}

/// What one cleaning pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanStats {
    /// Segments rewritten.
    pub segments: usize,
    /// Their bytes before the pass.
    pub bytes_before: u64,
    /// Their bytes after it.
    pub bytes_after: u64,
    /// Records dropped (older values, expired tombstones, aborted or keyless records).
    pub records_removed: u64,
    /// The new cleaner checkpoint: everything below it has been cleaned.
    pub clean_end: i64,
}

/// How dirty a compacted partition is, as the cleaner chooses what to clean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanability {
    /// Bytes of cleanable segments not yet cleaned over all cleanable bytes.
    pub dirty_ratio: f64,
    /// True when the partition should be cleaned now: the ratio exceeds
    /// `min.cleanable.dirty.ratio`, a record waited `max.compaction.lag.ms`, or a tombstone's
    /// delete horizon passed.
    pub due: bool,
}

/// A sealed segment as the cleaner saw it.
#[derive(Clone)]
struct SegmentView {
    base: i64,
    /// Base of the next segment: every offset of this one is below it.
    end: i64,
    file: Arc<File>,
    /// The segment's file as the log holds it: a swap checks the segment is unchanged.
    source: Weak<SegmentFile>,
    path: PathBuf,
    size: u64,
    created_ms: i64,
}

impl SegmentView {
    /// The segment's batches in order.
    fn batches(&self) -> SegmentBatches<'_> {
        SegmentBatches::new(&self.file, &self.path, self.size)
    }
}

/// The state a pass works from, taken under the log lock.
struct Plan {
    /// Sealed segments from the log start up to the first uncleanable offset.
    cleanable: Vec<SegmentView>,
    first_dirty: i64,
    earliest_horizon: Option<i64>,
    segment_bytes: u64,
    delete_retention_ms: i64,
    min_ratio: f64,
    max_lag_ms: i64,
    /// Aborted transactions by producer: (first offset, marker offset) ranges.
    aborted: HashMap<i64, Vec<(i64, i64)>>,
}

/// The cleaner's durable progress: the first dirty offset and the earliest delete horizon
/// of the tombstones it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checkpoint {
    first_dirty: i64,
    earliest_horizon: Option<i64>,
}

fn read_checkpoint(db: &Db, key: &PartitionKey) -> Result<Option<Checkpoint>, StorageError> {
    let Some(v) = db.db.get_cf(db.cf(CF_META)?, cleaner_checkpoint_key(key))? else {
        return Ok(None);
    };
    let bad = || StorageError::Corrupt("cleaner checkpoint".into());
    let first_dirty =
        i64::from_be_bytes(v.get(..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    let horizon = i64::from_be_bytes(
        v.get(8..16)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    Ok(Some(Checkpoint {
        first_dirty,
        earliest_horizon: (horizon >= 0).then_some(horizon),
    }))
}

impl Partition {
    /// How dirty the partition is; `None` when it is not compacted or has nothing the
    /// cleaner may touch yet.
    pub fn cleanability(&self, now_ms: i64) -> Result<Option<Cleanability>, StorageError> {
        let Some(plan) = self.plan(now_ms)? else {
            return Ok(None);
        };
        let (clean, dirty) = plan.bytes();
        if dirty + clean == 0 {
            return Ok(None);
        }
        let dirty_ratio = dirty as f64 / (dirty + clean) as f64;
        let by_ratio = dirty > 0 && dirty_ratio > plan.min_ratio;
        let by_lag = dirty > 0 && self.first_dirty_batch_older_than(&plan, now_ms)?;
        let by_horizon = plan.earliest_horizon.is_some_and(|h| now_ms >= h);
        Ok(Some(Cleanability {
            dirty_ratio,
            due: by_ratio || by_lag || by_horizon,
        }))
    }

    /// Runs one cleaning pass if the partition is compacted and has something to clean.
    pub fn clean(
        &self,
        now_ms: i64,
        opts: &CleanOptions,
    ) -> Result<Option<CleanStats>, StorageError> {
        // One pass at a time per partition; a second caller has nothing to add.
        let Ok(_pass) = self.cleaner_lock.try_lock() else {
            return Ok(None);
        };
        if self.cleaner_stopped.load(Ordering::Acquire) {
            return Ok(None);
        }
        let Some(plan) = self.plan(now_ms)? else {
            return Ok(None);
        };
        let (map, map_end) = self.build_key_map(&plan, opts.dedupe_buffer_size)?;
        let clean_end = map_end.max(plan.first_dirty);
        let segments: Vec<SegmentView> = plan
            .cleanable
            .iter()
            .filter(|s| s.end <= clean_end)
            .cloned()
            .collect();
        if segments.is_empty() {
            return Ok(None);
        }
        let ctx = BatchCleaner {
            map: &map,
            aborted: &plan.aborted,
            now_ms,
            delete_retention_ms: plan.delete_retention_ms,
        };
        let mut stats = CleanStats {
            segments: 0,
            bytes_before: 0,
            bytes_after: 0,
            records_removed: 0,
            clean_end,
        };
        let mut earliest_horizon: Option<i64> = None;
        // Groups are cut by what the cleaned copy holds so far, so that a clean of many
        // mostly-obsolete segments ends as few full ones.
        let mut next = 0;
        while next < segments.len() {
            let start = next;
            let mut cleaned = CleanedGroup::create(&self.dir, segments[start].base)?;
            while next < segments.len() {
                let seg = &segments[next];
                if next > start && cleaned.size + seg.size > plan.segment_bytes {
                    break;
                }
                cleaned.add_segment(seg, &ctx)?;
                next += 1;
            }
            let group = &segments[start..next];
            let cleaned = cleaned.finish()?;
            stats.records_removed += cleaned.records_removed;
            if let Some(h) = cleaned.earliest_horizon {
                earliest_horizon = Some(earliest_horizon.map_or(h, |e: i64| e.min(h)));
            }
            let before: u64 = group.iter().map(|s| s.size).sum();
            let after = cleaned.size;
            crash_here(opts, CleanerCrashPoint::BeforeSwap)?;
            if self.swap_in(group, cleaned, opts)? {
                stats.segments += group.len();
                stats.bytes_before += before;
                stats.bytes_after += after;
            } else {
                // Retention or DeleteRecords took part of the group meanwhile; the next
                // pass starts over from what is left.
                return Ok(Some(stats));
            }
        }
        let mut wb = WriteBatch::default();
        let mut v = clean_end.to_be_bytes().to_vec();
        v.extend_from_slice(&earliest_horizon.unwrap_or(-1).to_be_bytes());
        wb.put_cf(self.db.cf(CF_META)?, cleaner_checkpoint_key(&self.key), v);
        self.db.write(wb, false)?;
        tracing::info!(
            topic = %self.topic,
            partition = self.index,
            segments = stats.segments,
            bytes_before = stats.bytes_before,
            bytes_after = stats.bytes_after,
            records_removed = stats.records_removed,
            clean_end,
            "cleaned log"
        );
        Ok(Some(stats))
    }

    fn plan(&self, now_ms: i64) -> Result<Option<Plan>, StorageError> {
        let checkpoint = read_checkpoint(&self.db, &self.key)?;
        let log = self.lock();
        let cfg = &log.config;
        if !cfg.cleanup_policy.compacts() {
            return Ok(None);
        }
        let lso = log.last_stable_offset();
        let lag_limit = now_ms.saturating_sub(cfg.min_compaction_lag_ms);
        let bases: Vec<i64> = log.local.segments.keys().copied().collect();
        let mut cleanable = Vec::new();
        for w in bases.windows(2) {
            let (base, end) = (w[0], w[1]);
            let Some(seg) = log.local.segments.get(&base) else {
                break;
            };
            if end > lso || (cfg.min_compaction_lag_ms > 0 && seg.max_timestamp > lag_limit) {
                break;
            }
            cleanable.push(SegmentView {
                base,
                end,
                file: seg.file.handle()?,
                source: Arc::downgrade(&seg.file),
                path: seg.path().to_path_buf(),
                size: seg.size,
                created_ms: seg.created_ms,
            });
        }
        let log_start_offset = log.log_start_offset;
        let clean_end = cleanable.last().map_or(log_start_offset, |s| s.end);
        let plan = Plan {
            first_dirty: checkpoint
                .map_or(log_start_offset, |c| c.first_dirty.max(log_start_offset)),
            earliest_horizon: checkpoint.and_then(|c| c.earliest_horizon),
            segment_bytes: cfg.segment_bytes,
            delete_retention_ms: cfg.delete_retention_ms,
            min_ratio: cfg.min_cleanable_dirty_ratio,
            max_lag_ms: cfg.max_compaction_lag_ms,
            aborted: aborted_by_producer(
                &log.aborted_txns.overlapping(log_start_offset, clean_end),
            ),
            cleanable,
        };
        Ok((!plan.cleanable.is_empty()).then_some(plan))
    }

    /// True when the first dirty batch has waited longer than `max.compaction.lag.ms`.
    fn first_dirty_batch_older_than(&self, plan: &Plan, now_ms: i64) -> Result<bool, StorageError> {
        if plan.max_lag_ms == i64::MAX {
            return Ok(false);
        }
        Ok(self
            .locate(plan.first_dirty)?
            .is_some_and(|(entry, _)| entry.max_timestamp < now_ms.saturating_sub(plan.max_lag_ms)))
    }

    /// Maps every key of the dirty section to its latest offset, segment by segment, until
    /// the map reaches `budget` bytes; returns the map and the offset it ends at.
    fn build_key_map(
        &self,
        plan: &Plan,
        budget: u64,
    ) -> Result<(HashMap<Bytes, i64>, i64), StorageError> {
        let mut map: HashMap<Bytes, i64> = HashMap::new();
        let mut used = 0u64;
        let mut end = plan.first_dirty;
        for seg in plan.cleanable.iter().filter(|s| s.end > plan.first_dirty) {
            if used >= budget && end > plan.first_dirty {
                break;
            }
            for item in seg.batches() {
                let (_, bytes) = item?;
                let header = batch::read_header(&bytes).map_err(|e| corrupt(seg, &e))?;
                if header.last_offset() < plan.first_dirty
                    || header.is_control()
                    || is_aborted(&plan.aborted, &header)
                {
                    continue;
                }
                let (h, recs) = records::decode_records(&bytes).map_err(|e| corrupt(seg, &e))?;
                for r in recs {
                    let offset = h.base_offset + i64::from(r.offset_delta);
                    let Some(key) = r.key else { continue };
                    if offset < plan.first_dirty {
                        continue;
                    }
                    // Copy the key out so the map does not pin whole batches in memory.
                    let key = Bytes::copy_from_slice(&key);
                    let len = key.len() as u64;
                    if map.insert(key, offset).is_none() {
                        used += len + MAP_ENTRY_OVERHEAD;
                    }
                }
            }
            end = seg.end;
        }
        if used > budget {
            tracing::debug!(topic = %self.topic, partition = self.index, used, budget, "key map went past log.cleaner.dedupe.buffer.size by its last segment");
        }
        Ok((map, end))
    }

    /// Replaces a group of segments by its cleaned copy; `false` when the group changed
    /// since the pass began (the copy is then discarded).
    fn swap_in(
        &self,
        group: &[SegmentView],
        cleaned: CleanedGroup,
        opts: &CleanOptions,
    ) -> Result<bool, StorageError> {
        let base = group[0].base;
        let end = group[group.len() - 1].end;
        let mut log = self.lock();
        let intact = group.iter().all(|g| {
            log.local.segments.get(&g.base).is_some_and(|s| {
                std::ptr::eq(Arc::as_ptr(&s.file), g.source.as_ptr()) && s.size == g.size
            })
        });
        let Some(file) = cleaned.file.filter(|_| intact) else {
            drop(log);
            let _ = std::fs::remove_file(&cleaned.path);
            return Ok(false);
        };
        let swap_path = self.dir.join(swap_file_name(base, end));
        std::fs::rename(&cleaned.path, &swap_path).map_err(|e| StorageError::io(&swap_path, e))?;
        // From here the swap file decides what start-up recovery does. If a later step
        // fails, the partition keeps serving from what is in memory and is not cleaned
        // again before a restart, so that no second swap file can contradict this one.
        let committed = (|| {
            sync_dir(&self.dir)?;
            crash_here(opts, CleanerCrashPoint::AfterSwapFile)?;
            let mut wb = WriteBatch::default();
            let offsets = self.db.cf(CF_OFFSETS)?;
            wb.delete_range_cf(offsets, self.key.with_i64(base), self.key.with_i64(end));
            for e in &cleaned.entries {
                wb.put_cf(offsets, self.key.with_i64(e.last_offset), e.encode());
            }
            self.db.write(wb, true)?;
            crash_here(opts, CleanerCrashPoint::AfterIndex)?;
            let final_path = self.dir.join(segment_file_name(base));
            for g in group {
                log.local.segments.remove(&g.base);
            }
            // Until the rename below, `final_path` still names the old file: the new one
            // must not be closed and opened again by name before then.
            let swapped = SegmentFile::with_open(&self.files, final_path.clone(), file, true);
            log.local.segments.insert(
                base,
                Segment {
                    base_offset: base,
                    file: swapped.clone(),
                    size: cleaned.size,
                    created_ms: group[0].created_ms,
                    max_timestamp: cleaned.max_timestamp,
                },
            );
            // Readers now use the new file through its handle; the names can follow.
            for g in &group[1..] {
                remove_if_present(&g.path)?;
            }
            sync_dir(&self.dir)?;
            std::fs::rename(&swap_path, &final_path)
                .map_err(|e| StorageError::io(&final_path, e))?;
            swapped.set_pinned(false);
            sync_dir(&self.dir)
        })();
        if let Err(e) = &committed {
            if !matches!(e, StorageError::CrashPoint(_)) {
                self.cleaner_stopped.store(true, Ordering::Release);
                tracing::error!(topic = %self.topic, partition = self.index, error = %e, "a segment swap failed after its commit point; the partition is not cleaned again before a restart finishes the swap");
            }
        }
        committed.map(|()| true)
    }
}

impl Plan {
    /// Bytes of the cleanable segments below and at or after the first dirty offset.
    fn bytes(&self) -> (u64, u64) {
        let mut clean = 0;
        let mut dirty = 0;
        for s in &self.cleanable {
            if s.end <= self.first_dirty {
                clean += s.size;
            } else {
                dirty += s.size;
            }
        }
        (clean, dirty)
    }
}

/// A group's cleaned copy: written segment by segment, then forced to disk and swapped in.
struct CleanedGroup {
    base: i64,
    path: PathBuf,
    out: Option<BufWriter<File>>,
    file: Option<File>,
    entries: Vec<IndexEntry>,
    size: u64,
    max_timestamp: i64,
    records_removed: u64,
    earliest_horizon: Option<i64>,
}

impl CleanedGroup {
    fn create(dir: &Path, base: i64) -> Result<Self, StorageError> {
        let path = dir.join(cleaned_file_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        Ok(CleanedGroup {
            base,
            path,
            out: Some(BufWriter::with_capacity(READ_CHUNK, file)),
            file: None,
            entries: Vec::new(),
            size: 0,
            max_timestamp: -1,
            records_removed: 0,
            earliest_horizon: None,
        })
    }

    /// Appends what the clean keeps of one segment.
    fn add_segment(
        &mut self,
        seg: &SegmentView,
        ctx: &BatchCleaner<'_>,
    ) -> Result<(), StorageError> {
        let Some(out) = self.out.as_mut() else {
            return Err(StorageError::Corrupt(
                "cleaned segment already finished".into(),
            ));
        };
        for item in seg.batches() {
            let (_, bytes) = item?;
            let header = batch::validate(&bytes).map_err(|e| corrupt(seg, &e))?;
            let kept = ctx.clean(&header, &bytes).map_err(|e| corrupt(seg, &e))?;
            self.records_removed += kept.removed;
            let Some((h, bytes)) = kept.batch else {
                continue;
            };
            out.write_all(&bytes)
                .map_err(|e| StorageError::io(&self.path, e))?;
            self.entries.push(IndexEntry {
                segment: self.base,
                position: self.size,
                size: bytes.len() as u32,
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
                max_timestamp: h.max_timestamp,
            });
            self.size += bytes.len() as u64;
            self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
            if let Some(horizon) = kept.horizon {
                self.earliest_horizon = Some(
                    self.earliest_horizon
                        .map_or(horizon, |e: i64| e.min(horizon)),
                );
            }
        }
        Ok(())
    }

    /// Flushes the copy and forces it to disk.
    fn finish(mut self) -> Result<Self, StorageError> {
        if let Some(out) = self.out.take() {
            let file = out
                .into_inner()
                .map_err(|e| StorageError::io(&self.path, e.into_error()))?;
            file.sync_all()
                .map_err(|e| StorageError::io(&self.path, e))?;
            self.file = Some(file);
        }
        Ok(self)
    }
}

fn corrupt(seg: &SegmentView, e: &dyn std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{}: {e}", seg.path.display()))
}
