//! What a share-partition reads of the log: the batches of a read with the aborted
//! transactions among them, and the whole batches that hold acquired records.

use bytes::{Bytes, BytesMut};
use sluice_protocol::batch::read_header;
use sluice_storage::{AbortedTxn, Isolation, Partition, ReadError};

use super::partition::{AcquiredRange, LogBatch};

/// The offsets of each whole batch in `records`, and whether `aborted` (a read-committed
/// read's aborted transactions) says its transaction was aborted.
pub(super) fn log_batches(records: &Bytes, aborted: &[AbortedTxn]) -> Vec<LogBatch> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Ok(h) = read_header(&records[pos..]) {
        let in_aborted = h.is_transactional()
            && !h.is_control()
            && aborted.iter().any(|a| {
                a.producer_id == h.producer_id
                    && a.first_offset <= h.base_offset
                    && h.base_offset < a.last_offset
            });
        out.push(LogBatch {
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            aborted: in_aborted,
        });
        pos += h.size();
        if pos >= records.len() {
            break;
        }
    }
    out
}

/// Whole batches of the log that hold the acquired offsets: the fresh read's, and for
/// records acquired again, the batches read back from the log.
pub(super) fn covering(
    partition: &Partition,
    ranges: &[AcquiredRange],
    fresh: Bytes,
    max_bytes: usize,
) -> Result<Bytes, ReadError> {
    let mut batches: Vec<(i64, i64, Bytes)> = Vec::new();
    let add = |batches: &mut Vec<(i64, i64, Bytes)>, records: &Bytes| {
        let mut pos = 0;
        while let Ok(h) = read_header(&records[pos..]) {
            let end = (pos + h.size()).min(records.len());
            let (first, last) = (h.base_offset, h.last_offset());
            let wanted = ranges
                .iter()
                .any(|r| r.first_offset <= last && first <= r.last_offset);
            if wanted && !batches.iter().any(|(b, _, _)| *b == first) {
                batches.push((first, last, records.slice(pos..end)));
            }
            pos = end;
            if pos >= records.len() {
                break;
            }
        }
    };
    add(&mut batches, &fresh);
    for r in ranges {
        let mut offset = r.first_offset;
        while offset <= r.last_offset {
            if let Some((_, last, _)) = batches
                .iter()
                .find(|(b, l, _)| *b <= offset && offset <= *l)
            {
                offset = last + 1;
                continue;
            }
            let data = match partition.read(offset, max_bytes, Isolation::ReadUncommitted) {
                Ok(d) => d,
                // Gone with retention since it was acquired: the client acknowledges a gap.
                Err(ReadError::OutOfRange { .. }) => break,
                Err(e) => return Err(e),
            };
            if data.records.is_empty() {
                break;
            }
            let before = batches.len();
            add(&mut batches, &data.records);
            if batches.len() == before {
                break;
            }
        }
    }
    batches.sort_by_key(|(b, _, _)| *b);
    let mut out = BytesMut::new();
    for (_, _, b) in batches {
        out.extend_from_slice(&b);
    }
    Ok(out.freeze())
}
