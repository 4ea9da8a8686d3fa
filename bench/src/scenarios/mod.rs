//! The named scenarios and what they share.

pub(crate) mod consume;
pub(crate) mod group_churn;
pub(crate) mod latency;
pub(crate) mod limits;
pub(crate) mod offset_commit;
pub(crate) mod partitions;
pub(crate) mod produce;
pub(crate) mod replication;
pub(crate) mod schema_validation;
pub(crate) mod share;
pub(crate) mod tiered;

use crate::args::Args;
use crate::report::Row;
use crate::target::Target;

/// What a scenario runs with.
pub(crate) struct Ctx<'a> {
    /// The command line (already shrunk by `--smoke`).
    pub(crate) args: &'a Args,
    /// Where brokers come from.
    pub(crate) target: &'a Target,
    /// Rows of the scenarios run before this one (the latency scenario reads produce's).
    pub(crate) earlier: &'a [Row],
}

/// A named scenario.
pub(crate) struct Scenario {
    /// The name `--scenario` selects.
    pub(crate) name: &'static str,
    /// One line for `--list`.
    pub(crate) about: &'static str,
    /// Runs every case; a case that goes wrong is a failed row, not an early return.
    pub(crate) run: fn(&Ctx<'_>) -> Vec<Row>,
}

/// Every scenario, in run order: the machine's limits first (a quiet machine), then the
/// produce matrix (whose maximum the latency scenario paces itself by).
pub(crate) const ALL: &[Scenario] = &[
    Scenario {
        name: "limits",
        about: "the machine's limits: loopback TCP (iperf3), sequential write, read and fdatasync (fio)",
        run: limits::run,
    },
    Scenario {
        name: "produce",
        about: "produce throughput: 1KiB/100B x 1/16 partitions x acks=1/all x no flush/fsync x none/lz4",
        run: produce::run,
    },
    Scenario {
        name: "latency",
        about: "end-to-end latency p50/p99/p99.9 at 50% (and 10%) of the maximum produce rate (1KiB, 1 partition, acks=1)",
        run: latency::run,
    },
    Scenario {
        name: "consume",
        about: "consume throughput from one full partition, page cache warm and cold",
        run: consume::run,
    },
    Scenario {
        name: "partitions",
        about: "10,000 and 100,000 partitions: broker RSS, metadata latency, start-up after a clean stop and kill -9",
        run: partitions::run,
    },
    Scenario {
        name: "replication",
        about: "a three-broker cluster on etcd: throughput and one-at-a-time latency with 1 and 3 replicas, and the stall of a leader's kill -9 or clean stop",
        run: replication::run,
    },
    Scenario {
        name: "offset-commit",
        about: "synchronous offset commits of 1 and 4 groups, one after another: commits/s and latency",
        run: offset_commit::run,
    },
    Scenario {
        name: "share",
        about: "share groups: records/s of 1, 4 and 16 share consumers on one partition, implicit and explicit acknowledgement (needs python3 with confluent-kafka 2.16+ and kafka-python, or $SLUICE_BENCH_PYTHON)",
        run: share::run,
    },
    Scenario {
        name: "tiered",
        about: "tiered storage: upload throughput to the remote tier, then reads from offset 0 cold (object store) and warm (read cache); S3 when SLUICE_BENCH_S3_ENDPOINT/_BUCKET/_ACCESS_KEY/_SECRET_KEY are set, else a directory",
        run: tiered::run,
    },
    Scenario {
        name: "schema-validation",
        about: "broker-side schema validation: produce rec/s to a topic with confluent.value.schema.validation=true and to one without (1KiB/100B x none/lz4)",
        run: schema_validation::run,
    },
    Scenario {
        name: "group-churn",
        about: "rebalance time of a 10-member group after a member leaves (classic eager, cooperative-sticky, KIP-848)",
        run: group_churn::run,
    },
];

/// The scenarios `patterns` select (all when there are none), or the patterns that select nothing.
pub(crate) fn select(patterns: &[String]) -> Result<Vec<&'static Scenario>, Vec<String>> {
    if patterns.is_empty() {
        return Ok(ALL.iter().collect());
    }
    let unmatched: Vec<String> = patterns
        .iter()
        .filter(|p| !ALL.iter().any(|s| glob_match(p, s.name)))
        .cloned()
        .collect();
    if !unmatched.is_empty() {
        return Err(unmatched);
    }
    Ok(ALL
        .iter()
        .filter(|s| patterns.iter().any(|p| glob_match(p, s.name)))
        .collect())
}

/// Shell-style matching of `*` (any run) and `?` (one character).
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and the text position it currently absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Runs `case`, turning an error into a failed row named `name`.
pub(crate) fn case(
    scenario: &str,
    name: &str,
    case: impl FnOnce(&mut Row) -> anyhow::Result<()>,
) -> Row {
    let mut row = Row::new(scenario, name);
    match case(&mut row) {
        Ok(()) => row,
        Err(e) => row.fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("produce", "produce"));
        assert!(glob_match("prod*", "produce"));
        assert!(glob_match("*", "group-churn"));
        assert!(glob_match("g?oup-*", "group-churn"));
        assert!(glob_match("1KiB p1 *", "1KiB p1 acks=1 none none"));
        assert!(!glob_match("1KiB p1 *", "1KiB p16 acks=1 none none"));
        assert!(!glob_match("prod", "produce"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
    }

    #[test]
    fn selection() {
        let names = |s: Vec<&Scenario>| s.iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(
            select(&[]).map(names).map(|n| n.len()).ok(),
            Some(ALL.len())
        );
        assert_eq!(
            select(&["lat*".into(), "produce".into()]).map(names).ok(),
            Some(vec!["produce", "latency"])
        );
        assert_eq!(
            select(&["nope".into()]).err(),
            Some(vec!["nope".to_string()])
        );
    }
}
