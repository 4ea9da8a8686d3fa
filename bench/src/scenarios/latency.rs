//! End-to-end latency: records sent at a fixed rate (half the measured maximum), each
//! timed from the producer's send to its arrival at a consumer that is already waiting.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::consumer::Consumer as _;
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};

use super::produce::{self, Budget, LATENCY_BASE};
use super::{case, Ctx};
use crate::client;
use crate::report::{Row, Status};
use crate::stats::Percentiles;

/// The scenario's name.
pub(crate) const NAME: &str = "latency";

/// What a latency-minded producer sets: send at once, wait for the leader only.
const PRODUCER: &[(&str, &str)] = &[
    ("acks", "1"),
    ("linger.ms", "0"),
    ("compression.type", "none"),
];

/// Shares of the maximum rate measured: the 50%, and 10% to show the latency of a
/// broker with CPU to spare (smoke mode runs the first only).
const LOADS: &[f64] = &[0.5, 0.1];

/// One case per load, or one at `--latency-rate`.
pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Row> {
    let base_name = "1KiB p1 acks=1 linger.ms=0";
    let mut max_note = String::new();
    let rates: Vec<(String, f64)> = match ctx.args.latency_rate {
        Some(r) => vec![(format!("{base_name} at {r} rec/s"), r as f64)],
        None => match max_rate(ctx) {
            Ok((max, note)) => {
                max_note = note;
                let loads = if ctx.args.smoke { &LOADS[..1] } else { LOADS };
                loads
                    .iter()
                    .map(|l| (format!("{base_name} at {:.0}%", l * 100.0), max * l))
                    .collect()
            }
            Err(e) => return vec![Row::new(NAME, base_name).fail(&e)],
        },
    };
    rates
        .into_iter()
        .map(|(name, rate)| {
            case(NAME, &name, |row| {
                if !max_note.is_empty() {
                    row.note(max_note.clone());
                }
                run_case(ctx, rate, row)
            })
        })
        .collect()
}

/// The maximum produce rate of [`LATENCY_BASE`] and where it comes from: the produce
/// scenario when it ran, else measured now.
fn max_rate(ctx: &Ctx<'_>) -> anyhow::Result<(f64, String)> {
    let measured = ctx.earlier.iter().find(|r| {
        r.scenario == produce::NAME && r.case == LATENCY_BASE.name() && r.status == Status::Ok
    });
    if let Some(rate) = measured.and_then(|r| r.get("rate")) {
        return Ok((
            rate,
            format!("maximum: {rate:.0} rec/s, produce {}", LATENCY_BASE.name()),
        ));
    }
    let broker = ctx.target.broker(&[])?;
    let topic = format!("bench-latency-max-{}", std::process::id());
    client::create_topics(&broker.bootstrap(), &[(topic.clone(), 1)], &[], 1)?;
    let budget = Budget {
        seconds: ctx.args.seconds.min(3.0),
        messages: ctx.args.messages,
        bytes: ctx.args.bytes,
    };
    let rate = produce::measure(&broker, &topic, &LATENCY_BASE, &budget)?.records_per_s();
    if !ctx.target.is_managed() {
        client::delete_topics(&broker.bootstrap(), &[&topic])?;
    }
    Ok((
        rate,
        format!(
            "maximum: {rate:.0} rec/s, measured first as produce {}",
            LATENCY_BASE.name()
        ),
    ))
}

/// Sets the flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

fn run_case(ctx: &Ctx<'_>, rate: f64, row: &mut Row) -> anyhow::Result<()> {
    // Smoke mode proves the path works; a high rate would only make it slow.
    let rate = if ctx.args.smoke {
        rate.min(2_000.0)
    } else {
        rate
    }
    .max(1.0);
    let warm_up = if ctx.args.smoke {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1)
    };
    let measured_for = Duration::from_secs_f64(ctx.args.seconds);
    for (k, v) in PRODUCER {
        row.setting(k, v);
    }
    row.setting("record.size", LATENCY_BASE.record_size)
        .setting("rate", format!("{rate:.0}"))
        .setting("warm-up s", warm_up.as_secs_f64())
        .setting(
            "consumer",
            "librdkafka defaults (fetch.wait.max.ms=500, fetch.min.bytes=1)",
        );

    let broker = ctx.target.broker(&[])?;
    let bootstrap = broker.bootstrap();
    let topic = format!("bench-latency-{}", std::process::id());
    client::create_topics(&bootstrap, &[(topic.clone(), 1)], &[], 1)?;

    let base = Instant::now();
    // Records sent before this many ns after `base` are the warm-up, not timed.
    let warm_up_end = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(AtomicBool::new(false));
    // Stops the reader however this function returns, so no thread polls on forever.
    let _stop_reader = StopOnDrop(done.clone());
    let received = Arc::new(AtomicU64::new(0));
    let consumer = client::consumer(&bootstrap, &[])?;
    consumer
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .context("Metadata")?;
    let mut tpl = TopicPartitionList::new();
    // The topic is new: offset 0 is where the first record will land.
    tpl.add_partition_offset(&topic, 0, Offset::Offset(0))?;
    consumer.assign(&tpl)?;
    let reader = {
        let (done, received, warm_up_end) = (done.clone(), received.clone(), warm_up_end.clone());
        std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
            let mut samples = Vec::new();
            while !done.load(Ordering::Acquire) {
                match consumer.poll(Duration::from_millis(50)) {
                    Some(Ok(m)) => {
                        let now = base.elapsed();
                        let sent = m
                            .payload()
                            .and_then(|p| p.get(..8))
                            .and_then(|b| <[u8; 8]>::try_from(b).ok())
                            .map(u64::from_be_bytes)
                            .context("a record without its send time")?;
                        if sent >= warm_up_end.load(Ordering::Acquire) {
                            samples.push(now.saturating_sub(Duration::from_nanos(sent)));
                        }
                        received.fetch_add(1, Ordering::Release);
                    }
                    Some(Err(e)) => bail!("consume: {e}"),
                    None => {}
                }
            }
            Ok(samples)
        })
    };

    let producer = client::producer(&bootstrap, PRODUCER)?;
    // Connections up and the consumer's first fetch waiting before the first timed send.
    producer
        .client()
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .context("producer metadata")?;
    std::thread::sleep(Duration::from_millis(300));

    let meter = broker.cpu_meter()?;
    let total = warm_up + measured_for;
    let start = base.elapsed();
    warm_up_end.store((start + warm_up).as_nanos() as u64, Ordering::Release);
    let mut payload = client::payloads(LATENCY_BASE.record_size, 1)
        .pop()
        .unwrap_or_default();
    let mut sent = 0u64;
    loop {
        let elapsed = base.elapsed() - start;
        if elapsed >= total {
            break;
        }
        let due = (elapsed.as_secs_f64() * rate) as u64;
        while sent < due {
            let now = base.elapsed().as_nanos() as u64;
            payload[..8].copy_from_slice(&now.to_be_bytes());
            client::send(&producer, BaseRecord::to(&topic).payload(&payload[..]))?;
            sent += 1;
        }
        // A short sleep keeps the pace even without spinning a core away from the broker.
        std::thread::sleep(Duration::from_micros(100));
    }
    producer
        .flush(Duration::from_secs(60))
        .context("waiting for acknowledgements")?;
    producer.context().check(sent)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.load(Ordering::Acquire) < sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let cpu = meter.finish()?;
    done.store(true, Ordering::Release);
    let samples = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the consumer thread panicked"))??;
    let got = received.load(Ordering::Acquire);
    if got != sent {
        bail!("the consumer received {got} of {sent} records");
    }
    let p = Percentiles::new(samples);
    row.figure("target", rate, "rec/s")
        .figure(
            "achieved",
            p.len() as f64 / measured_for.as_secs_f64(),
            "rec/s",
        )
        .figure("p50", p.ms(0.5), "ms")
        .figure("p99", p.ms(0.99), "ms")
        .figure("p99.9", p.ms(0.999), "ms")
        .figure("max", p.max_ms(), "ms");
    produce::add_cpu(row, &cpu);
    if !ctx.target.is_managed() {
        client::delete_topics(&bootstrap, &[&topic])?;
    }
    Ok(())
}
