//! `sluice consume`: Fetch from each partition's leader and print the records, one per
//! line. With `--group`, start from the group's committed offsets and commit the
//! position at exit as a simple consumer (generation -1, no membership).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use kafka_protocol::ResponseError;
use sluice_protocol::names::error_name;

use crate::args::{ConsumeArgs, IsolationLevel};
use crate::client::{topic_name, Client, Target, RETRY_BACKOFF};
use crate::error::{is_retriable, CliError};
use crate::fetched::{visible_records, Visible};
use crate::interrupt::Interrupt;
use crate::metadata::Cluster;
use crate::offsets::{
    commit, committed, list_offsets, OffsetSpec, Tp, READ_COMMITTED, READ_UNCOMMITTED,
};

/// How long the broker may hold a Fetch that finds nothing new.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// Bytes per Fetch and per partition, as the Java consumer's defaults.
const FETCH_MAX_BYTES: i32 = 50 * 1024 * 1024;
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;
/// How long a write to stdout may finish after ^C and still count as printed.
const WRITE_GRACE: Duration = Duration::from_millis(200);

/// What a Fetch said about one partition.
enum Outcome {
    Records {
        partition: i32,
        records: Vec<Visible>,
        next_offset: i64,
    },
    OutOfRange {
        partition: i32,
    },
    /// No leader, or a leader that moved: ask Metadata again.
    Stale,
}

/// Runs `sluice consume`.
pub(crate) async fn run(client: &mut Client, args: ConsumeArgs) -> Result<(), CliError> {
    let topic = args.topic.clone();
    let isolation = match args.isolation_level {
        IsolationLevel::ReadUncommitted => READ_UNCOMMITTED,
        IsolationLevel::ReadCommitted => READ_COMMITTED,
    };
    let mut cluster = client.metadata(Some(std::slice::from_ref(&topic))).await?;
    let meta = cluster.require_topic(&topic)?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if meta.partitions.iter().any(|x| x.index == p) => vec![p],
        Some(p) => {
            return Err(CliError::Kafka {
                context: format!("{topic}-{p}"),
                code: ResponseError::UnknownTopicOrPartition.code(),
                message: Some(format!("{topic} has {} partitions", meta.partitions.len())),
            })
        }
        None => meta.partitions.iter().map(|p| p.index).collect(),
    };
    // Where to go without a usable offset, as auto.offset.reset.
    let reset = if args.from_beginning {
        OffsetSpec::Earliest
    } else {
        OffsetSpec::Latest
    };
    let mut positions =
        start_positions(client, &cluster, &args, &partitions, reset, isolation).await?;

    let max_wait = args
        .timeout_ms
        .map_or(MAX_WAIT, |t| MAX_WAIT.min(Duration::from_millis(t.max(1))));
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let mut interrupt = Interrupt::new()?;
    let mut consumed: u64 = 0;
    let mut last_record = Instant::now();
    let result: Result<(), CliError> = 'consume: loop {
        if args.max_messages.is_some_and(|max| consumed >= max) {
            break Ok(());
        }
        if idle_limit.is_some_and(|limit| last_record.elapsed() >= limit) {
            break Ok(());
        }
        let outcomes = tokio::select! {
            biased;
            _ = interrupt.recv() => break Ok(()),
            r = fetch_round(client, &cluster, &topic, &positions, isolation, max_wait) => match r {
                Ok(o) => o,
                Err(e) => break Err(e),
            },
        };
        // The round's lines and new positions; the positions count once the lines are out.
        let mut text = Vec::new();
        let mut printed: u64 = 0;
        let mut moved = Vec::new();
        let mut stale = false;
        for outcome in outcomes {
            match outcome {
                Outcome::Records {
                    partition,
                    records,
                    next_offset,
                } => {
                    let mut next = next_offset;
                    for r in &records {
                        if args
                            .max_messages
                            .is_some_and(|max| consumed + printed >= max)
                        {
                            // Stop here: the position is just after the last printed record.
                            next = r.offset;
                            break;
                        }
                        format_record(&mut text, &args, partition, r);
                        printed += 1;
                    }
                    moved.push((partition, next));
                }
                Outcome::OutOfRange { partition } => {
                    let tp = (topic.clone(), partition);
                    let offsets = match list_offsets(
                        client,
                        &cluster,
                        std::slice::from_ref(&tp),
                        reset,
                        isolation,
                    )
                    .await
                    {
                        Ok(o) => o,
                        Err(e) => break 'consume Err(e),
                    };
                    let old = positions.get(&partition).copied().unwrap_or(-1);
                    let new = offsets.get(&tp).copied().unwrap_or(0);
                    eprintln!(
                        "{topic}-{partition}: offset {old} is out of range; resetting to {new}"
                    );
                    positions.insert(partition, new);
                }
                Outcome::Stale => stale = true,
            }
        }
        if !text.is_empty() {
            // On a blocking thread: a reader that stops reading (a full pipe) must not keep
            // ^C from stopping the consumer.
            let mut write = tokio::task::spawn_blocking(move || {
                let mut out = std::io::stdout().lock();
                out.write_all(&text).and_then(|()| out.flush())
            });
            let (written, interrupted) = tokio::select! {
                biased;
                w = &mut write => (w, false),
                // ^C as the lines go out (the reader saw them and reacted): give the write
                // a moment to finish so they count; a write stuck on a full pipe does not.
                _ = interrupt.recv() => match tokio::time::timeout(WRITE_GRACE, &mut write).await {
                    Ok(w) => (w, true),
                    Err(_) => break Ok(()),
                },
            };
            match written.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
                Ok(()) => {}
                // The reader went away (`| head`): stop as if done.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break Ok(()),
                Err(source) => {
                    break Err(CliError::Io {
                        what: "writing to standard output",
                        source,
                    })
                }
            }
            consumed += printed;
            last_record = Instant::now();
            if interrupted {
                positions.extend(moved);
                break Ok(());
            }
        }
        positions.extend(moved);
        if stale {
            tokio::time::sleep(RETRY_BACKOFF).await;
            match client.metadata(Some(std::slice::from_ref(&topic))).await {
                Ok(c) => cluster = c,
                Err(e) => break Err(e),
            }
        }
    };
    eprintln!("consumed {consumed} records from {topic}");
    result?;
    if let Some(group) = &args.group {
        commit_positions(client, group, &topic, &positions).await?;
    }
    Ok(())
}

/// The first offset to fetch per partition: --offset, else the group's committed offset,
/// else `reset` (log start with --from-beginning, log end otherwise).
async fn start_positions(
    client: &mut Client,
    cluster: &Cluster,
    args: &ConsumeArgs,
    partitions: &[i32],
    reset: OffsetSpec,
    isolation: i8,
) -> Result<BTreeMap<i32, i64>, CliError> {
    let topic = &args.topic;
    let mut positions = BTreeMap::new();
    if let Some(offset) = args.offset {
        if offset < 0 {
            return Err(CliError::Usage(format!(
                "--offset {offset}: offsets are not negative"
            )));
        }
        for p in partitions {
            positions.insert(*p, offset);
        }
        return Ok(positions);
    }
    if let Some(group) = &args.group {
        let offsets = committed(client, group).await?;
        for p in partitions {
            if let Some(o) = offsets.get(&(topic.clone(), *p)) {
                positions.insert(*p, *o);
            }
        }
    }
    let missing: Vec<Tp> = partitions
        .iter()
        .filter(|p| !positions.contains_key(*p))
        .map(|p| (topic.clone(), *p))
        .collect();
    if !missing.is_empty() {
        for ((_, p), o) in list_offsets(client, cluster, &missing, reset, isolation).await? {
            positions.insert(p, o);
        }
    }
    Ok(positions)
}

/// One Fetch per leader for the partitions it leads.
async fn fetch_round(
    client: &mut Client,
    cluster: &Cluster,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
    isolation: i8,
    max_wait: Duration,
) -> Result<Vec<Outcome>, CliError> {
    let meta = cluster.require_topic(topic)?;
    let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
    let mut outcomes = Vec::new();
    for (p, offset) in positions {
        match meta.leader(*p) {
            Some(leader) => by_leader.entry(leader).or_default().push((*p, *offset)),
            None => outcomes.push(Outcome::Stale),
        }
    }
    let wait_ms = i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX);
    for (leader, parts) in by_leader {
        let (version, resp) = client
            .send_waiting(Target::Node(leader), max_wait, |_| {
                FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(wait_ms)
                    .with_min_bytes(1)
                    .with_max_bytes(FETCH_MAX_BYTES)
                    .with_isolation_level(isolation)
                    // No fetch session: each request names every partition (v7+ fields).
                    .with_session_id(0)
                    .with_session_epoch(-1)
                    .with_topics(vec![FetchTopic::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|(p, offset)| {
                                    FetchPartition::default()
                                        .with_partition(*p)
                                        .with_fetch_offset(*offset)
                                        .with_partition_max_bytes(PARTITION_MAX_BYTES)
                                })
                                .collect(),
                        )])
            })
            .await?;
        if version >= 7 {
            CliError::check(resp.error_code, None, || {
                format!("Fetch from broker {leader}")
            })?;
        }
        for t in resp.responses {
            for pd in t.partitions {
                let p = pd.partition_index;
                let Some(position) = positions.get(&p).copied() else {
                    continue;
                };
                if pd.error_code == ResponseError::OffsetOutOfRange.code() {
                    outcomes.push(Outcome::OutOfRange { partition: p });
                    continue;
                }
                if pd.error_code != 0 && is_retriable(pd.error_code) {
                    tracing::debug!(partition = p, error = %error_name(pd.error_code), "refreshing metadata");
                    outcomes.push(Outcome::Stale);
                    continue;
                }
                CliError::check(pd.error_code, None, || format!("{topic}-{p}"))?;
                let aborted: Vec<(i64, i64)> = pd
                    .aborted_transactions
                    .unwrap_or_default()
                    .iter()
                    .map(|a| (a.producer_id.0, a.first_offset))
                    .collect();
                let data = pd.records.unwrap_or_default();
                let fetched =
                    visible_records(&data, position, &aborted).map_err(|e| CliError::Protocol {
                        addr: format!("broker {leader}"),
                        api: "Fetch",
                        reason: format!("{topic}-{p} at offset {position}: {e}"),
                    })?;
                outcomes.push(Outcome::Records {
                    partition: p,
                    records: fetched.records,
                    next_offset: fetched.next_offset,
                });
            }
        }
    }
    Ok(outcomes)
}

/// One line: [Partition:P<TAB>Offset:N<TAB>][KEY<SEP>]VALUE, "null" for a null key or value.
fn format_record(out: &mut Vec<u8>, args: &ConsumeArgs, partition: i32, r: &Visible) {
    if args.print_offset {
        out.extend_from_slice(format!("Partition:{partition}\tOffset:{}\t", r.offset).as_bytes());
    }
    if args.print_key {
        out.extend_from_slice(r.key.as_deref().unwrap_or(b"null"));
        out.extend_from_slice(args.key_separator.as_bytes());
    }
    out.extend_from_slice(r.value.as_deref().unwrap_or(b"null"));
    out.push(b'\n');
}

/// Commits the next offset of each partition for `group`, outside group membership.
async fn commit_positions(
    client: &mut Client,
    group: &str,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
) -> Result<(), CliError> {
    let offsets: BTreeMap<Tp, i64> = positions
        .iter()
        .map(|(p, o)| ((topic.to_string(), *p), *o))
        .collect();
    let refused = commit(client, group, &offsets).await?;
    match refused.first() {
        None => Ok(()),
        Some(((t, p), code)) => Err(CliError::Kafka {
            context: format!("committing {t}-{p} for group {group}"),
            code: *code,
            message: (*code == ResponseError::UnknownMemberId.code()
                || *code == ResponseError::IllegalGeneration.code())
            .then(|| {
                "the group has active members; a simple consumer cannot commit for it".to_string()
            }),
        }),
    }
}
