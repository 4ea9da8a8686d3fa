//! `sluice group reset-offsets`: plans new committed offsets for a group (dry run by
//! default) and commits them with `--execute`, as kafka-consumer-groups does; for a share
//! group, new share-partition start offsets (AlterShareGroupOffsets), as
//! kafka-share-groups does.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use sluice_protocol::names::error_name;

use crate::args::ResetArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::group_describe::describe_group;
use crate::offsets::{
    commit, committed, list_offsets, log_bounds, topics_of, OffsetSpec, Tp, READ_UNCOMMITTED,
};
use crate::output::{print, Progress, Table};
use crate::share_group;

/// Partitions per OffsetCommit request.
const COMMIT_CHUNK: usize = 1000;

/// Group states in which the coordinator accepts commits from outside the group.
const INACTIVE_STATES: &[&str] = &["Empty", "Dead"];

/// Where the offsets go.
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    ShiftBy(i64),
    Timestamp(i64),
}

/// Runs `reset-offsets`.
pub(crate) async fn run(client: &mut Client, args: ResetArgs) -> Result<(), CliError> {
    let target = target(&args)?;
    let group = args.group.as_str();
    // A share group's offsets are its share-partitions' start offsets.
    let share = match describe_group(client, group).await {
        Ok(d) => d.protocol_type == share_group::SHARE,
        Err(e) if e.is(ResponseError::GroupIdNotFound) => false,
        Err(e) => return Err(e),
    };
    let current = if share {
        share_group::start_offsets(client, group, None).await?
    } else {
        committed(client, group).await?
    };
    let partitions = scope(client, &args, &current).await?;
    if partitions.is_empty() {
        return Err(CliError::Usage(format!(
            "group {group} has no committed offsets to reset"
        )));
    }
    let cluster = client.metadata(Some(&topics_of(&partitions))).await?;
    let (start, end) = log_bounds(client, &cluster, &partitions).await?;
    let by_time = match target {
        Target::Timestamp(ms) => Some(
            list_offsets(
                client,
                &cluster,
                &partitions,
                OffsetSpec::Timestamp(ms),
                READ_UNCOMMITTED,
            )
            .await?,
        ),
        _ => None,
    };
    let mut plan: BTreeMap<Tp, i64> = BTreeMap::new();
    for tp in &partitions {
        let (lo, hi) = (
            start.get(tp).copied().unwrap_or(0),
            end.get(tp).copied().unwrap_or(0),
        );
        // Kafka's tool clamps into [log start, log end] rather than commit an offset
        // the consumer would have to reset again.
        let clamp = |o: i64| o.clamp(lo, hi.max(lo));
        let offset = match target {
            Target::Earliest => lo,
            Target::Latest => hi,
            Target::Offset(o) => clamp(o),
            Target::ShiftBy(n) => {
                let Some(c) = current.get(tp) else {
                    return Err(CliError::Usage(format!(
                        "{}-{} has no committed offset to shift from",
                        tp.0, tp.1
                    )));
                };
                clamp(c.saturating_add(n))
            }
            // No record at or after the time: the log end, as Kafka's tool does.
            Target::Timestamp(_) => by_time
                .as_ref()
                .and_then(|m| m.get(tp).copied())
                .filter(|o| *o >= 0)
                .unwrap_or(hi),
        };
        plan.insert(tp.clone(), offset);
    }

    if args.execute {
        match describe_group(client, group).await {
            Ok(described) => {
                let state = described.state.as_str();
                if !INACTIVE_STATES.contains(&state) || !described.members.is_empty() {
                    return Err(CliError::Refused(format!(
                        "group {group} is {state} with {} member(s): the group has active members; stop them first",
                        described.members.len()
                    )));
                }
            }
            // A group nobody has used yet: the commit creates it, as with Kafka's tool.
            Err(e) if e.is(ResponseError::GroupIdNotFound) => {}
            Err(e) => return Err(e),
        }
        if share {
            let refused = share_group::alter_start_offsets(client, group, &plan).await?;
            refusal(group, &refused)?;
        } else {
            commit_all(client, group, &plan).await?;
        }
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "NEW-OFFSET"]);
    for ((t, p), o) in &plan {
        table.row(vec![t.clone(), p.to_string(), o.to_string()]);
    }
    print(&table.render())?;
    if !args.execute {
        eprintln!("Dry run: nothing committed. Add --execute to commit these offsets.");
    }
    Ok(())
}

fn target(args: &ResetArgs) -> Result<Target, CliError> {
    Ok(if args.to_earliest {
        Target::Earliest
    } else if args.to_latest {
        Target::Latest
    } else if let Some(o) = args.to_offset {
        Target::Offset(o)
    } else if let Some(n) = args.shift_by {
        Target::ShiftBy(n)
    } else if let Some(t) = &args.to_datetime {
        Target::Timestamp(parse_datetime(t)?)
    } else {
        return Err(CliError::Usage(
            "give one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime"
                .to_string(),
        ));
    })
}

/// The partitions to reset: `--topic T` (every partition), `--topic T:0,1`, or
/// `--all-topics` (every partition the group has committed offsets for).
async fn scope(
    client: &mut Client,
    args: &ResetArgs,
    current: &BTreeMap<Tp, i64>,
) -> Result<Vec<Tp>, CliError> {
    if args.all_topics {
        return Ok(current.keys().cloned().collect());
    }
    let mut out = BTreeSet::new();
    let mut whole = Vec::new();
    for spec in &args.topic {
        match spec.split_once(':') {
            Some((t, ps)) => {
                for p in ps.split(',') {
                    let p: i32 = p.trim().parse().map_err(|_| {
                        CliError::Usage(format!("--topic {spec}: expected TOPIC:P,P,..."))
                    })?;
                    out.insert((t.to_string(), p));
                }
            }
            None => whole.push(spec.clone()),
        }
    }
    if !whole.is_empty() {
        let cluster = client.metadata(Some(&whole)).await?;
        for name in &whole {
            let t = cluster.require_topic(name)?;
            out.extend(t.partitions.iter().map(|p| (name.clone(), p.index)));
        }
    }
    Ok(out.into_iter().collect())
}

/// Commits in chunks, with progress for many partitions; fails on any refused partition.
async fn commit_all(
    client: &mut Client,
    group: &str,
    plan: &BTreeMap<Tp, i64>,
) -> Result<(), CliError> {
    let mut progress = Progress::new();
    let entries: Vec<(&Tp, &i64)> = plan.iter().collect();
    let mut done = 0;
    let mut refused = Vec::new();
    for chunk in entries.chunks(COMMIT_CHUNK) {
        let part: BTreeMap<Tp, i64> = chunk.iter().map(|(tp, o)| ((*tp).clone(), **o)).collect();
        refused.extend(commit(client, group, &part).await?);
        done += chunk.len();
        progress.tick(|| format!("committed {done}/{} partitions", plan.len()));
    }
    refusal(group, &refused)
}

/// The error for partitions the coordinator refused, each named on stderr.
fn refusal(group: &str, refused: &[(Tp, i16)]) -> Result<(), CliError> {
    let Some(((t, p), code)) = refused.first() else {
        return Ok(());
    };
    for ((t, p), code) in refused.iter().skip(1) {
        eprintln!("error: {t}-{p}: {}", error_name(*code));
    }
    Err(CliError::Kafka {
        context: format!("committing {t}-{p} for group {group}"),
        code: *code,
        message: (refused.len() > 1).then(|| format!("{} partitions refused", refused.len())),
    })
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM|±HHMM]`;
/// without a zone the time is UTC.
pub(crate) fn parse_datetime(s: &str) -> Result<i64, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--to-datetime {s}: expected YYYY-MM-DDTHH:MM:SS[.sss][Z|±HH:MM]"
        ))
    };
    let (date, time) = s.split_once(['T', ' ']).ok_or_else(bad)?;
    let num = |x: &str| -> Result<i64, CliError> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        x.parse().map_err(|_| bad())
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d.as_slice() else {
        return Err(bad());
    };
    let (y, mo, da) = (num(y)?, num(mo)?, num(da)?);
    // The zone: a trailing Z, or the last + or - (dates are already split off).
    let (clock, zone_minutes) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, z) = time.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 {
            return Err(bad());
        }
        (c, sign * (num(&digits[..2])? * 60 + num(&digits[2..])?))
    } else {
        (time, 0)
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (clock, None),
    };
    let t: Vec<&str> = hms.split(':').collect();
    let [h, mi, se] = t.as_slice() else {
        return Err(bad());
    };
    let (h, mi, se) = (num(h)?, num(mi)?, num(se)?);
    let millis = match fraction {
        Some(f) => {
            num(f)?;
            let three: String = f.chars().chain(std::iter::repeat('0')).take(3).collect();
            num(&three)?
        }
        None => 0,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    let days = days_from_civil(y, mo, da);
    Ok(((days * 24 + h) * 60 + mi - zone_minutes) * 60_000 + se * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_to_epoch_millis() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").ok(), Some(0));
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56.789Z").ok(),
            Some(1_709_210_096_789)
        );
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56.789").ok(),
            Some(1_709_210_096_789)
        );
        assert_eq!(
            parse_datetime("2024-02-29T14:34:56.789+02:00").ok(),
            Some(1_709_210_096_789)
        );
        assert_eq!(
            parse_datetime("2024-02-29T07:04:56.789-0530").ok(),
            Some(1_709_210_096_789)
        );
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2024-13-01T00:00:00").is_err());
    }
}
