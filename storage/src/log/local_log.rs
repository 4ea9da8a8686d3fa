//! The local log: a partition's segment files in offset order, the active one last. It
//! appends bytes, rolls, and says where the log ends; what the bytes mean (offsets in the
//! index, producers, transactions) is the partition's business.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use super::open_files::OpenFiles;
use super::segment::Segment;
use crate::StorageError;

/// The ordered segments of one partition directory.
pub(super) struct LocalLog {
    /// The partition directory.
    pub(super) dir: PathBuf,
    /// The data directory's budget of open segment files.
    pub(super) files: Arc<OpenFiles>,
    /// Segments by base offset; the last is the active segment.
    pub(super) segments: BTreeMap<i64, Segment>,
    /// The offset the next batch gets.
    pub(super) log_end_offset: i64,
    /// Rolled segments whose data is not yet forced to disk.
    pub(super) unflushed_files: Vec<Arc<File>>,
}

impl LocalLog {
    /// The segment appends go to.
    pub(super) fn active(&mut self) -> Result<&mut Segment, StorageError> {
        self.segments
            .values_mut()
            .next_back()
            .ok_or_else(|| StorageError::Corrupt("partition has no segment".into()))
    }

    /// Whether a batch of `incoming` bytes must go to a new segment: the active one is
    /// full (`segment_bytes`) or older than `segment_ms`. An empty segment never rolls.
    pub(super) fn should_roll(
        &mut self,
        incoming: u64,
        now_ms: i64,
        segment_bytes: u64,
        segment_ms: i64,
    ) -> Result<bool, StorageError> {
        let active = self.active()?;
        let full = active.size > 0 && active.size + incoming > segment_bytes;
        let old = active.size > 0 && now_ms.saturating_sub(active.created_ms) >= segment_ms;
        Ok(full || old)
    }

    /// Starts a new active segment at `base`; returns the old active segment's file, now
    /// listed as unflushed.
    pub(super) fn roll(&mut self, now_ms: i64, base: i64) -> Result<Arc<File>, StorageError> {
        let old = self.active()?.file.handle()?;
        self.unflushed_files.push(old.clone());
        let segment = Segment::create(&self.files, &self.dir, base, now_ms)?;
        self.segments.insert(base, segment);
        Ok(old)
    }

    /// Writes a whole batch at the end of the active segment; returns the segment's base
    /// offset and the position the batch starts at. A failed write is cut off again, so no
    /// partial batch is left behind an acknowledged one.
    pub(super) fn append(
        &mut self,
        bytes: &[u8],
        max_timestamp: i64,
    ) -> Result<(i64, u64), StorageError> {
        let segment = self.active()?;
        let position = segment.size;
        if let Err(e) = segment.append(bytes) {
            let _ = segment.truncate(position);
            return Err(e);
        }
        segment.max_timestamp = segment.max_timestamp.max(max_timestamp);
        Ok((segment.base_offset, position))
    }

    /// Cuts the active segment back to `position`: undoes an append whose indexing failed.
    pub(super) fn truncate_active(&mut self, position: u64) -> Result<(), StorageError> {
        self.active()?.truncate(position)
    }

    /// The base offset of the first segment after the one starting at `base`, else the log
    /// end offset: every offset of that segment is below it.
    pub(super) fn segment_end(&self, base: i64) -> i64 {
        self.segments
            .range(base + 1..)
            .next()
            .map_or(self.log_end_offset, |(next, _)| *next)
    }

    /// Total bytes of the segments.
    pub(super) fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }
}
