//! Transaction verification at a partition leader (KIP-890 part 1), as Kafka's
//! verification guard works: before the first transactional batch of a producer lands in a
//! partition, the leader asks the transaction coordinator whether the partition is in the
//! producer's open transaction. A marker for the producer written to the partition while
//! the question is out voids the answer, so a late batch can never start a transaction
//! that no coordinator knows of (a hanging transaction). Once a batch is appended, the
//! producer's later batches at the same epoch need no question until its next marker.

use std::collections::HashMap;
use std::sync::Mutex;

/// A producer in a partition.
type Key = (String, i32, i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// A question is out; its answer counts if this guard is still here.
    Asking(u64),
    /// Batches of this producer epoch belong to the open transaction.
    Verified(i16),
}

/// What the leader must do before appending a producer's transactional batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verification {
    /// Nothing: the producer's transaction is known to include the partition.
    Known,
    /// Ask the coordinator, then append with this guard.
    Ask(u64),
}

/// The verification state of every partition this broker leads.
#[derive(Default)]
pub(crate) struct TxnVerification {
    /// Held while appending a verified batch or a marker, so the two never interleave.
    entries: Mutex<(u64, HashMap<Key, Entry>)>,
}

impl TxnVerification {
    /// Whether a batch of the producer at `epoch` needs a question first.
    pub(crate) fn begin(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
    ) -> Verification {
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (next, entries) = &mut *guard;
        let key = (topic.to_string(), partition, producer_id);
        match entries.get(&key) {
            Some(Entry::Verified(e)) if *e == epoch => return Verification::Known,
            // Questions out together share a guard, as Kafka's verification entries do:
            // a marker voids them all.
            Some(Entry::Asking(id)) => return Verification::Ask(*id),
            _ => {}
        }
        *next += 1;
        let id = *next;
        entries.insert(key, Entry::Asking(id));
        Verification::Ask(id)
    }

    /// Runs `append` if the batch is verified: known, or asked with `guard` and no marker
    /// since. `None`: a marker came in between, and the batch must not be appended.
    pub(crate) fn append_if<T>(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        guard: Verification,
        append: impl FnOnce() -> T,
    ) -> Option<T> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let key = (topic.to_string(), partition, producer_id);
        let current = entries.1.get(&key).copied();
        let ok = match guard {
            Verification::Known => current == Some(Entry::Verified(epoch)),
            Verification::Ask(id) => {
                current == Some(Entry::Asking(id)) || current == Some(Entry::Verified(epoch))
            }
        };
        if !ok {
            return None;
        }
        let out = append();
        entries.1.insert(key, Entry::Verified(epoch));
        Some(out)
    }

    /// Runs `write` (a marker for the producer) and voids every verification of the
    /// producer in the partition.
    pub(crate) fn with_marker<T>(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        write: impl FnOnce() -> T,
    ) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let out = write();
        entries
            .1
            .remove(&(topic.to_string(), partition, producer_id));
        out
    }

    /// Forgets a question whose answer was no.
    pub(crate) fn refused(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        guard: Verification,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let key = (topic.to_string(), partition, producer_id);
        if let Verification::Ask(id) = guard {
            if entries.1.get(&key) == Some(&Entry::Asking(id)) {
                entries.1.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_producer_appends_until_its_marker() {
        let v = TxnVerification::default();
        let g = v.begin("t", 0, 7, 1);
        assert!(matches!(g, Verification::Ask(_)));
        assert_eq!(v.append_if("t", 0, 7, 1, g, || 1), Some(1));
        // Later batches of the same epoch need no question.
        let known = v.begin("t", 0, 7, 1);
        assert_eq!(known, Verification::Known);
        assert_eq!(v.append_if("t", 0, 7, 1, known, || 2), Some(2));
        // Another partition or epoch does.
        assert!(matches!(v.begin("t", 1, 7, 1), Verification::Ask(_)));
        v.with_marker("t", 0, 7, || ());
        assert!(matches!(v.begin("t", 0, 7, 1), Verification::Ask(_)));
    }

    #[test]
    fn a_marker_while_asking_voids_the_answer() {
        let v = TxnVerification::default();
        let g = v.begin("t", 0, 7, 1);
        v.with_marker("t", 0, 7, || ());
        assert_eq!(v.append_if("t", 0, 7, 1, g, || ()), None);
        // A known producer whose marker came is not known any more.
        let g = v.begin("t", 0, 7, 1);
        assert_eq!(v.append_if("t", 0, 7, 1, g, || ()), Some(()));
        v.with_marker("t", 0, 7, || ());
        assert_eq!(v.append_if("t", 0, 7, 1, Verification::Known, || ()), None);
    }

    #[test]
    fn questions_out_together_share_a_guard() {
        let v = TxnVerification::default();
        let first = v.begin("t", 0, 7, 1);
        let second = v.begin("t", 0, 7, 1);
        assert_eq!(first, second);
        assert_eq!(v.append_if("t", 0, 7, 1, first, || ()), Some(()));
        assert_eq!(v.append_if("t", 0, 7, 1, second, || ()), Some(()));
        let g = v.begin("t", 0, 8, 0);
        v.refused("t", 0, 8, g);
        assert_eq!(v.append_if("t", 0, 8, 0, g, || ()), None);
    }
}
