//! Idempotent and transactional producer state of one partition: the last five batches
//! per producer id, used to drop duplicates and reject sequence gaps, and the first offset
//! of each producer's open transaction, as Kafka's ProducerStateManager keeps them.

use std::collections::{HashMap, VecDeque};

use sluice_protocol::batch::{BatchHeader, ControlType};

/// How many recent batches per producer are remembered for duplicate detection.
pub const MAX_CACHED_BATCHES: usize = 5;

/// One remembered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
}

/// State of one producer id on one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub(crate) epoch: i16,
    pub(crate) batches: VecDeque<BatchMetadata>,
    pub(crate) last_timestamp: i64,
    /// First offset of the producer's open transaction on this partition.
    pub(crate) txn_first_offset: Option<i64>,
    /// Coordinator epoch of the last transaction marker, -1 before any.
    pub(crate) coordinator_epoch: i32,
}

/// A transaction that a marker just ended on this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    /// Offset of the marker.
    pub(crate) last_offset: i64,
    pub(crate) aborted: bool,
}

/// What the sequence check decided for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Append it.
    Append,
    /// Already appended: answer with the original offsets.
    Duplicate { base_offset: i64, last_offset: i64 },
}

/// Why a batch of an idempotent producer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// The epoch is older than the one the partition has seen (INVALID_PRODUCER_EPOCH).
    #[error("producer epoch {got} is older than current epoch {current}")]
    StaleEpoch {
        /// Epoch in the batch.
        got: i16,
        /// Epoch on record.
        current: i16,
    },
    /// The sequence does not follow the last one (OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error("out of order sequence number: expected {expected}, got {got}")]
    OutOfOrder {
        /// The next sequence expected.
        expected: i32,
        /// The first sequence of the batch.
        got: i32,
    },
    /// A non-transactional batch from a producer with an open transaction
    /// (INVALID_TXN_STATE).
    #[error("producer {0} has an open transaction; its batches must be transactional")]
    NotTransactional(i64),
    /// A marker from a transaction coordinator older than one that wrote a marker for the
    /// producer here before (TRANSACTION_COORDINATOR_FENCED).
    #[error("coordinator epoch {got} is older than coordinator epoch {current}")]
    StaleCoordinator {
        /// Coordinator epoch of the marker.
        got: i32,
        /// Coordinator epoch on record.
        current: i32,
    },
}

/// Producer state of one partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerStates {
    pub(crate) producers: HashMap<i64, ProducerEntry>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStates {
    /// Checks a batch against the producer's state without changing it.
    pub(crate) fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, SequenceError> {
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Unknown producer (new, or its state was removed with the data): any sequence.
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch {
                got: h.producer_epoch,
                current: entry.epoch,
            });
        }
        if !h.is_transactional() && entry.txn_first_offset.is_some() {
            return Err(SequenceError::NotTransactional(h.producer_id));
        }
        // A batch without a sequence is a coordinator's (transactional offset commits):
        // only its epoch is checked, as Kafka does for the coordinator's appends.
        if h.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
        }
        if h.producer_epoch > entry.epoch {
            if h.base_sequence != 0 {
                return Err(SequenceError::OutOfOrder {
                    expected: 0,
                    got: h.base_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            return Ok(SequenceCheck::Duplicate {
                base_offset: dup.base_offset,
                last_offset: dup.last_offset,
            });
        }
        let expected = entry
            .batches
            .back()
            .map(|b| next_seq(b.last_seq))
            .unwrap_or(0);
        if entry.batches.is_empty() || h.base_sequence == expected {
            Ok(SequenceCheck::Append)
        } else {
            Err(SequenceError::OutOfOrder {
                expected,
                got: h.base_sequence,
            })
        }
    }

    /// Checks a transaction marker: neither its producer epoch nor its coordinator epoch
    /// may be older than the ones on record for the producer.
    pub(crate) fn check_marker(
        &self,
        h: &BatchHeader,
        coordinator_epoch: i32,
    ) -> Result<(), SequenceError> {
        match self.producers.get(&h.producer_id) {
            Some(entry) if h.producer_epoch < entry.epoch => Err(SequenceError::StaleEpoch {
                got: h.producer_epoch,
                current: entry.epoch,
            }),
            Some(entry) if coordinator_epoch < entry.coordinator_epoch => {
                Err(SequenceError::StaleCoordinator {
                    got: coordinator_epoch,
                    current: entry.coordinator_epoch,
                })
            }
            _ => Ok(()),
        }
    }

    /// Records an appended data batch (whose header carries its assigned base offset); a
    /// transactional batch opens the producer's transaction if none is open.
    pub(crate) fn record(&mut self, h: &BatchHeader) -> &ProducerEntry {
        let entry = self.entry(h);
        if h.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(h.base_offset);
        }
        if h.base_sequence >= 0 {
            entry.batches.push_back(BatchMetadata {
                first_seq: h.base_sequence,
                last_seq: h.last_sequence(),
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
            });
            while entry.batches.len() > MAX_CACHED_BATCHES {
                entry.batches.pop_front();
            }
        }
        entry.last_timestamp = h.max_timestamp;
        entry
    }

    /// Records an appended transaction marker: the producer's open transaction (if any)
    /// ends at the marker's offset.
    pub(crate) fn record_marker(
        &mut self,
        h: &BatchHeader,
        control: ControlType,
        coordinator_epoch: i32,
    ) -> (&ProducerEntry, Option<CompletedTxn>) {
        let entry = self.entry(h);
        entry.last_timestamp = h.max_timestamp;
        entry.coordinator_epoch = coordinator_epoch;
        let completed = entry
            .txn_first_offset
            .take()
            .map(|first_offset| CompletedTxn {
                producer_id: h.producer_id,
                first_offset,
                last_offset: h.base_offset,
                aborted: control == ControlType::Abort,
            });
        (entry, completed)
    }

    /// Producer ids whose state has expired at `now_ms`: as Kafka's ProducerStateManager
    /// decides it, no open transaction and `expiration_ms` passed since the timestamp of
    /// the producer's last batch or marker.
    pub(crate) fn expired(&self, now_ms: i64, expiration_ms: i64) -> Vec<i64> {
        self.producers
            .iter()
            .filter(|(_, e)| e.is_expired(now_ms, expiration_ms))
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// Forgets these producer ids.
    pub(crate) fn remove(&mut self, pids: &[i64]) {
        for pid in pids {
            self.producers.remove(pid);
        }
        // A burst of short-lived producers must not pin its peak table size forever.
        if self.producers.capacity() > 4 * self.producers.len().max(16) {
            self.producers.shrink_to_fit();
        }
    }

    /// The producer's entry, its batches forgotten when the epoch changes.
    fn entry(&mut self, h: &BatchHeader) -> &mut ProducerEntry {
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                coordinator_epoch: -1,
                ..ProducerEntry::default()
            });
        if h.producer_epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = h.producer_epoch;
        }
        entry
    }
}

impl ProducerEntry {
    /// Kafka's `isProducerExpired`: a producer inside a transaction never expires.
    fn is_expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        self.txn_first_offset.is_none()
            && now_ms.saturating_sub(self.last_timestamp) >= expiration_ms
    }

    /// Serialised form stored in RocksDB.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(2 + 8 + 1 + self.batches.len() * 24);
        v.extend_from_slice(&self.epoch.to_be_bytes());
        v.extend_from_slice(&self.last_timestamp.to_be_bytes());
        v.push(self.batches.len() as u8);
        for b in &self.batches {
            v.extend_from_slice(&b.first_seq.to_be_bytes());
            v.extend_from_slice(&b.last_seq.to_be_bytes());
            v.extend_from_slice(&b.base_offset.to_be_bytes());
            v.extend_from_slice(&b.last_offset.to_be_bytes());
        }
        v.extend_from_slice(&self.txn_first_offset.unwrap_or(-1).to_be_bytes());
        v.extend_from_slice(&self.coordinator_epoch.to_be_bytes());
        v
    }

    /// Parses [`ProducerEntry::encode`]; `None` if the bytes are malformed.
    pub(crate) fn decode(v: &[u8]) -> Option<Self> {
        let epoch = i16::from_be_bytes(v.get(0..2)?.try_into().ok()?);
        let last_timestamp = i64::from_be_bytes(v.get(2..10)?.try_into().ok()?);
        let n = *v.get(10)? as usize;
        let mut batches = VecDeque::with_capacity(n);
        for i in 0..n {
            let b = v.get(11 + i * 24..11 + (i + 1) * 24)?;
            batches.push_back(BatchMetadata {
                first_seq: i32::from_be_bytes(b[0..4].try_into().ok()?),
                last_seq: i32::from_be_bytes(b[4..8].try_into().ok()?),
                base_offset: i64::from_be_bytes(b[8..16].try_into().ok()?),
                last_offset: i64::from_be_bytes(b[16..24].try_into().ok()?),
            });
        }
        // Entries written before transactions existed end here.
        let tail = 11 + n * 24;
        let (txn_first_offset, coordinator_epoch) = match v.get(tail..tail + 12) {
            Some(t) => (
                i64::from_be_bytes(t[0..8].try_into().ok()?),
                i32::from_be_bytes(t[8..12].try_into().ok()?),
            ),
            None => (-1, -1),
        };
        Some(ProducerEntry {
            epoch,
            batches,
            last_timestamp,
            txn_first_offset: (txn_first_offset >= 0).then_some(txn_first_offset),
            coordinator_epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, n: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 49,
            partition_leader_epoch: 0,
            crc: 0,
            attributes: 0,
            last_offset_delta: n - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: n,
        }
    }

    #[test]
    fn in_order_duplicate_and_gap() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(&header(1, 0, 0, 3, 0)), Ok(SequenceCheck::Append));
        s.record(&header(1, 0, 0, 3, 0));
        assert_eq!(s.check(&header(1, 0, 3, 2, 3)), Ok(SequenceCheck::Append));
        s.record(&header(1, 0, 3, 2, 3));
        assert_eq!(
            s.check(&header(1, 0, 0, 3, 99)),
            Ok(SequenceCheck::Duplicate {
                base_offset: 0,
                last_offset: 2
            })
        );
        assert_eq!(
            s.check(&header(1, 0, 7, 1, 99)),
            Err(SequenceError::OutOfOrder {
                expected: 5,
                got: 7
            })
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..6 {
            s.record(&header(1, 0, i, 1, i as i64));
        }
        // seq 0 fell out of the cache: it is neither a known duplicate nor the next sequence.
        assert!(matches!(
            s.check(&header(1, 0, 0, 1, 9)),
            Err(SequenceError::OutOfOrder { .. })
        ));
        assert!(matches!(
            s.check(&header(1, 0, 1, 1, 9)),
            Ok(SequenceCheck::Duplicate { .. })
        ));
    }

    #[test]
    fn epochs_fence_and_reset() {
        let mut s = ProducerStates::default();
        s.record(&header(1, 2, 0, 1, 0));
        assert_eq!(
            s.check(&header(1, 1, 1, 1, 1)),
            Err(SequenceError::StaleEpoch { got: 1, current: 2 })
        );
        assert!(matches!(
            s.check(&header(1, 3, 5, 1, 1)),
            Err(SequenceError::OutOfOrder { .. })
        ));
        assert_eq!(s.check(&header(1, 3, 0, 1, 1)), Ok(SequenceCheck::Append));
    }

    fn txn(mut h: BatchHeader) -> BatchHeader {
        h.attributes |= 0x10;
        h
    }

    fn marker(pid: i64, epoch: i16, offset: i64) -> BatchHeader {
        let mut h = header(pid, epoch, -1, 1, offset);
        h.attributes = 0x30;
        h
    }

    #[test]
    fn transactions_open_on_data_and_end_on_markers() {
        let mut s = ProducerStates::default();
        s.record(&txn(header(1, 0, 0, 2, 10)));
        s.record(&txn(header(1, 0, 2, 1, 14)));
        assert_eq!(s.producers[&1].txn_first_offset, Some(10));
        // A plain batch from a producer inside a transaction is refused.
        assert_eq!(
            s.check(&header(1, 0, 3, 1, 20)),
            Err(SequenceError::NotTransactional(1))
        );
        let (_, done) = s.record_marker(&marker(1, 0, 15), ControlType::Abort, 4);
        assert_eq!(
            done,
            Some(CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 15,
                aborted: true
            })
        );
        assert_eq!(s.producers[&1].txn_first_offset, None);
        // A marker with no open transaction completes nothing.
        assert_eq!(
            s.record_marker(&marker(1, 0, 16), ControlType::Commit, 4).1,
            None
        );
        // A marker with a bumped epoch fences the old epoch.
        s.record_marker(&marker(1, 1, 17), ControlType::Abort, 4);
        assert!(matches!(
            s.check(&txn(header(1, 0, 3, 1, 18))),
            Err(SequenceError::StaleEpoch { got: 0, current: 1 })
        ));
        assert!(s.check_marker(&marker(1, 0, 18), 0).is_err());
        assert_eq!(
            s.check(&txn(header(1, 1, 0, 1, 18))),
            Ok(SequenceCheck::Append)
        );
    }

    fn at(mut h: BatchHeader, timestamp: i64) -> BatchHeader {
        h.max_timestamp = timestamp;
        h
    }

    #[test]
    fn idle_producers_expire_by_their_last_batch_timestamp_unless_in_a_transaction() {
        let mut s = ProducerStates::default();
        s.record(&at(header(1, 0, 0, 1, 0), 1_000));
        // A later batch with an older timestamp: the last batch's timestamp counts.
        s.record(&at(header(2, 0, 0, 1, 1), 5_000));
        s.record(&at(header(2, 0, 1, 1, 2), 2_000));
        s.record(&at(txn(header(3, 0, 0, 1, 3)), 0));
        assert_eq!(s.expired(2_000, 1_000), vec![1]);
        let mut both = s.expired(3_000, 1_000);
        both.sort_unstable();
        assert_eq!(both, vec![1, 2]);
        s.remove(&both);
        assert_eq!(s.producers.keys().copied().collect::<Vec<_>>(), vec![3]);
        // Once its transaction ends, the marker's timestamp is the last use.
        s.record_marker(&at(marker(3, 0, 4), 10_000), ControlType::Commit, 0);
        assert!(s.expired(10_999, 1_000).is_empty());
        assert_eq!(s.expired(11_000, 1_000), vec![3]);
        // An expired producer starts afresh: sequence 0 is appended, not a duplicate.
        s.remove(&[3]);
        assert_eq!(s.check(&header(3, 0, 0, 1, 5)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn entries_without_transaction_fields_still_decode() {
        let mut s = ProducerStates::default();
        let e = s.record(&header(1, 0, 0, 3, 10)).clone();
        let old_format = &e.encode()[..11 + 24];
        let decoded = ProducerEntry::decode(old_format).unwrap();
        assert_eq!(decoded.txn_first_offset, None);
        assert_eq!(decoded.batches, e.batches);
    }

    #[test]
    fn entry_round_trips() {
        let mut s = ProducerStates::default();
        s.record(&header(1, 0, 0, 3, 10));
        let e = s.record(&header(1, 0, 3, 1, 13)).clone();
        assert_eq!(ProducerEntry::decode(&e.encode()), Some(e));
        let t = s.record(&txn(header(2, 0, 0, 1, 14))).clone();
        assert_eq!(t.txn_first_offset, Some(14));
        assert_eq!(ProducerEntry::decode(&t.encode()), Some(t));
    }
}
