//! Reading the partitions of a consumer's fetch within the response's byte budget.

use bytes::Bytes;
use sluice_storage::{
    AbortedTxn, FileRegion, Isolation, Partition, ReadError, RemoteRead, StorageError,
};

use super::Target;
use crate::error::{read_error_code, NONE};

/// What the read of one partition gave.
pub(super) struct ReadResult {
    pub(super) error_code: i16,
    pub(super) high_watermark: i64,
    pub(super) log_start_offset: i64,
    pub(super) last_stable_offset: i64,
    pub(super) aborted: Vec<AbortedTxn>,
    pub(super) records: Option<FileRegion>,
    /// Records read from the remote tier (tiered storage), sent from memory.
    pub(super) remote_records: Option<Bytes>,
    /// A read the remote tier must do: where, with what byte budget, and whether the first
    /// batch goes even if it is larger (KIP-74).
    pub(super) remote: Option<(Box<RemoteRead>, usize, bool)>,
}

impl ReadResult {
    /// The partition's offsets with `error_code` and no records.
    fn without_records(p: &Partition, error_code: i16) -> Self {
        ReadResult {
            error_code,
            high_watermark: p.high_watermark(),
            log_start_offset: p.log_start_offset(),
            last_stable_offset: p.last_stable_offset(),
            aborted: Vec::new(),
            records: None,
            remote_records: None,
            remote: None,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.records.as_ref().map_or(0, FileRegion::len)
            + self.remote_records.as_ref().map_or(0, Bytes::len)
    }
}

/// Reads every target within the response's byte budget. Only the first partition with
/// data may exceed its limits, and only by its first batch (KIP-74).
pub(super) fn read_all(
    targets: &[Target],
    max_bytes: usize,
    isolation: Isolation,
) -> Vec<ReadResult> {
    let mut used = 0usize;
    targets
        .iter()
        .map(|t| {
            let Some(p) = &t.partition else {
                return ReadResult {
                    error_code: t.error.unwrap_or(NONE),
                    high_watermark: -1,
                    log_start_offset: -1,
                    last_stable_offset: -1,
                    aborted: Vec::new(),
                    records: None,
                    remote_records: None,
                    remote: None,
                };
            };
            if t.preferred_read_replica.is_some() {
                // Kafka's answer naming another replica: the offsets, no records.
                return ReadResult::without_records(p, NONE);
            }
            let budget = (t.max_bytes.max(0) as usize).min(max_bytes.saturating_sub(used));
            match p.read_region(t.fetch_offset, budget, isolation) {
                Ok(data) => {
                    let mut records = data.records;
                    let mut aborted = data.aborted_transactions;
                    let len = records.as_ref().map_or(0, FileRegion::len);
                    if used > 0 && len > budget {
                        records = None;
                        aborted.clear();
                    } else {
                        used += len;
                    }
                    ReadResult {
                        error_code: NONE,
                        high_watermark: data.high_watermark,
                        log_start_offset: data.log_start_offset,
                        last_stable_offset: data.last_stable_offset,
                        aborted,
                        records,
                        remote_records: None,
                        remote: None,
                    }
                }
                // Below the local log start: the remote tier reads it after the long poll.
                Err(ReadError::InRemoteTier(r)) => ReadResult {
                    error_code: NONE,
                    high_watermark: r.high_watermark,
                    log_start_offset: r.log_start_offset,
                    last_stable_offset: r.last_stable_offset,
                    aborted: Vec::new(),
                    records: None,
                    remote_records: None,
                    remote: Some((r, budget, used == 0)),
                },
                Err(ReadError::OutOfRange { .. })
                    if t.empty_beyond_log_end && t.fetch_offset > p.log_end_offset() =>
                {
                    ReadResult::without_records(p, NONE)
                }
                Err(e) => {
                    // An offline data directory was logged once, when it failed.
                    if matches!(&e, ReadError::Storage(s) if !matches!(s, StorageError::LogDirOffline(_))) {
                        tracing::error!(topic = %p.topic, partition = p.index, error = %e, "fetch read failed");
                    } else {
                        tracing::debug!(topic = %p.topic, partition = p.index, error = %e, "fetch read refused");
                    }
                    ReadResult::without_records(p, read_error_code(&e))
                }
            }
        })
        .collect()
}
