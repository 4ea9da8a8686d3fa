//! Idempotent producer state of one partition: the last five batches per producer id,
//! used to drop duplicates and reject sequence gaps as Kafka's ProducerStateManager does.

use std::collections::{HashMap, VecDeque};

use sluice_protocol::batch::BatchHeader;

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

    /// Records an appended batch (whose header carries its assigned base offset).
    pub(crate) fn record(&mut self, h: &BatchHeader) -> &ProducerEntry {
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = h.producer_epoch;
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
}

impl ProducerEntry {
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
        Some(ProducerEntry {
            epoch,
            batches,
            last_timestamp,
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

    #[test]
    fn entry_round_trips() {
        let mut s = ProducerStates::default();
        s.record(&header(1, 0, 0, 3, 10));
        let e = s.record(&header(1, 0, 3, 1, 13)).clone();
        assert_eq!(ProducerEntry::decode(&e.encode()), Some(e));
    }
}
