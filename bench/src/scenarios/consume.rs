//! Consume throughput from one full partition: written once, read three times — a first
//! read that checks every record, a second from a warm page cache (reported), and a third
//! after dropping the page cache (root only).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::consumer::Consumer as _;
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use super::produce::{self, Budget, Case};
use super::Ctx;
use crate::client;
use crate::procfs::{self, CpuUsage};
use crate::report::Row;
use crate::target::Broker;

/// The scenario's name.
pub(crate) const NAME: &str = "consume";

/// Raised from librdkafka's 1 MiB so that one partition is not read 1 MiB per round trip.
pub(crate) const CONSUMER: &[(&str, &str)] = &[("max.partition.fetch.bytes", "8388608")];

/// What the partition is filled with: 1 KiB records, acks=1, uncompressed.
pub(crate) const FILL: Case = produce::LATENCY_BASE;

/// Runs the warm and the cold read.
pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Row> {
    let case_name = |kind: &str| format!("1KiB p1 {kind}");
    let mut warm = Row::new(NAME, case_name("page cache warm"));
    let mut cold = Row::new(NAME, case_name("page cache cold"));
    let filled = fill(ctx, &mut warm);
    let (mut broker, topic, records) = match filled {
        Ok(f) => f,
        Err(e) => return vec![warm.fail(&e)],
    };
    for row in [&mut warm, &mut cold] {
        row.setting("records", records)
            .setting("record.size", FILL.record_size);
        for (k, v) in CONSUMER {
            row.setting(k, v);
        }
    }
    // The first read checks the data and warms the page cache; the second is the figure.
    let warm =
        match read(&mut broker, &topic, records).and_then(|_| read(&mut broker, &topic, records)) {
            Ok(m) => {
                m.add_to(&mut warm);
                warm
            }
            Err(e) => warm.fail(&e),
        };
    let cold = if ctx.args.smoke {
        // Dropping the page cache slows everything else on the machine; not for a check.
        cold.skip("cold: skipped in smoke mode")
    } else if !ctx.target.is_managed() {
        cold.skip("cold: skipped (the broker is not on this machine as far as this process knows)")
    } else {
        match drop_page_cache() {
            Err(e) => cold.skip(format!("cold: skipped (needs root: {e:#})")),
            Ok(()) => match read(&mut broker, &topic, records) {
                Ok(m) => {
                    m.add_to(&mut cold);
                    cold
                }
                Err(e) => cold.fail(&e),
            },
        }
    };
    if !ctx.target.is_managed() {
        if let Err(e) = client::delete_topics(&broker.bootstrap(), &[&topic]) {
            eprintln!("  deleting {topic}: {e:#}");
        }
    }
    vec![warm, cold]
}

/// Starts the broker and fills one partition with `--consume-bytes` of records.
fn fill(ctx: &Ctx<'_>, row: &mut Row) -> anyhow::Result<(Broker, String, u64)> {
    let broker = ctx.target.broker(&[])?;
    let topic = format!("bench-consume-{}", std::process::id());
    client::create_topics(&broker.bootstrap(), &[(topic.clone(), 1)], &[], 1)?;
    let budget = Budget {
        seconds: f64::INFINITY,
        messages: None,
        bytes: ctx.args.consume_bytes,
    };
    let written = produce::measure(&broker, &topic, &FILL, &budget).context("filling")?;
    row.note(format!(
        "filled with {} records at {:.0} MB/s",
        written.records,
        written.mb_per_s()
    ));
    Ok((broker, topic, written.records))
}

/// One read of the whole partition.
pub(crate) struct Read {
    records: u64,
    bytes: u64,
    wall: Duration,
    cpu: CpuUsage,
    /// Share of the segment files in the page cache when the read began, if known.
    cached: Option<f64>,
}

impl Read {
    pub(crate) fn add_to(&self, row: &mut Row) {
        let secs = self.wall.as_secs_f64().max(1e-9);
        row.figure("rate", self.records as f64 / secs, "rec/s")
            .figure("payload", self.bytes as f64 / 1e6 / secs, "MB/s");
        produce::add_cpu(row, &self.cpu);
        if let Some(c) = self.cached {
            row.figure("cached", 100.0 * c, "%");
        }
    }
}

/// Reads offsets 0 to `records - 1` with a fresh consumer, checking that none is missing.
pub(crate) fn read(broker: &mut Broker, topic: &str, records: u64) -> anyhow::Result<Read> {
    // Whether "warm" was warm: some machines evict idle page cache within seconds.
    let cached = broker
        .process()
        .and_then(|p| procfs::page_cache_share(&p.log_dir()));
    let consumer = client::consumer(&broker.bootstrap(), CONSUMER)?;
    // Knowing the leader before assign spares librdkafka's 500 ms retry timer, and an
    // explicit offset its ListOffsets round trip: the read starts with a Fetch.
    consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .context("Metadata")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(0))?;
    let meter = broker.cpu_meter()?;
    let started = Instant::now();
    consumer.assign(&tpl)?;
    let (mut next, mut bytes) = (0u64, 0u64);
    let mut idle_since = Instant::now();
    while next < records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if m.offset() != next as i64 {
                    bail!("expected offset {next}, got {}", m.offset());
                }
                bytes += m.payload_len() as u64;
                next += 1;
                idle_since = Instant::now();
            }
            Some(Err(e)) => bail!("consume: {e}"),
            None if idle_since.elapsed() > Duration::from_secs(30) => {
                bail!("nothing for 30 s after {next} of {records} records")
            }
            None => {}
        }
    }
    let wall = started.elapsed();
    Ok(Read {
        records,
        bytes,
        wall,
        cpu: meter.finish_at(wall)?,
        cached,
    })
}

/// Writes dirty pages back and drops the page cache; fails unless running as root.
fn drop_page_cache() -> anyhow::Result<()> {
    let status = std::process::Command::new("sync")
        .status()
        .context("running sync")?;
    if !status.success() {
        bail!("sync failed");
    }
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").context("writing /proc/sys/vm/drop_caches")
}
