//! Many partitions: create them (1,000 topics at most, CreateTopics in chunks), produce one
//! small record to each, then measure the idle broker's RSS, Metadata latency, and the
//! time to ready after a clean stop and after kill -9, checking sampled partitions' records
//! after each start.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::consumer::Consumer as _;
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};

use super::{case, Ctx};
use crate::client;
use crate::report::Row;
use crate::stats::Percentiles;
use crate::target::Broker;

/// The scenario's name.
pub(crate) const NAME: &str = "partitions";

/// Partitions per CreateTopics request: big enough to be quick, small enough to answer
/// well within the request timeout.
const PARTITIONS_PER_REQUEST: i32 = 1_000;

/// Runs one case per `--partitions-counts` entry, each on a fresh broker.
pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Row> {
    if !ctx.target.is_managed() {
        return vec![Row::new(NAME, "all counts").skip(
            "skipped: restarts the broker and reads its RSS, so it needs a broker this process starts (not --bootstrap)",
        )];
    }
    ctx.args
        .partitions_counts
        .iter()
        .map(|&n| {
            eprintln!("  partitions {n}");
            case(NAME, &format!("{n} partitions"), |row| {
                run_count(ctx, n, row)
            })
        })
        .collect()
}

/// `n` partitions as at most 1,000 topics of equal size (10 topics of 10 for n = 100).
fn layout(n: u32) -> Vec<(String, i32)> {
    let topics = (n / 10).clamp(1, 1_000);
    let (per, extra) = (n / topics, n % topics);
    (0..topics)
        .map(|t| {
            (
                format!("bench-partitions-{t:04}"),
                (per + u32::from(t < extra)) as i32,
            )
        })
        .collect()
}

/// About 20 partitions spread over all topics, the first and last included.
fn sample(topics: &[(String, i32)], smoke: bool) -> Vec<(String, i32)> {
    let all: Vec<(&String, i32)> = topics
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| (t, p)))
        .collect();
    let want = if smoke { 10 } else { 20 }.min(all.len());
    (0..want)
        .map(|i| {
            let (t, p) = all[i * (all.len() - 1) / (want - 1).max(1)];
            (t.clone(), p)
        })
        .collect()
}

/// The payload of round `round`'s record in a partition: says where it belongs.
fn payload(topic: &str, partition: i32, round: u32) -> String {
    format!("{topic}/{partition}/{round}")
}

fn run_count(ctx: &Ctx<'_>, n: u32, row: &mut Row) -> anyhow::Result<()> {
    let topics = layout(n);
    let per_topic = topics.first().map_or(1, |t| t.1);
    row.setting("topics", topics.len())
        .setting("partitions per topic", per_topic);
    // The broker raises its soft limit to the hard one and keeps its segment files within
    // half of it (`log.max.open.segment.files`), however many partitions there are.
    if let Some((_, hard)) = crate::procfs::open_files_limits("self") {
        row.setting("broker open-files limit", hard);
    }
    let mut broker = ctx.target.broker(&[])?;
    measure_count(ctx, n, &topics, &mut broker, row).map_err(|e| broker.explain(e))
}

fn measure_count(
    ctx: &Ctx<'_>,
    n: u32,
    topics: &[(String, i32)],
    broker: &mut Broker,
    row: &mut Row,
) -> anyhow::Result<()> {
    let settle = if ctx.args.smoke {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(3)
    };
    let per_topic = topics.first().map_or(1, |t| t.1);
    let bootstrap = broker.bootstrap();

    let t = Instant::now();
    let per_request = (PARTITIONS_PER_REQUEST / per_topic.max(1)).max(1) as usize;
    client::create_topics(&bootstrap, topics, &[], per_request)?;
    row.figure("create", t.elapsed().as_secs_f64(), "s");

    let t = Instant::now();
    produce_round(&bootstrap, topics, 0)?;
    row.figure("produce 1 each", t.elapsed().as_secs_f64(), "s");

    std::thread::sleep(settle);
    row.figure("RSS idle", rss_mib(broker)?, "MiB");
    let process = broker.process().context("no broker process")?;
    row.figure("open files", process.open_files()? as f64, "count");
    metadata_latency(&bootstrap, topics, n, ctx.args.smoke, row)?;

    let sampled = sample(topics, ctx.args.smoke);
    let process = broker.process().context("no broker process")?;
    let stop = process.stop()?;
    let ready = process.restart()?;
    row.figure("stop", stop.as_secs_f64(), "s").figure(
        "ready after stop",
        ready.as_secs_f64(),
        "s",
    );
    verify(&bootstrap, &sampled, 1)?;
    std::thread::sleep(settle);
    row.figure("RSS restarted", rss_mib(broker)?, "MiB");

    // A second record everywhere, then a crash: recovery has every partition's tail to check.
    produce_round(&bootstrap, topics, 1)?;
    let process = broker.process().context("no broker process")?;
    process.kill()?;
    let ready = process.restart()?;
    row.figure("ready after kill -9", ready.as_secs_f64(), "s");
    verify(&bootstrap, &sampled, 2)?;
    row.figure("verified", sampled.len() as f64, "partitions");
    row.note(format!(
        "verified: {} sampled partitions hold their records after each restart",
        sampled.len()
    ));
    Ok(())
}

fn rss_mib(broker: &mut Broker) -> anyhow::Result<f64> {
    let process = broker.process().context("no broker process")?;
    Ok(process.rss_bytes()? as f64 / (1024.0 * 1024.0))
}

/// Partitions one producer instance writes to: librdkafka's broker thread walks every
/// partition it knows on each wake-up, so one instance for 100,000 partitions spends
/// minutes of its own CPU while the broker idles (measured: 4% acknowledged in 60 s).
const PARTITIONS_PER_PRODUCER: i32 = 5_000;

/// Produces one small record to every partition (acks=1) and waits for the
/// acknowledgements, with one producer per [`PARTITIONS_PER_PRODUCER`] partitions.
fn produce_round(bootstrap: &str, topics: &[(String, i32)], round: u32) -> anyhow::Result<()> {
    let mut share: Vec<&(String, i32)> = Vec::new();
    let mut in_share = 0;
    for t in topics {
        share.push(t);
        in_share += t.1;
        if in_share >= PARTITIONS_PER_PRODUCER {
            produce_share(bootstrap, &share, round)?;
            share.clear();
            in_share = 0;
        }
    }
    if !share.is_empty() {
        produce_share(bootstrap, &share, round)?;
    }
    Ok(())
}

fn produce_share(bootstrap: &str, topics: &[&(String, i32)], round: u32) -> anyhow::Result<()> {
    // A long linger lets one Produce request carry many partitions.
    let producer = client::producer(bootstrap, &[("acks", "1"), ("linger.ms", "50")])?;
    let mut sent = 0u64;
    for (topic, partitions) in topics {
        for p in 0..*partitions {
            let body = payload(topic, p, round);
            client::send(
                &producer,
                BaseRecord::to(topic).partition(p).payload(body.as_bytes()),
            )?;
            sent += 1;
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .context("waiting for acknowledgements")?;
    producer.context().check(sent)
}

/// Median of full Metadata requests, p50 and p99 of one-topic requests.
fn metadata_latency(
    bootstrap: &str,
    topics: &[(String, i32)],
    n: u32,
    smoke: bool,
    row: &mut Row,
) -> anyhow::Result<()> {
    let consumer = client::consumer(bootstrap, &[])?;
    let timeout = Duration::from_secs(120);
    let mut full = Vec::new();
    let (full_requests, topic_requests) = if smoke { (2, 20) } else { (5, 200) };
    for _ in 0..full_requests {
        let t = Instant::now();
        let md = consumer.fetch_metadata(None, timeout).context("Metadata")?;
        full.push(t.elapsed());
        let found: usize = md
            .topics()
            .iter()
            .filter(|t| t.name().starts_with("bench-partitions-"))
            .map(|t| t.partitions().len())
            .sum();
        if found != n as usize {
            bail!("Metadata lists {found} of {n} partitions");
        }
    }
    let mut one = Vec::new();
    for i in 0..topic_requests {
        let (topic, _) = &topics[i * 7919 % topics.len()];
        let t = Instant::now();
        consumer
            .fetch_metadata(Some(topic), timeout)
            .context("Metadata")?;
        one.push(t.elapsed());
    }
    let (full, one) = (Percentiles::new(full), Percentiles::new(one));
    row.figure("metadata all", full.median_ms(), "ms")
        .figure("metadata 1 topic p50", one.median_ms(), "ms")
        .figure("metadata 1 topic p99", one.ms(0.99), "ms");
    row.note("metadata all: median of full Metadata requests, librdkafka's parsing included");
    Ok(())
}

/// Checks that each sampled partition holds exactly `rounds` records, each the expected one.
fn verify(bootstrap: &str, sampled: &[(String, i32)], rounds: u32) -> anyhow::Result<()> {
    let consumer = client::consumer(bootstrap, &[])?;
    let mut tpl = TopicPartitionList::new();
    for (topic, p) in sampled {
        let (_, high) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(30))
            .with_context(|| format!("ListOffsets {topic}-{p}"))?;
        if high != i64::from(rounds) {
            bail!("{topic}-{p}: high watermark {high}, expected {rounds}");
        }
        tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut seen: HashMap<(String, i32), u32> = HashMap::new();
    let total = sampled.len() * rounds as usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = 0;
    while got < total {
        if Instant::now() > deadline {
            bail!("read {got} of {total} sampled records in 60 s");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let round = seen
                    .entry((m.topic().to_string(), m.partition()))
                    .or_default();
                let want = payload(m.topic(), m.partition(), *round);
                if m.payload() != Some(want.as_bytes()) {
                    bail!(
                        "{}-{} offset {}: unexpected record",
                        m.topic(),
                        m.partition(),
                        m.offset()
                    );
                }
                *round += 1;
                got += 1;
            }
            Some(Err(e)) => bail!("consume: {e}"),
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let count = |l: &[(String, i32)]| l.iter().map(|t| t.1 as u32).sum::<u32>();
        let l = layout(100_000);
        assert_eq!((l.len(), l[0].1, count(&l)), (1_000, 100, 100_000));
        let l = layout(10_000);
        assert_eq!((l.len(), l[0].1, count(&l)), (1_000, 10, 10_000));
        let l = layout(100);
        assert_eq!((l.len(), count(&l)), (10, 100));
        assert_eq!(count(&layout(1_234)), 1_234);
        assert_eq!(count(&layout(3)), 3);
    }

    #[test]
    fn samples_span_every_topic_range() {
        let l = layout(100);
        let s = sample(&l, false);
        assert_eq!(s.len(), 20);
        assert_eq!(s[0], ("bench-partitions-0000".to_string(), 0));
        assert_eq!(s[19], ("bench-partitions-0009".to_string(), 9));
        assert_eq!(sample(&layout(1), false).len(), 1);
    }
}
