//! Offset commits: consumers outside any generation commit one partition's offset
//! synchronously, one after another, for `--seconds` (as an application committing after
//! every record does). Each committer is its own group, so the case with several measures
//! the coordinator under concurrent groups. The last committed offset of every group is
//! read back at the end and must be the last one sent.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

use super::{case, Ctx};
use crate::client;
use crate::procfs::CpuUsage;
use crate::report::Row;
use crate::stats::Percentiles;
use crate::target::Broker;

/// The scenario's name.
pub(crate) const NAME: &str = "offset-commit";

/// Committers per case.
const COMMITTERS: &[usize] = &[1, 4];

/// Runs one case per committer count on one broker.
pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Row> {
    let broker = match ctx.target.broker(&[]) {
        Ok(b) => b,
        Err(e) => return vec![Row::new(NAME, "start").fail(&e)],
    };
    let topic = format!("bench-commit-{}", std::process::id());
    if let Err(e) = client::create_topics(&broker.bootstrap(), &[(topic.clone(), 1)], &[], 1) {
        return vec![Row::new(NAME, "create topic").fail(&e)];
    }
    let seconds = ctx.args.seconds;
    let rows = COMMITTERS
        .iter()
        .map(|&n| {
            case(NAME, &format!("{n} committer(s)"), |row| {
                row.setting("committers", n).setting("seconds", seconds);
                measure(&broker, &topic, n, seconds, row)
            })
        })
        .collect();
    if !ctx.target.is_managed() {
        if let Err(e) = client::delete_topics(&broker.bootstrap(), &[&topic]) {
            eprintln!("  deleting {topic}: {e:#}");
        }
    }
    rows
}

/// `committers` threads commit for `seconds`; figures: commits/s and latency percentiles.
fn measure(
    broker: &Broker,
    topic: &str,
    committers: usize,
    seconds: f64,
    row: &mut Row,
) -> anyhow::Result<()> {
    let bootstrap = broker.bootstrap();
    let run = format!("{}-{committers}", std::process::id());
    let meter = broker.cpu_meter()?;
    let started = Instant::now();
    let handles: Vec<_> = (0..committers)
        .map(|i| {
            let (bootstrap, topic) = (bootstrap.clone(), topic.to_string());
            let group = format!("bench-commit-{run}-{i}");
            thread::spawn(move || commit_loop(&bootstrap, &topic, &group, seconds))
        })
        .collect();
    let mut samples = Vec::new();
    for h in handles {
        let latencies = h
            .join()
            .map_err(|_| anyhow::anyhow!("a committer panicked"))??;
        samples.extend(latencies);
    }
    let wall = started.elapsed();
    let cpu: CpuUsage = meter.finish_at(wall)?;
    let p = Percentiles::new(samples);
    row.figure("rate", p.len() as f64 / wall.as_secs_f64(), "ops/s")
        .figure("p50", p.ms(0.50), "ms")
        .figure("p99", p.ms(0.99), "ms");
    super::produce::add_cpu(row, &cpu);
    Ok(())
}

/// One group's commits of offsets 1, 2, 3, ... for `seconds`; returns each one's latency
/// after checking that the group's committed offset is the last one sent.
fn commit_loop(
    bootstrap: &str,
    topic: &str,
    group: &str,
    seconds: f64,
) -> anyhow::Result<Vec<Duration>> {
    let consumer: BaseConsumer = client::config(
        bootstrap,
        &[("group.id", group), ("enable.auto.commit", "false")],
    )
    .create()
    .context("creating the consumer")?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut latencies = Vec::new();
    let mut offset = 0i64;
    while Instant::now() < deadline {
        offset += 1;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(offset))?;
        let at = Instant::now();
        consumer
            .commit(&tpl, CommitMode::Sync)
            .with_context(|| format!("{group}: commit of offset {offset}"))?;
        latencies.push(at.elapsed());
    }
    let mut want = TopicPartitionList::new();
    want.add_partition(topic, 0);
    let got = consumer
        .committed_offsets(want, Duration::from_secs(10))
        .with_context(|| format!("{group}: reading the committed offset back"))?;
    let committed = got.elements().first().map(|e| e.offset());
    if committed != Some(Offset::Offset(offset)) {
        bail!("{group}: committed {committed:?} after committing {offset}");
    }
    Ok(latencies)
}
