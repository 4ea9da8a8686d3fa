//! A partition's mutable state, held under its log lock: the local log and what the
//! partition layers on it (log start offset, producers, transactions, configuration).

use std::collections::BTreeMap;

use sluice_config::TopicConfig;

use super::aborted::AbortedIndex;
use super::local_log::LocalLog;
use crate::producers::ProducerStates;

/// Everything one partition changes under its log lock.
pub(super) struct LogState {
    /// The segment files.
    pub(super) local: LocalLog,
    /// Offsets below it are deleted (retention, DeleteRecords) or about to be.
    pub(super) log_start_offset: i64,
    /// Idempotent and transactional producers' state.
    pub(super) producers: ProducerStates,
    /// Largest timestamp appended so far; the time index records each new maximum.
    pub(super) max_timestamp: i64,
    /// Messages appended since the last flush, for `flush.messages`.
    pub(super) unflushed_messages: u64,
    /// The topic configuration in force.
    pub(super) config: TopicConfig,
    /// Open transactions: first offset → producer id. The first is the LSO.
    pub(super) ongoing_txns: BTreeMap<i64, i64>,
    /// Aborted transactions, for read-committed fetches.
    pub(super) aborted_txns: AbortedIndex,
}

impl LogState {
    /// The log end offset, which on a single node is also the high watermark.
    pub(super) fn log_end_offset(&self) -> i64 {
        self.local.log_end_offset
    }

    /// The first offset of the oldest open transaction, else the log end offset.
    pub(super) fn last_stable_offset(&self) -> i64 {
        let leo = self.log_end_offset();
        self.ongoing_txns
            .keys()
            .next()
            .map_or(leo, |first| (*first).clamp(self.log_start_offset, leo))
    }
}
