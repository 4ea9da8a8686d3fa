//! Reading a partition: whole batches from an offset, bounded by the high watermark, the
//! last stable offset or (followers) the log end offset, found through the index and
//! served from the segment files.

use bytes::Bytes;

use super::log_state::LogState;
use super::partition::Partition;
use super::region::FileRegion;
use super::segment::Segment;
use super::types::{FetchData, Isolation, ReadError};
use crate::db::IndexEntry;
use crate::StorageError;

impl Partition {
    /// Reads whole batches starting at the batch that holds `offset`, up to `max_bytes`
    /// (at least one whole batch, as KIP-74 requires), never past the high watermark, for
    /// read-committed reads never past the last stable offset, and for followers
    /// ([`Isolation::LogEnd`]) up to the log end offset. An offset beyond the log end
    /// offset is out of range; one between the high watermark and it reads nothing.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<FetchData, ReadError> {
        let data = self.read_region(offset, max_bytes, isolation)?;
        let records = match &data.records {
            Some(region) => region.read()?,
            None => Bytes::new(),
        };
        Ok(data.with_records(records))
    }

    /// Like [`Partition::read`], but names the batches as a region of their segment file
    /// instead of reading them: the batches are found from the index alone. `None` when
    /// there is nothing to return.
    pub fn read_region(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<FetchData<Option<FileRegion>>, ReadError> {
        self.db.health.check()?;
        // The offsets, the index and the segment map are read under one lock, so that the
        // cleaner cannot swap the file between finding the batches and taking its handle.
        let log = self.lock();
        let (log_start_offset, high_watermark, last_stable_offset, log_end_offset) = (
            log.log_start_offset,
            log.high_watermark,
            log.last_stable_offset(),
            log.log_end_offset(),
        );
        if offset < log_start_offset || offset > log_end_offset {
            return Err(ReadError::OutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            });
        }
        let upper = match isolation {
            Isolation::ReadUncommitted => high_watermark,
            Isolation::ReadCommitted => last_stable_offset,
            Isolation::LogEnd => log_end_offset,
        };
        let mut data = FetchData {
            records: None,
            high_watermark,
            log_start_offset,
            last_stable_offset,
            aborted_transactions: Vec::new(),
        };
        if offset >= upper {
            return Ok(data);
        }
        if offset < log.local_log_start_offset() {
            if let Some(remote) = self.remote_read(&log, offset, upper) {
                return Err(ReadError::InRemoteTier(Box::new(remote)));
            }
        }
        let Some((first, segment)) = self.find_batch(&log, offset)? else {
            return Ok(data);
        };
        if first.base_offset >= upper {
            return Ok(data);
        }
        let (end, next_offset) = self.batches_end(&log, &first, segment.size, max_bytes, upper)?;
        if isolation == Isolation::ReadCommitted {
            data.aborted_transactions = log.aborted_txns.overlapping(offset, next_offset);
        }
        let len = end.saturating_sub(first.position) as usize;
        data.records = Some(FileRegion::new(&segment.file, first.position, len)?);
        Ok(data)
    }

    /// Where a read starting at batch `first` ends in its segment: after the last whole
    /// batch that starts below `upper` and ends within `max_bytes` of `first` (or after
    /// `first` alone if it is larger). Returns the position and the offset after it.
    fn batches_end(
        &self,
        log: &LogState,
        first: &IndexEntry,
        segment_size: u64,
        max_bytes: usize,
        upper: i64,
    ) -> Result<(u64, i64), StorageError> {
        let segment = first.segment;
        let limit = first
            .position
            .saturating_add((first.size as u64).max(max_bytes as u64));
        // Everything below `upper` in this segment: up to the batch holding `upper`, or to
        // the segment's end (the next segment's base offset comes after it).
        let (upper_end, upper_next) = match self.batch_containing(upper)? {
            Some(e) if e.segment == segment && e.base_offset < upper => {
                (e.position + e.size as u64, e.last_offset + 1)
            }
            Some(e) if e.segment == segment => (e.position, e.base_offset),
            _ => (segment_size, log.local.segment_end(segment)),
        };
        if upper_end <= limit {
            return Ok((upper_end, upper_next));
        }
        // Positions grow with offsets within a segment: search the offsets for the last
        // batch that still ends within the limit.
        let mut best = (first.position + first.size as u64, first.last_offset + 1);
        let (mut lo, mut hi) = (first.last_offset, upper - 1);
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2;
            match self.batch_containing(mid)? {
                Some(e)
                    if e.segment == segment
                        && e.base_offset < upper
                        && e.position + e.size as u64 <= limit =>
                {
                    best = (e.position + e.size as u64, e.last_offset + 1);
                    lo = e.last_offset.max(mid);
                }
                _ => hi = mid - 1,
            }
        }
        Ok(best)
    }

    /// The batch holding `offset` (or the first after it) and the region of its segment
    /// file it fills, looked up together under the log lock so that the cleaner cannot
    /// swap the file in between.
    pub(super) fn locate(
        &self,
        offset: i64,
    ) -> Result<Option<(IndexEntry, FileRegion)>, StorageError> {
        let log = self.lock();
        let Some((entry, segment)) = self.find_batch(&log, offset)? else {
            return Ok(None);
        };
        let region = FileRegion::new(&segment.file, entry.position, entry.size as usize)?;
        Ok(Some((entry, region)))
    }

    /// The batch holding `offset` (or the first after it) and its segment; `log` is the
    /// held log lock, which keeps the two consistent.
    fn find_batch<'a>(
        &self,
        log: &'a LogState,
        offset: i64,
    ) -> Result<Option<(IndexEntry, &'a Segment)>, StorageError> {
        let Some(entry) = self.batch_containing(offset)? else {
            return Ok(None);
        };
        // A segment missing from the map was just removed by retention.
        Ok(log.local.segments.get(&entry.segment).map(|s| (entry, s)))
    }
}
