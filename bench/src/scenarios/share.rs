//! Share groups (KIP-932): records/s that 1, 4 and 16 share consumers of one group read
//! together from one partition, acknowledging implicitly (with the next poll) or one by
//! one. The partition's producer batches are 16 KiB. librdkafka's share consumer is not in the `rdkafka` crate, so each consumer is a
//! confluent-kafka `ShareConsumer` process (`scripts/share_worker.py`, run with
//! `$SLUICE_BENCH_PYTHON`, python3 by default, which needs confluent-kafka 2.16+ and
//! kafka-python). A case is timed from the first record read to the last; every record
//! must be read exactly once across the consumers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::producer::{BaseRecord, Producer as _};

use super::{case, Ctx};
use crate::client;
use crate::report::Row;
use crate::target::Broker;

/// The scenario's name.
pub(crate) const NAME: &str = "share";

/// Consumers per case.
const CONSUMERS: &[usize] = &[1, 4, 16];
/// Acknowledgement modes (`share.acknowledgement.mode`).
const MODES: &[&str] = &["implicit", "explicit"];
/// Record size.
const RECORD_SIZE: usize = 100;
/// Records in the partition (smoke mode: 2,000).
const RECORDS: u64 = 1_000_000;
/// The fill's producer batches: Kafka's Java default, so that a fetch of 500 records (what
/// librdkafka asks for) spans several batches, as with most producers.
const FILL_BATCH_BYTES: &str = "16384";
/// How long a case may take.
const CASE_TIMEOUT: Duration = Duration::from_secs(300);

/// The worker script, written next to the bench's temporary files.
const WORKER: &str = include_str!("../../scripts/share_worker.py");

/// Runs one case per consumer count and mode, each a new group over the same partition.
pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Row> {
    let broker = match ctx.target.broker(&[]) {
        Ok(b) => b,
        Err(e) => return vec![Row::new(NAME, "start").fail(&e)],
    };
    let records = if ctx.args.smoke { 2_000 } else { RECORDS };
    let topic = format!("bench-share-{}", std::process::id());
    let script = match write_worker() {
        Ok(s) => s,
        Err(e) => return vec![Row::new(NAME, "worker script").fail(&e)],
    };
    if let Err(e) = fill(&broker, &topic, records) {
        return vec![Row::new(NAME, "fill").fail(&e)];
    }
    let mut rows = Vec::new();
    for &consumers in CONSUMERS {
        for &mode in MODES {
            rows.push(case(
                NAME,
                &format!("{consumers} consumer(s) {mode}"),
                |row| {
                    row.setting("consumers", consumers)
                        .setting("acknowledgement", mode)
                        .setting("records", records)
                        .setting("record.size", RECORD_SIZE);
                    let group = format!("bench-share-{}-{consumers}-{mode}", std::process::id());
                    measure(
                        &broker, &script, &topic, &group, consumers, mode, records, row,
                    )
                },
            ));
        }
    }
    if !ctx.target.is_managed() {
        if let Err(e) = client::delete_topics(&broker.bootstrap(), &[&topic]) {
            eprintln!("  deleting {topic}: {e:#}");
        }
    }
    rows
}

fn write_worker() -> anyhow::Result<tempfile::TempPath> {
    let mut f = tempfile::Builder::new()
        .suffix(".py")
        .tempfile()
        .context("creating the worker script")?;
    std::io::Write::write_all(&mut f, WORKER.as_bytes()).context("writing the worker script")?;
    Ok(f.into_temp_path())
}

/// One partition of `records` records.
fn fill(broker: &Broker, topic: &str, records: u64) -> anyhow::Result<()> {
    let bootstrap = broker.bootstrap();
    client::create_topics(&bootstrap, &[(topic.to_string(), 1)], &[], 1)?;
    let producer = client::producer(
        &bootstrap,
        &[
            ("linger.ms", "5"),
            ("acks", "1"),
            ("batch.size", FILL_BATCH_BYTES),
        ],
    )?;
    let payloads = client::payloads(RECORD_SIZE, 64);
    for i in 0..records {
        let payload = &payloads[(i % payloads.len() as u64) as usize];
        client::send(
            &producer,
            BaseRecord::<[u8], [u8], ()>::to(topic)
                .partition(0)
                .payload(payload.as_slice()),
        )?;
    }
    producer
        .flush(Duration::from_secs(120))
        .context("flushing the fill")?;
    producer.context().check(records)
}

/// Stops the consumers together: SIGINT (each closes its consumer), then SIGKILL for any
/// still running 15 s later; returns how many needed it.
fn stop_all(mut children: Vec<Child>) -> usize {
    for child in &children {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline
        && children
            .iter_mut()
            .any(|c| c.try_wait().ok().flatten().is_none())
    {
        thread::sleep(Duration::from_millis(20));
    }
    let mut stuck = 0;
    for mut child in children {
        if child.try_wait().ok().flatten().is_none() {
            stuck += 1;
            let _ = child.kill();
        }
        let _ = child.wait();
    }
    stuck
}

fn python() -> String {
    std::env::var("SLUICE_BENCH_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Starts `consumers` share consumers of a new group (starting at the earliest offset)
/// and times them reading every record.
#[allow(clippy::too_many_arguments)]
fn measure(
    broker: &Broker,
    script: &std::path::Path,
    topic: &str,
    group: &str,
    consumers: usize,
    mode: &str,
    records: u64,
    row: &mut Row,
) -> anyhow::Result<()> {
    let bootstrap = broker.bootstrap();
    let status = Command::new(python())
        .arg(script)
        .args(["--earliest", &bootstrap, group])
        .stdout(Stdio::null())
        .status()
        .context(
            "running the worker script (is SLUICE_BENCH_PYTHON a python with confluent-kafka?)",
        )?;
    if !status.success() {
        bail!("setting the group's share.auto.offset.reset failed: {status}");
    }
    let launched = Instant::now();
    let total = Arc::new(AtomicU64::new(0));
    let first = Arc::new(Mutex::new(None::<Instant>));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut children: Vec<Child> = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..consumers {
        let mut child = Command::new(python())
            .arg(script)
            .args([&bootstrap, group, topic, mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a share consumer")?;
        let stdout = child.stdout.take().context("the consumer's stdout")?;
        children.push(child);
        let (total, first, errors) = (total.clone(), first.clone(), errors.clone());
        readers.push(thread::spawn(move || {
            let mut mine = 0u64;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line
                    .strip_prefix("n ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                {
                    first
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert_with(Instant::now);
                    total.fetch_add(n - mine, Ordering::Relaxed);
                    mine = n;
                } else if line.starts_with("error") {
                    errors.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            }
        }));
    }
    let deadline = Instant::now() + CASE_TIMEOUT;
    let outcome = loop {
        let read = total.load(Ordering::Relaxed);
        if read >= records {
            break Ok(Instant::now());
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!(
                "{read} of {records} records read in {CASE_TIMEOUT:?}"
            ));
        }
        thread::sleep(Duration::from_millis(5));
    };
    let stuck = stop_all(children);
    if stuck > 0 {
        row.note(format!(
            "{stuck} consumer(s) did not close within 15 s of SIGINT and were killed"
        ));
    }
    for r in readers {
        let _ = r.join();
    }
    let done = outcome?;
    let errors = errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(e) = errors.first() {
        bail!("a consumer reported {e}");
    }
    let read = total.load(Ordering::Relaxed);
    if read != records {
        bail!("{read} records read of {records}: some were delivered twice");
    }
    let started = first
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .context("no record read")?;
    let seconds = done.duration_since(started).as_secs_f64().max(1e-6);
    row.figure("rate", records as f64 / seconds, "records/s")
        .figure("seconds", seconds, "s")
        // From starting the consumers: joining the group and the first fetch included.
        .figure(
            "from start",
            done.duration_since(launched).as_secs_f64(),
            "s",
        );
    Ok(())
}
