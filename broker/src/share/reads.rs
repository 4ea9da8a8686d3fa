//! What a share-partition reads of the log: the batches of a read with the aborted
//! transactions among them, and the whole batches that hold acquired records. Below the
//! local log start of a tiered topic the remote tier is read, as a consumer's fetch does.

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use sluice_protocol::batch::read_header;
use sluice_storage::{AbortedTxn, FetchData, Isolation, Partition, ReadError};
use sluice_tier::RemoteReader;

use super::partition::{AcquiredRange, LogBatch};
use crate::error::{code, read_error_code};

/// Why a share-partition's read failed.
#[derive(Debug)]
pub(crate) enum ShareReadError {
    /// The local log refused it.
    Local(ReadError),
    /// The remote tier failed (logged where it did), or is not there.
    Remote,
}

impl ShareReadError {
    /// The Kafka error code a share fetch answers with.
    pub(crate) fn code(&self) -> i16 {
        match self {
            ShareReadError::Local(e) => read_error_code(e),
            ShareReadError::Remote => code(ResponseError::KafkaStorageError),
        }
    }
}

/// Whole batches from `offset`: the local segments, or below the local log start the
/// remote segment holding it (through the reader's cache).
pub(super) async fn read_log(
    partition: &Partition,
    remote: Option<&RemoteReader>,
    offset: i64,
    max_bytes: usize,
    isolation: Isolation,
) -> Result<FetchData, ShareReadError> {
    match partition.read(offset, max_bytes, isolation) {
        Ok(data) => Ok(data),
        Err(ReadError::InRemoteTier(r)) => {
            let reader = remote.ok_or(ShareReadError::Remote)?;
            let read_committed = isolation == Isolation::ReadCommitted;
            let batches = reader
                .read(&r, max_bytes, true, read_committed)
                .await
                .map_err(|e| {
                    tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e,
                        "share fetch from the remote tier failed");
                    ShareReadError::Remote
                })?;
            Ok(FetchData {
                records: batches.records,
                high_watermark: r.high_watermark,
                log_start_offset: r.log_start_offset,
                last_stable_offset: r.last_stable_offset,
                aborted_transactions: batches.aborted,
            })
        }
        Err(e) => Err(ShareReadError::Local(e)),
    }
}

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
pub(super) async fn covering(
    partition: &Partition,
    remote: Option<&RemoteReader>,
    ranges: &[AcquiredRange],
    fresh: Bytes,
    max_bytes: usize,
) -> Result<Bytes, ShareReadError> {
    let mut batches: Vec<(i64, i64, Bytes)> = Vec::new();
    add_wanted(&mut batches, ranges, &fresh);
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
            let data = match read_log(
                partition,
                remote,
                offset,
                max_bytes,
                Isolation::ReadUncommitted,
            )
            .await
            {
                Ok(d) => d,
                // Gone with retention since it was acquired: the client acknowledges a gap.
                Err(ShareReadError::Local(ReadError::OutOfRange { .. })) => break,
                Err(e) => return Err(e),
            };
            if data.records.is_empty() {
                break;
            }
            let before = batches.len();
            add_wanted(&mut batches, ranges, &data.records);
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

/// Adds the batches of `records` that hold an offset of `ranges` and are not there yet.
fn add_wanted(batches: &mut Vec<(i64, i64, Bytes)>, ranges: &[AcquiredRange], records: &Bytes) {
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
}
