//! The aborted transactions of one partition, as read-committed fetches list them.

use std::collections::BTreeMap;

use super::types::AbortedTxn;

/// Aborted transactions by the offset of their ABORT marker.
#[derive(Debug, Default)]
pub(crate) struct AbortedIndex {
    by_last_offset: BTreeMap<i64, AbortedTxn>,
    /// The widest `last_offset - first_offset` seen: bounds how far past a read's end a
    /// transaction that started inside the read can have ended.
    max_span: i64,
}

impl AbortedIndex {
    pub(crate) fn insert(&mut self, t: AbortedTxn) {
        self.max_span = self.max_span.max(t.last_offset - t.first_offset);
        self.by_last_offset.insert(t.last_offset, t);
    }

    /// Transactions with records in `[from, to)`: marker at or after `from`, first record
    /// before `to`.
    pub(crate) fn overlapping(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let scan_end = to.saturating_add(self.max_span);
        self.by_last_offset
            .range(from..=scan_end.max(from))
            .map(|(_, t)| *t)
            .filter(|t| t.first_offset < to)
            .collect()
    }

    /// Forgets transactions whose marker is at or after `offset` (a truncated tail).
    pub(crate) fn truncate_from(&mut self, offset: i64) {
        self.by_last_offset.split_off(&offset);
    }

    /// Forgets transactions whose marker is below `offset` (deleted with its segment).
    pub(crate) fn prune_below(&mut self, offset: i64) {
        self.by_last_offset = self.by_last_offset.split_off(&offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
        }
    }

    #[test]
    fn overlapping_finds_every_transaction_with_records_in_the_range() {
        let mut idx = AbortedIndex::default();
        idx.insert(t(1, 0, 5));
        idx.insert(t(2, 3, 100)); // long: began inside [4, 10), ended far after it
        idx.insert(t(3, 20, 25));
        let pids = |v: Vec<AbortedTxn>| v.into_iter().map(|t| t.producer_id).collect::<Vec<_>>();
        assert_eq!(pids(idx.overlapping(4, 10)), vec![1, 2]);
        assert_eq!(pids(idx.overlapping(6, 10)), vec![2]);
        assert_eq!(pids(idx.overlapping(6, 21)), vec![3, 2]);
        assert_eq!(pids(idx.overlapping(101, 200)), Vec::<i64>::new());
        idx.prune_below(26);
        assert_eq!(pids(idx.overlapping(0, 200)), vec![2]);
    }
}
