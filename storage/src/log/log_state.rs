//! A partition's mutable state, held under its log lock: the local log and what the
//! partition layers on it (log start offset, producers, transactions, configuration).

use std::collections::BTreeMap;

use sluice_config::TopicConfig;

use super::aborted::AbortedIndex;
use super::epoch_cache::EpochCache;
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
    /// Offsets below it are replicated to the whole ISR; consumers read only below it.
    pub(super) high_watermark: i64,
    /// Whether the high watermark moves only by `advance_high_watermark` (a replica of a
    /// replicated partition) rather than with the log end offset (a single node).
    pub(super) replicated: bool,
    /// The high watermark checkpointed last (replicated mode), -1 if none.
    pub(super) checkpointed_high_watermark: i64,
    /// The leader-epoch cache.
    pub(super) epochs: EpochCache,
    /// How many truncations the log has had, so a flush racing one claims nothing.
    pub(super) truncations: u64,
    /// The remote tier's segments (tiered storage).
    pub(super) remote: super::tiered::RemoteLog,
}

impl LogState {
    /// The log end offset: the offset the next batch gets.
    pub(super) fn log_end_offset(&self) -> i64 {
        self.local.log_end_offset
    }

    /// Moves the log end offset; on a single node the high watermark follows it.
    pub(super) fn set_log_end_offset(&mut self, leo: i64) {
        self.local.log_end_offset = leo;
        if !self.replicated {
            self.high_watermark = leo;
        } else {
            self.high_watermark = self.high_watermark.min(leo);
        }
    }

    /// The first offset of the oldest open transaction, else the log end offset; never
    /// above the high watermark (Kafka's LSO is bounded by it).
    pub(super) fn last_stable_offset(&self) -> i64 {
        let leo = self.log_end_offset();
        let unstable = self
            .ongoing_txns
            .keys()
            .next()
            .map_or(leo, |first| (*first).clamp(self.log_start_offset, leo));
        unstable.min(self.high_watermark.max(self.log_start_offset))
    }
}
