//! The leader-epoch cache: for each leader epoch the offset its first batch got, as
//! Kafka's LeaderEpochFileCache keeps it. Followers truncate by it (OffsetForLeaderEpoch).

use crate::StorageError;

/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
pub(super) const UNDEFINED: (i32, i64) = (-1, -1);

/// (epoch, start offset) entries, oldest first; both strictly increase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct EpochCache {
    entries: Vec<(i32, i64)>,
}

impl EpochCache {
    /// The entries, oldest first.
    pub(super) fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// The latest epoch, if any.
    pub(super) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// Kafka's `assign`: records that `epoch` starts at `start_offset` unless the latest
    /// entry already is that epoch at or before it; entries that would break monotonicity
    /// (epoch at or above, or start at or after the new one) go first. Returns whether the
    /// cache changed. Negative epochs (batches never stamped) are ignored.
    pub(super) fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if let Some(&(e, s)) = self.entries.last() {
            if e == epoch && start_offset >= s {
                return false;
            }
        }
        while let Some(&(e, s)) = self.entries.last() {
            if e >= epoch || s >= start_offset {
                self.entries.pop();
            } else {
                break;
            }
        }
        self.entries.push((epoch, start_offset));
        true
    }

    /// Kafka's `endOffsetFor(requested, logEndOffset)`.
    pub(super) fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED.0 {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(&(_, higher_start)) = self.entries.iter().find(|(e, _)| *e > requested) else {
            return UNDEFINED;
        };
        match self.entries.iter().rev().find(|(e, _)| *e <= requested) {
            Some(&(floor, _)) => (floor, higher_start),
            None => (requested, higher_start),
        }
    }

    /// Kafka's `truncateFromEnd`: removes entries starting at or after `end_offset`.
    pub(super) fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        while self.entries.last().is_some_and(|e| e.1 >= end_offset) {
            self.entries.pop();
        }
        before != self.entries.len()
    }

    /// Kafka's `truncateFromStart`: entries starting at or before `start_offset` go, the
    /// last of them kept with its start moved to `start_offset`.
    pub(super) fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let removed = self
            .entries
            .iter()
            .take_while(|e| e.1 <= start_offset)
            .count();
        if removed == 0 {
            return false;
        }
        let epoch = self.entries[removed - 1].0;
        let changed = removed > 1 || self.entries[0].1 != start_offset;
        self.entries.drain(..removed);
        self.entries.insert(0, (epoch, start_offset));
        changed
    }

    /// The stored form: 12 bytes per entry, epoch then start offset, big-endian.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.entries.len() * 12);
        for (e, s) in &self.entries {
            v.extend_from_slice(&e.to_be_bytes());
            v.extend_from_slice(&s.to_be_bytes());
        }
        v
    }

    /// Parses [`EpochCache::encode`].
    pub(super) fn decode(v: &[u8]) -> Result<Self, StorageError> {
        if !v.len().is_multiple_of(12) {
            return Err(StorageError::Corrupt("leader epoch cache".into()));
        }
        let entries = v
            .chunks_exact(12)
            .map(|c| {
                let mut e = [0u8; 4];
                let mut s = [0u8; 8];
                e.copy_from_slice(&c[..4]);
                s.copy_from_slice(&c[4..]);
                (i32::from_be_bytes(e), i64::from_be_bytes(s))
            })
            .collect();
        Ok(EpochCache { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> EpochCache {
        let mut c = EpochCache::default();
        for (e, s) in entries {
            assert!(c.assign(*e, *s));
        }
        c
    }

    // The cases of Kafka's LeaderEpochFileCacheTest.
    #[test]
    fn end_offset_for_follows_kafka() {
        let c = cache(&[(2, 6), (4, 15), (6, 20)]);
        // The latest epoch: the log end offset.
        assert_eq!(c.end_offset_for(6, 25), (6, 25));
        // Epoch 4 ends where epoch 6 starts.
        assert_eq!(c.end_offset_for(4, 25), (4, 20));
        // Epoch 5 is unknown: the largest epoch below (4) and the start of the next (6).
        assert_eq!(c.end_offset_for(5, 25), (4, 20));
        // Below every epoch: the requested epoch and the first start offset.
        assert_eq!(c.end_offset_for(1, 25), (1, 6));
        // Above every epoch, undefined, or an empty cache: undefined.
        assert_eq!(c.end_offset_for(7, 25), UNDEFINED);
        assert_eq!(c.end_offset_for(-1, 25), UNDEFINED);
        assert_eq!(EpochCache::default().end_offset_for(0, 25), UNDEFINED);
    }

    #[test]
    fn assign_keeps_epochs_and_offsets_increasing() {
        let mut c = cache(&[(2, 6), (4, 15)]);
        assert!(!c.assign(4, 17), "same epoch later: no new entry");
        assert!(c.assign(4, 12), "same epoch earlier replaces it");
        assert_eq!(c.entries(), &[(2, 6), (4, 12)]);
        assert!(c.assign(3, 20), "a lower epoch removes the higher ones");
        assert_eq!(c.entries(), &[(2, 6), (3, 20)]);
        assert!(c.assign(5, 4), "an earlier start removes the later entries");
        assert_eq!(c.entries(), &[(5, 4)]);
        assert!(!c.assign(-1, 30));
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut c = cache(&[(2, 6), (4, 15), (6, 20)]);
        assert!(c.truncate_from_end(15));
        assert_eq!(c.entries(), &[(2, 6)]);
        let mut c = cache(&[(2, 6), (4, 15), (6, 20)]);
        assert!(!c.truncate_from_end(21));
        assert!(c.truncate_from_start(16));
        assert_eq!(c.entries(), &[(4, 16), (6, 20)]);
        assert!(!c.truncate_from_start(16));
        assert!(!c.truncate_from_start(3));
        assert_eq!(EpochCache::decode(&c.encode()).unwrap(), c);
    }
}
