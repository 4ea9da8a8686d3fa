//! Offset lookups by timestamp (ListOffsets), through the time index.

use kafka_protocol::records::RecordBatchDecoder;
use rocksdb::{Direction, IteratorMode};

use super::partition::Partition;
use crate::db::{key_suffix_u64, timestamp_from_key, timestamp_key, CF_TIMES};
use crate::StorageError;

/// An offset found by timestamp, with the timestamp of that record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// Offset of the record.
    pub offset: i64,
    /// Its timestamp.
    pub timestamp: i64,
}

impl Partition {
    /// The earliest record whose timestamp is at or after `target`, or `None` if there is
    /// none. The time index records each new maximum timestamp, so the first entry at or
    /// above `target` names the first batch that can hold such a record.
    pub fn offset_for_timestamp(
        &self,
        target: i64,
    ) -> Result<Option<TimestampOffset>, StorageError> {
        let cf = self.db.cf(CF_TIMES)?;
        let start = self.key.with_u64(timestamp_key(target));
        let log_start = self.log_start_offset();
        for item in self
            .db
            .db
            .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(self.key.as_bytes()) {
                return Ok(None);
            }
            let base = i64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("time index".into()))?,
            );
            if base < log_start {
                continue;
            }
            return self.find_in_batch(base, |ts| ts >= target, true);
        }
        Ok(None)
    }

    /// The record with the largest timestamp (the first one, if several share it).
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, StorageError> {
        let cf = self.db.cf(CF_TIMES)?;
        let end = self.key.with_u64(u64::MAX);
        let mut it = self
            .db
            .db
            .iterator_cf(cf, IteratorMode::From(&end, Direction::Reverse));
        match it.next() {
            Some(Ok((k, v))) if k.starts_with(self.key.as_bytes()) => {
                let max = key_suffix_u64(&k).map(timestamp_from_key).unwrap_or(-1);
                let base = i64::from_be_bytes(
                    v.as_ref()
                        .try_into()
                        .map_err(|_| StorageError::Corrupt("time index".into()))?,
                );
                if base < self.log_start_offset() {
                    return Ok(None);
                }
                self.find_in_batch(base, |ts| ts == max, false)
            }
            Some(Err(e)) => Err(e.into()),
            _ => Ok(None),
        }
    }

    /// Decodes the batch holding `base` (decompressing if needed) and returns its first
    /// record matching `pred`; with `scan_forward`, later batches are tried too, since the
    /// cleaner may have removed the records the time index was written for.
    fn find_in_batch(
        &self,
        base: i64,
        pred: impl Fn(i64) -> bool,
        scan_forward: bool,
    ) -> Result<Option<TimestampOffset>, StorageError> {
        let mut offset = base;
        loop {
            let Some((entry, region)) = self.locate(offset)? else {
                return Ok(None);
            };
            let mut buf = region.read()?;
            let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| {
                StorageError::Corrupt(format!(
                    "cannot decode stored batch at offset {offset}: {e}"
                ))
            })?;
            let hit = set
                .records
                .iter()
                .filter(|r| r.offset >= base)
                .find(|r| pred(r.timestamp))
                .map(|r| TimestampOffset {
                    offset: r.offset,
                    timestamp: r.timestamp,
                });
            if hit.is_some() || !scan_forward {
                return Ok(hit);
            }
            offset = entry.last_offset + 1;
        }
    }
}
