//! Operator views of the transaction coordinator: DescribeTransactions and
//! ListTransactions.

use sluice_storage::TxnState;

use super::TxnCoordinator;

/// One transactional id as DescribeTransactions reports it.
pub(crate) struct TxnView {
    pub(crate) state: TxnState,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) start_ms: i64,
    /// Partitions of the open transaction, sorted by topic then partition.
    pub(crate) partitions: Vec<(String, i32)>,
}

/// What ListTransactions asks for; empty lists match everything.
pub(crate) struct ListFilter<'a> {
    pub(crate) states: Vec<TxnState>,
    pub(crate) producer_ids: &'a [i64],
    /// Only transactions running longer than this (ms); negative for all.
    pub(crate) min_duration_ms: i64,
    pub(crate) id_pattern: Option<regex::Regex>,
}

impl TxnCoordinator {
    /// DescribeTransactions for one id; `None` when the id is unknown.
    pub(crate) fn describe(&self, id: &str) -> Option<TxnView> {
        let r = self.get(id)?;
        Some(TxnView {
            state: r.state,
            producer_id: r.producer_id,
            producer_epoch: r.producer_epoch,
            timeout_ms: r.timeout_ms,
            start_ms: r.start_ms,
            partitions: r.partitions,
        })
    }

    /// ListTransactions: (transactional id, producer id, state), sorted by id.
    pub(crate) fn list(&self, filter: &ListFilter<'_>) -> Vec<(String, i64, TxnState)> {
        let now = self.clock.now_ms();
        let mut out: Vec<_> = self
            .read()
            .by_id
            .iter()
            .filter(|(_, r)| filter.states.is_empty() || filter.states.contains(&r.state))
            .filter(|(_, r)| {
                filter.producer_ids.is_empty() || filter.producer_ids.contains(&r.producer_id)
            })
            .filter(|(_, r)| {
                filter.min_duration_ms < 0
                    || (r.start_ms >= 0 && now - r.start_ms > filter.min_duration_ms)
            })
            .filter(|(id, _)| filter.id_pattern.as_ref().is_none_or(|re| re.is_match(id)))
            .map(|(id, r)| (id.clone(), r.producer_id, r.state))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
