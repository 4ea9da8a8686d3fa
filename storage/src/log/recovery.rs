//! Start-up recovery of one partition: drop index entries that point at data that is not
//! on disk, re-validate the tail by CRC, truncate a torn batch, and index what is missing.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use rocksdb::{Direction, IteratorMode, WriteBatch};
use sluice_config::TopicConfig;
use sluice_protocol::batch::{self, HEADER_SIZE};

use super::aborted::AbortedIndex;
use super::index::index_batch;
use super::local_log::LocalLog;
use super::log_state::LogState;
use super::meta::{self, stored_log_start};
use super::open_files::OpenFiles;
use super::segment::{parse_segment_file_name, read_at, segment_file_name, Segment};
use super::segment_files::{parse_swap_file_name, remove_if_present, sync_dir, SegmentBatches};
use super::types::AbortedTxn;
use crate::db::{
    key_suffix_u64, timestamp_from_key, Db, IndexEntry, PartitionKey, CF_ABORTED_TXNS, CF_META,
    CF_OFFSETS, CF_PRODUCERS, CF_TIMES,
};
use crate::producers::{ProducerEntry, ProducerStates};
use crate::StorageError;

/// Rebuilds the in-memory state of a partition from its directory and the index.
pub(super) fn recover(
    db: &Db,
    files: &Arc<OpenFiles>,
    dir: &Path,
    key: PartitionKey,
    config: TopicConfig,
    now_ms: i64,
) -> Result<(LogState, u64), StorageError> {
    finish_interrupted_cleaning(db, key, dir)?;
    super::truncate::finish_interrupted_truncation(db, key, dir)?;
    let mut segments = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(base) = name.to_str().and_then(parse_segment_file_name) {
            segments.insert(base, Segment::open(files, entry.path(), base)?);
        }
    }
    if segments.is_empty() {
        let first = first_indexed_offset(db, key)?.unwrap_or(0);
        segments.insert(first, Segment::create(files, dir, first, now_ms)?);
    }

    let mut wb = WriteBatch::default();
    let last = drop_dangling_entries(db, key, &segments, &mut wb)?;
    let remote = super::tiered::load_remote(db, &key, &mut wb, now_ms)?;
    // DeleteRecords may have moved the log start inside the first segment; with tiered
    // storage the log starts in the remote tier.
    let local_base = *segments.keys().next().unwrap_or(&0);
    let first_base = remote
        .segments
        .keys()
        .next()
        .map_or(local_base, |r| (*r).min(local_base));
    let log_start_offset = stored_log_start(db, &key)?.map_or(first_base, |s| s.max(first_base));
    let mut state = LogState {
        local: LocalLog {
            dir: dir.to_path_buf(),
            files: files.clone(),
            segments,
            log_end_offset: 0,
            unflushed_files: Vec::new(),
        },
        log_start_offset,
        producers: load_producers(db, key)?,
        max_timestamp: last_indexed_timestamp(db, key)?,
        unflushed_messages: 0,
        config,
        ongoing_txns: BTreeMap::new(),
        aborted_txns: load_aborted_txns(db, key)?,
        high_watermark: 0,
        replicated: false,
        checkpointed_high_watermark: meta::stored_i64(
            db,
            &meta::high_watermark_key(&key),
            "high watermark",
        )?
        .unwrap_or(-1),
        epochs: meta::stored_epochs(db, &key)?,
        truncations: 0,
        remote,
    };
    // Scan forward from the end of the last good indexed batch.
    let (mut seg_base, mut pos, mut next_offset) = match last {
        Some(e) => (e.segment, e.position + u64::from(e.size), e.last_offset + 1),
        None => (state.log_start_offset, 0, state.log_start_offset),
    };
    let bases: Vec<i64> = state
        .local
        .segments
        .range(seg_base..)
        .map(|(b, _)| *b)
        .collect();
    let mut torn = false;
    let mut recovered_batches = 0u64;
    // Torn tails truncated and segments removed after them.
    let mut repairs = 0u64;
    for base in bases {
        if torn {
            // Everything after a torn batch is unreachable garbage from the same crash.
            if let Some(seg) = state.local.segments.remove(&base) {
                tracing::warn!(path = %seg.path().display(), "removing segment after a torn batch");
                repairs += 1;
                std::fs::remove_file(seg.path()).map_err(|e| StorageError::io(seg.path(), e))?;
            }
            continue;
        }
        if base != seg_base {
            seg_base = base;
            pos = 0;
            // Compaction leaves gaps between segments; only an overlap is wrong.
            if base < next_offset {
                tracing::warn!(
                    segment = base,
                    expected = next_offset,
                    "segment base does not follow the log end"
                );
            }
            next_offset = next_offset.max(base);
        }
        let (file, path, file_len) = {
            let seg = state
                .local
                .segments
                .get(&base)
                .ok_or_else(|| StorageError::Corrupt("segment vanished".into()))?;
            (seg.file.clone(), seg.path().to_path_buf(), seg.size)
        };
        // Opened only when there is a tail to check: a clean partition opens no file.
        let file = if pos < file_len {
            file.handle()?
        } else {
            continue;
        };
        loop {
            if pos == file_len {
                break;
            }
            let head = read_at(&file, &path, pos, HEADER_SIZE)?;
            let valid = batch::read_header(&head).ok().and_then(|h| {
                let body = read_at(&file, &path, pos, h.size()).ok()?;
                let h = batch::validate(&body)
                    .ok()
                    .filter(|h| h.base_offset == next_offset)?;
                Some((h, batch::control_marker(&body)))
            });
            match valid {
                Some((h, control)) => {
                    index_batch(db, key, &mut state, &mut wb, &h, control, base, pos)?;
                    pos += h.size() as u64;
                    next_offset = h.last_offset() + 1;
                    recovered_batches += 1;
                }
                None => {
                    tracing::warn!(path = %path.display(), position = pos, file_len, "truncating torn tail of segment");
                    repairs += 1;
                    torn = true;
                    break;
                }
            }
        }
        if let Some(seg) = state.local.segments.get_mut(&base) {
            if torn {
                seg.truncate(pos)?;
            }
            seg.size = pos;
        }
    }
    if recovered_batches > 0 {
        tracing::info!(dir = %dir.display(), batches = recovered_batches, "indexed batches found beyond the index");
    }
    // A synced write costs an fsync: a partition with nothing to repair (every one after a
    // clean stop, and every new one) must not pay it, or 100,000 partitions wait minutes.
    if !wb.is_empty() {
        db.write(wb, true)?;
    }
    state.set_log_end_offset(next_offset);
    // Entries of batches lost with a torn tail, or wholly below the log start, go (as
    // Kafka's log loading truncates the cache at both ends).
    let start = state.log_start_offset;
    if state.epochs.truncate_from_end(next_offset) | state.epochs.truncate_from_start(start) {
        let mut wb = WriteBatch::default();
        wb.put_cf(
            db.cf(CF_META)?,
            meta::leader_epochs_key(&key),
            state.epochs.encode(),
        );
        db.write(wb, true)?;
    }
    state.checkpointed_high_watermark = state.checkpointed_high_watermark.min(next_offset);
    // Open transactions are those of the producers' state that are still in the log.
    state.ongoing_txns.clear();
    for (pid, entry) in state.producers.producers.iter_mut() {
        match entry.txn_first_offset {
            Some(first) if first < state.local.log_end_offset => {
                state.ongoing_txns.insert(first, *pid);
            }
            Some(_) => entry.txn_first_offset = None,
            None => {}
        }
    }
    compute_segment_timestamps(db, key, &mut state)?;
    Ok((state, recovered_batches + repairs))
}

/// Completes what a crash interrupted in the cleaner: a `.swap` file is a finished clean of
/// the segments in its range, so those segments are replaced by it and its batches are
/// indexed again; a `.cleaned` file is an unfinished one and is deleted.
fn finish_interrupted_cleaning(db: &Db, key: PartitionKey, dir: &Path) -> Result<(), StorageError> {
    let mut swaps = Vec::new();
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".cleaned") {
            tracing::warn!(path = %entry.path().display(), "deleting an unfinished cleaning");
            std::fs::remove_file(entry.path()).map_err(|e| StorageError::io(&entry.path(), e))?;
        } else if let Some(range) = parse_swap_file_name(name) {
            swaps.push((range, entry.path()));
        } else if let Some(base) = parse_segment_file_name(name) {
            logs.push((base, entry.path()));
        }
    }
    // In offset order, should a failed swap ever have left more than one.
    swaps.sort();
    for ((base, end), swap) in swaps {
        tracing::warn!(path = %swap.display(), "finishing a cleaning interrupted by a crash");
        for (b, path) in &logs {
            if *b > base && *b < end {
                remove_if_present(path)?;
            }
        }
        sync_dir(dir)?;
        let target = dir.join(segment_file_name(base));
        std::fs::rename(&swap, &target).map_err(|e| StorageError::io(&target, e))?;
        sync_dir(dir)?;
        reindex_swapped(db, key, &target, base, end)?;
    }
    Ok(())
}

/// Re-indexes a segment rewritten by a swap that recovery finished: its offset index
/// entries in `[base, end)` are replaced by entries for the batches now in the file.
fn reindex_swapped(
    db: &Db,
    key: PartitionKey,
    path: &Path,
    base: i64,
    end: i64,
) -> Result<(), StorageError> {
    let file = File::open(path).map_err(|e| StorageError::io(path, e))?;
    let size = file
        .metadata()
        .map_err(|e| StorageError::io(path, e))?
        .len();
    let offsets = db.cf(CF_OFFSETS)?;
    let mut wb = WriteBatch::default();
    wb.delete_range_cf(offsets, key.with_i64(base), key.with_i64(end));
    for item in SegmentBatches::new(&file, path, size) {
        let (position, bytes) = item?;
        let h = batch::validate(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("{}: {e}", path.display())))?;
        let entry = IndexEntry {
            segment: base,
            position,
            size: h.size() as u32,
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp,
        };
        wb.put_cf(offsets, key.with_i64(entry.last_offset), entry.encode());
    }
    db.write(wb, true)
}

/// Deletes index entries at the end of the partition whose batch is not intact on disk;
/// returns the last entry that is.
fn drop_dangling_entries(
    db: &Db,
    key: PartitionKey,
    segments: &BTreeMap<i64, Segment>,
    wb: &mut WriteBatch,
) -> Result<Option<IndexEntry>, StorageError> {
    let cf = db.cf(CF_OFFSETS)?;
    let end = key.with_u64(u64::MAX);
    let iter = db
        .db
        .iterator_cf(cf, IteratorMode::From(&end, Direction::Reverse));
    for item in iter {
        let (k, v) = item?;
        if !k.starts_with(key.as_bytes()) {
            break;
        }
        let e = IndexEntry::decode(&k, &v)?;
        let intact = segments.get(&e.segment).is_some_and(|s| {
            e.position + u64::from(e.size) <= s.size
                && s.file
                    .handle()
                    .and_then(|f| read_at(&f, s.path(), e.position, e.size as usize))
                    .ok()
                    .and_then(|b| batch::validate(&b).ok())
                    .is_some_and(|h| h.last_offset() == e.last_offset)
        });
        if intact {
            return Ok(Some(e));
        }
        tracing::warn!(
            offset = e.last_offset,
            "dropping index entry whose batch is not on disk"
        );
        wb.delete_cf(cf, &k);
    }
    Ok(None)
}

fn first_indexed_offset(db: &Db, key: PartitionKey) -> Result<Option<i64>, StorageError> {
    let cf = db.cf(CF_OFFSETS)?;
    let start = key.with_u64(0);
    let mut it = db
        .db
        .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward));
    match it.next() {
        Some(Ok((k, v))) if k.starts_with(key.as_bytes()) => {
            Ok(Some(IndexEntry::decode(&k, &v)?.base_offset))
        }
        Some(Err(e)) => Err(e.into()),
        _ => Ok(None),
    }
}

fn last_indexed_timestamp(db: &Db, key: PartitionKey) -> Result<i64, StorageError> {
    let cf = db.cf(CF_TIMES)?;
    let end = key.with_u64(u64::MAX);
    let mut it = db
        .db
        .iterator_cf(cf, IteratorMode::From(&end, Direction::Reverse));
    match it.next() {
        Some(Ok((k, _))) if k.starts_with(key.as_bytes()) => {
            Ok(key_suffix_u64(&k).map(timestamp_from_key).unwrap_or(-1))
        }
        Some(Err(e)) => Err(e.into()),
        _ => Ok(-1),
    }
}

fn load_producers(db: &Db, key: PartitionKey) -> Result<ProducerStates, StorageError> {
    let mut states = ProducerStates::default();
    db.for_each_partition_entry(CF_PRODUCERS, &key, |k, v| {
        let pid = key_suffix_u64(k).map(|p| p as i64);
        match (pid, ProducerEntry::decode(v)) {
            (Some(pid), Some(entry)) => {
                states.producers.insert(pid, entry);
            }
            _ => tracing::warn!("skipping malformed producer state entry"),
        }
    })?;
    Ok(states)
}

fn load_aborted_txns(db: &Db, key: PartitionKey) -> Result<AbortedIndex, StorageError> {
    let mut out = AbortedIndex::default();
    db.for_each_partition_entry(CF_ABORTED_TXNS, &key, |k, v| {
        let last = key_suffix_u64(k).map(|o| o as i64);
        match last.and_then(|last| AbortedTxn::decode(last, v)) {
            Some(t) => out.insert(t),
            None => tracing::warn!("skipping malformed aborted transaction entry"),
        }
    })?;
    Ok(out)
}

/// Sets each segment's largest timestamp from the index, for time-based retention.
fn compute_segment_timestamps(
    db: &Db,
    key: PartitionKey,
    state: &mut LogState,
) -> Result<(), StorageError> {
    let cf = db.cf(CF_OFFSETS)?;
    let start = key.with_i64(state.log_start_offset);
    for item in db
        .db
        .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward))
    {
        let (k, v) = item?;
        if !k.starts_with(key.as_bytes()) {
            break;
        }
        let e = IndexEntry::decode(&k, &v)?;
        if let Some(seg) = state.local.segments.get_mut(&e.segment) {
            seg.max_timestamp = seg.max_timestamp.max(e.max_timestamp);
        }
    }
    Ok(())
}
