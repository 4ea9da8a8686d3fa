//! One segment file: raw record batches appended end to end.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::open_files::{OpenFiles, SegmentFile};

use rustix::buffer::spare_capacity;

use crate::StorageError;

/// File name of the segment starting at `base_offset`, as Kafka names it.
pub(crate) fn segment_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// Parses a segment file name back into its base offset.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// A segment file and how many bytes of whole batches it holds.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    /// The file (and its path), opened on use within the broker's budget of open
    /// segment files.
    pub(crate) file: Arc<SegmentFile>,
    /// Bytes of whole, indexed batches; readers never look past it.
    pub(crate) size: u64,
    /// Wall-clock time the segment was created (ms), for `segment.ms` rolls.
    pub(crate) created_ms: i64,
    /// Largest record timestamp in the segment, for time retention.
    pub(crate) max_timestamp: i64,
}

impl Segment {
    /// The segment file's path.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// Creates a new empty segment file.
    pub(crate) fn create(
        budget: &Arc<OpenFiles>,
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
    ) -> Result<Self, StorageError> {
        let path = dir.join(segment_file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        let size = file
            .metadata()
            .map_err(|e| StorageError::io(&path, e))?
            .len();
        Ok(Segment {
            base_offset,
            file: SegmentFile::with_open(budget, path, file, false),
            size,
            created_ms: now_ms,
            max_timestamp: -1,
        })
    }

    /// An existing segment file, left closed until used; its `size` is the file length
    /// until recovery says otherwise.
    pub(crate) fn open(
        budget: &Arc<OpenFiles>,
        path: PathBuf,
        base_offset: i64,
    ) -> Result<Self, StorageError> {
        let meta = std::fs::metadata(&path).map_err(|e| StorageError::io(&path, e))?;
        let created_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Ok(Segment {
            base_offset,
            file: SegmentFile::closed(budget, path),
            size: meta.len(),
            created_ms,
            max_timestamp: -1,
        })
    }

    /// Appends bytes at the end; returns the position they start at.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<u64, StorageError> {
        let pos = self.size;
        (&*self.file.handle()?)
            .write_all(bytes)
            .map_err(|e| StorageError::io(self.path(), e))?;
        self.size += bytes.len() as u64;
        Ok(pos)
    }

    /// Cuts the file back to `size` bytes (a torn tail found by recovery).
    pub(crate) fn truncate(&mut self, size: u64) -> Result<(), StorageError> {
        self.file
            .handle()?
            .set_len(size)
            .map_err(|e| StorageError::io(self.path(), e))?;
        self.size = size;
        Ok(())
    }
}

/// Reads `len` bytes at `pos` of a segment file (fewer at its end), into memory that is
/// not zero-filled first: a fetch can read megabytes at a time.
pub(crate) fn read_at(
    file: &File,
    path: &Path,
    pos: u64,
    len: usize,
) -> Result<Vec<u8>, StorageError> {
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let at = pos + buf.len() as u64;
        match rustix::io::pread(file, spare_capacity(&mut buf), at) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(StorageError::io(path, e.into())),
        }
    }
    // The allocator may have given more capacity than asked, and pread fills all of it.
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_file_name(42), "00000000000000000042.log");
        assert_eq!(
            parse_segment_file_name("00000000000000000042.log"),
            Some(42)
        );
        assert_eq!(parse_segment_file_name("42.log"), None);
        assert_eq!(parse_segment_file_name("00000000000000000042.index"), None);
    }

    #[test]
    fn append_read_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let budget = OpenFiles::new(10);
        let mut s = Segment::create(&budget, dir.path(), 0, 0).unwrap();
        assert_eq!(s.append(b"hello").unwrap(), 0);
        assert_eq!(s.append(b"world").unwrap(), 5);
        let file = s.file.handle().unwrap();
        assert_eq!(read_at(&file, s.path(), 3, 4).unwrap(), b"lowo");
        s.truncate(5).unwrap();
        assert_eq!(read_at(&file, s.path(), 0, 100).unwrap(), b"hello");
    }
}
