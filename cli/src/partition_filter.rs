//! `topic describe`'s partition reports, as kafka-topics.sh names them: partitions whose
//! ISR lacks a replica, that have no live leader, or whose ISR is below or at the topic's
//! `min.insync.replicas`.

use std::collections::BTreeMap;

use crate::error::CliError;
use crate::metadata::PartitionMeta;

/// Which partitions `topic describe` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartitionFilter {
    /// Every partition, under its topic's summary line.
    All,
    /// `--under-replicated-partitions`: the ISR is smaller than the replica list.
    UnderReplicated,
    /// `--unavailable-partitions`: no leader, or a leader that is not a live broker.
    Unavailable,
    /// `--under-min-isr-partitions`: no leader, or fewer in-sync replicas than
    /// `min.insync.replicas`.
    UnderMinIsr,
    /// `--at-min-isr-partitions`: exactly `min.insync.replicas` in-sync replicas.
    AtMinIsr,
}

impl PartitionFilter {
    /// The report the flags ask for; at most one may be given, as in kafka-topics.sh.
    pub(crate) fn from_flags(
        under_replicated: bool,
        unavailable: bool,
        under_min_isr: bool,
        at_min_isr: bool,
    ) -> Result<Self, CliError> {
        let chosen: Vec<PartitionFilter> = [
            (under_replicated, PartitionFilter::UnderReplicated),
            (unavailable, PartitionFilter::Unavailable),
            (under_min_isr, PartitionFilter::UnderMinIsr),
            (at_min_isr, PartitionFilter::AtMinIsr),
        ]
        .into_iter()
        .filter_map(|(on, f)| on.then_some(f))
        .collect();
        match chosen.as_slice() {
            [] => Ok(PartitionFilter::All),
            [one] => Ok(*one),
            _ => Err(CliError::Usage(
                "give at most one of --under-replicated-partitions, --unavailable-partitions, \
                 --under-min-isr-partitions and --at-min-isr-partitions"
                    .to_string(),
            )),
        }
    }

    /// Whether `p` belongs in the report; `live` are the brokers Metadata lists.
    pub(crate) fn keeps(
        self,
        p: &PartitionMeta,
        live: &BTreeMap<i32, String>,
        min_isr: i32,
    ) -> bool {
        let isr = p.isr.len();
        match self {
            PartitionFilter::All => true,
            PartitionFilter::UnderReplicated => isr < p.replicas.len(),
            PartitionFilter::Unavailable => p.leader < 0 || !live.contains_key(&p.leader),
            PartitionFilter::UnderMinIsr => p.leader < 0 || (isr as i32) < min_isr,
            PartitionFilter::AtMinIsr => isr as i32 == min_isr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionMeta {
        PartitionMeta {
            index: 0,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            error_code: 0,
        }
    }

    #[test]
    fn each_report_keeps_what_kafka_topics_keeps() {
        let live = BTreeMap::from([(1, "a:1".to_string()), (2, "b:1".to_string())]);
        let healthy = partition(1, &[1, 2], &[1, 2]);
        let shrunk = partition(1, &[1, 2, 3], &[1]);
        let leaderless = partition(-1, &[3], &[3]);
        let dead_leader = partition(3, &[3, 1], &[3]);
        use PartitionFilter::*;
        let kept = |f: PartitionFilter, min_isr| {
            [&healthy, &shrunk, &leaderless, &dead_leader]
                .iter()
                .map(|p| f.keeps(p, &live, min_isr))
                .collect::<Vec<_>>()
        };
        assert_eq!(kept(All, 1), [true, true, true, true]);
        assert_eq!(kept(UnderReplicated, 1), [false, true, false, true]);
        assert_eq!(kept(Unavailable, 1), [false, false, true, true]);
        assert_eq!(kept(UnderMinIsr, 2), [false, true, true, true]);
        assert_eq!(kept(UnderMinIsr, 1), [false, false, true, false]);
        assert_eq!(kept(AtMinIsr, 2), [true, false, false, false]);
        assert!(PartitionFilter::from_flags(true, true, false, false).is_err());
        assert_eq!(
            PartitionFilter::from_flags(false, false, false, true).ok(),
            Some(AtMinIsr)
        );
    }
}
