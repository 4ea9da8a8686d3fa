//! A byte range of a segment file holding whole batches: what a fetch sends, so that the
//! network layer can hand it to the socket (sendfile) without copying it through memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::open_files::SegmentFile;
use super::segment::read_at;
use crate::StorageError;

/// Whole batches of one segment file, `len` bytes from `position`.
///
/// The handle keeps the file readable even if retention deletes it or the cleaner swaps
/// it out meanwhile: the bytes stay those that were indexed when the region was taken.
#[derive(Debug, Clone)]
pub struct FileRegion {
    file: Arc<File>,
    /// The segment's file as the log holds it, for its path.
    segment: Arc<SegmentFile>,
    position: u64,
    len: usize,
}

impl FileRegion {
    /// `len` bytes from `position` of `segment`, whose file it opens if the budget closed it.
    pub(super) fn new(
        segment: &Arc<SegmentFile>,
        position: u64,
        len: usize,
    ) -> Result<Self, StorageError> {
        Ok(FileRegion {
            file: segment.handle()?,
            segment: segment.clone(),
            position,
            len,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a region of no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segment file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the region starts in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The segment file's path, for error messages.
    pub fn path(&self) -> &Path {
        self.segment.path()
    }

    /// Reads the whole region into memory.
    pub fn read(&self) -> Result<Bytes, StorageError> {
        let data = read_at(&self.file, self.path(), self.position, self.len)?;
        if data.len() != self.len {
            return Err(StorageError::Corrupt(format!(
                "{}: {} bytes at {} are indexed but the file ends first",
                self.path().display(),
                self.len,
                self.position
            )));
        }
        Ok(Bytes::from(data))
    }

    /// Fills `buf` from `offset` bytes into the region (which must leave room for it).
    pub fn read_exact_at(&self, offset: usize, buf: &mut [u8]) -> std::io::Result<()> {
        if offset.saturating_add(buf.len()) > self.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "read past the end of a file region",
            ));
        }
        self.file.read_exact_at(buf, self.position + offset as u64)
    }
}
