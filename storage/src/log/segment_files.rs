//! Segment-file helpers shared by the cleaner and start-up recovery: the names of a
//! cleaning's intermediate files, directory syncs, and scanning a file batch by batch.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;
use sluice_protocol::batch::{self, HEADER_SIZE};

use super::segment::read_at;
use crate::StorageError;

/// Read size when scanning a segment.
pub(super) const READ_CHUNK: usize = 1 << 20;

/// File name of a finished cleaning of the segments in `[base, end)`, awaiting its swap.
pub(super) fn swap_file_name(base: i64, end: i64) -> String {
    format!("{base:020}-{end:020}.swap")
}

/// Parses [`swap_file_name`].
pub(super) fn parse_swap_file_name(name: &str) -> Option<(i64, i64)> {
    let stem = name.strip_suffix(".swap")?;
    let (a, b) = stem.split_once('-')?;
    let ok = |s: &str| s.len() == 20 && s.bytes().all(|c| c.is_ascii_digit());
    if !ok(a) || !ok(b) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// File name of an unfinished cleaning of the segments from `base` on.
pub(super) fn cleaned_file_name(base: i64) -> String {
    format!("{base:020}.cleaned")
}

/// Forces a directory's entries (renames, deletions) to disk.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

/// Deletes a file; one already gone is fine.
pub(super) fn remove_if_present(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// The batches of a segment in order, read in large chunks.
pub(super) struct SegmentBatches<'a> {
    file: &'a File,
    path: &'a Path,
    /// Bytes of whole batches in the file.
    size: u64,
    pos: u64,
    buf: Bytes,
    buf_start: u64,
}

impl<'a> SegmentBatches<'a> {
    /// The batches in the first `size` bytes of `file`.
    pub(super) fn new(file: &'a File, path: &'a Path, size: u64) -> Self {
        SegmentBatches {
            file,
            path,
            size,
            pos: 0,
            buf: Bytes::new(),
            buf_start: 0,
        }
    }

    /// Makes the buffer cover `[pos, pos + len)`.
    fn fill(&mut self, len: usize) -> Result<(), StorageError> {
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos >= self.buf_start && self.pos + len as u64 <= buf_end {
            return Ok(());
        }
        let want = len.max(READ_CHUNK).min((self.size - self.pos) as usize);
        self.buf = Bytes::from(read_at(self.file, self.path, self.pos, want)?);
        self.buf_start = self.pos;
        if self.buf.len() < len {
            return Err(StorageError::Corrupt(format!(
                "{}: batch at {} runs past the segment",
                self.path.display(),
                self.pos
            )));
        }
        Ok(())
    }
}

impl Iterator for SegmentBatches<'_> {
    type Item = Result<(u64, Bytes), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.size {
            return None;
        }
        let item = (|| {
            self.fill(HEADER_SIZE)?;
            let at = (self.pos - self.buf_start) as usize;
            let header = batch::read_header(&self.buf[at..])
                .map_err(|e| StorageError::Corrupt(format!("{}: {e}", self.path.display())))?;
            self.fill(header.size())?;
            let at = (self.pos - self.buf_start) as usize;
            let bytes = self.buf.slice(at..at + header.size());
            let pos = self.pos;
            self.pos += header.size() as u64;
            Ok((pos, bytes))
        })();
        if item.is_err() {
            // Stop after an error rather than loop on it.
            self.pos = self.size;
        }
        Some(item)
    }
}
