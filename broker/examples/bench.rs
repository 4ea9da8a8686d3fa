//! Produce/consume benchmark with librdkafka (the `rdkafka` crate), run by a person, never
//! by CI as a timed test:
//!
//! ```sh
//! cargo run --release -p sluice-broker --example bench -- --messages 500000
//! cargo run --release -p sluice-broker --example bench -- --bootstrap 127.0.0.1:9092
//! ```
//!
//! Without `--bootstrap` it starts a broker in this process on an ephemeral port with its
//! data in a temporary directory (`--flush-messages 1` for an fsync per group commit).
//! Three phases, one topic each:
//! 1. produce throughput: `--messages` records of `--size` bytes as fast as the producer
//!    goes; MB/s and the send-to-acknowledgement latency (queueing included);
//! 2. consume throughput: the same records read back from offset 0; MB/s;
//! 3. end-to-end latency: `--rate` records per second for `--seconds`, each timed from
//!    `send` to its arrival at a consumer that is already waiting; p50/p99/p99.9.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use sluice_config::BrokerConfig;

/// Command-line settings.
struct Args {
    bootstrap: Option<String>,
    messages: usize,
    size: usize,
    partitions: i32,
    acks: String,
    linger_ms: String,
    compression: String,
    flush_messages: Option<String>,
    rate: u64,
    seconds: u64,
}

impl Args {
    fn parse() -> anyhow::Result<Args> {
        let mut args = Args {
            bootstrap: None,
            messages: 200_000,
            size: 1024,
            partitions: 1,
            acks: "all".into(),
            linger_ms: "5".into(),
            compression: "none".into(),
            flush_messages: None,
            rate: 5_000,
            seconds: 10,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--bootstrap" => args.bootstrap = Some(value()?),
                "--messages" => args.messages = value()?.parse()?,
                "--size" => args.size = value()?.parse()?,
                "--partitions" => args.partitions = value()?.parse()?,
                "--acks" => args.acks = value()?,
                "--linger-ms" => args.linger_ms = value()?,
                "--compression" => args.compression = value()?,
                "--flush-messages" => args.flush_messages = Some(value()?),
                "--rate" => args.rate = value()?.parse()?,
                "--seconds" => args.seconds = value()?.parse()?,
                "--help" | "-h" => {
                    println!(
                        "bench [--bootstrap HOST:PORT] [--messages N] [--size BYTES] \
                         [--partitions N] [--acks 0|1|all] [--linger-ms MS] \
                         [--compression none|gzip|snappy|lz4|zstd] [--flush-messages N] \
                         [--rate MSG_PER_S] [--seconds S]"
                    );
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other} (try --help)"),
            }
        }
        if args.size < 8 {
            bail!("--size must be at least 8 (the latency phase stores a timestamp)");
        }
        if args.partitions < 1 || args.rate == 0 {
            bail!("--partitions and --rate must be positive");
        }
        Ok(args)
    }
}

/// Records the send-to-acknowledgement time of every delivered record.
struct LatencyContext {
    latencies: Mutex<Vec<Duration>>,
    failures: Mutex<HashMap<String, usize>>,
}

impl ClientContext for LatencyContext {}

impl ProducerContext for LatencyContext {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        match result {
            Ok(_) => lock(&self.latencies).push(sent.elapsed()),
            Err((e, _)) => *lock(&self.failures).entry(e.to_string()).or_default() += 1,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let _data_dir;
    let (bootstrap, broker) = match &args.bootstrap {
        Some(b) => (b.clone(), None),
        None => {
            let dir = tempfile::tempdir()?;
            let log_dir = dir.path().to_string_lossy().into_owned();
            let mut props = vec![
                (
                    "listeners".to_string(),
                    "PLAINTEXT://127.0.0.1:0".to_string(),
                ),
                ("log.dirs".to_string(), log_dir),
            ];
            if let Some(n) = &args.flush_messages {
                props.push(("log.flush.interval.messages".into(), n.clone()));
            }
            let config =
                BrokerConfig::from_properties(props.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            let running = runtime.block_on(sluice_broker::start(config))?;
            _data_dir = dir;
            (running.addresses[0].to_string(), Some(running))
        }
    };
    println!(
        "bootstrap {bootstrap} ({}), {} records of {} B, {} partition(s), acks={}, linger.ms={}, compression={}, flush.messages={}",
        if broker.is_some() { "in-process broker" } else { "external broker" },
        args.messages,
        args.size,
        args.partitions,
        args.acks,
        args.linger_ms,
        args.compression,
        args.flush_messages.as_deref().unwrap_or("default"),
    );

    let run_id = std::process::id();
    let throughput_topic = format!("bench-throughput-{run_id}");
    let latency_topic = format!("bench-latency-{run_id}");
    runtime.block_on(create_topics(
        &bootstrap,
        &[&throughput_topic, &latency_topic],
        args.partitions,
    ))?;

    produce_phase(&args, &bootstrap, &throughput_topic)?;
    consume_phase(&args, &bootstrap, &throughput_topic)?;
    latency_phase(&args, &bootstrap, &latency_topic)?;

    if let Some(running) = broker {
        runtime.block_on(running.stop())?;
    }
    Ok(())
}

async fn create_topics(bootstrap: &str, topics: &[&str], partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    for result in admin.create_topics(&new, &AdminOptions::new()).await? {
        if let Err((topic, code)) = result {
            bail!("creating {topic}: {code}");
        }
    }
    Ok(())
}

fn producer_config(args: &Args, bootstrap: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("acks", &args.acks)
        .set("linger.ms", &args.linger_ms)
        .set("compression.type", &args.compression)
        .set("message.timeout.ms", "60000");
    cfg
}

fn produce_phase(args: &Args, bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let context = LatencyContext {
        latencies: Mutex::new(Vec::with_capacity(args.messages)),
        failures: Mutex::new(HashMap::new()),
    };
    let producer: ThreadedProducer<LatencyContext> =
        producer_config(args, bootstrap).create_with_context(context)?;
    // Incompressible-looking but deterministic payload, so compression codecs do real work.
    let payload: Vec<u8> = (0..args.size)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let start = Instant::now();
    for i in 0..args.messages {
        let key = i.to_be_bytes();
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(Instant::now()))
            .key(&key[..])
            .payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => bail!("send: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let elapsed = start.elapsed();
    let ctx = producer.context();
    let failures = lock(&ctx.failures);
    if !failures.is_empty() {
        bail!("delivery failures: {failures:?}");
    }
    let mut latencies = std::mem::take(&mut *lock(&ctx.latencies));
    report_rate("produce", latencies.len(), args.size, elapsed);
    report_latency("produce send->ack", &mut latencies);
    Ok(())
}

fn consumer(bootstrap: &str) -> anyhow::Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sluice-bench")
        .set("enable.auto.commit", "false")
        .create()?)
}

fn assign_all(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
    offset: Offset,
) -> anyhow::Result<()> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, offset)?;
    }
    consumer.assign(&tpl)?;
    Ok(())
}

fn consume_phase(args: &Args, bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let consumer = consumer(bootstrap)?;
    assign_all(&consumer, topic, args.partitions, Offset::Beginning)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(300);
    let mut seen = 0usize;
    while seen < args.messages {
        if Instant::now() > deadline {
            bail!("consumed only {seen} of {} records", args.messages);
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                if m.payload().map(<[u8]>::len) != Some(args.size) {
                    bail!("record at offset {} has the wrong size", m.offset());
                }
                seen += 1;
            }
            Some(Err(e)) => bail!("consume: {e}"),
            None => {}
        }
    }
    report_rate("consume", seen, args.size, start.elapsed());
    Ok(())
}

fn latency_phase(args: &Args, bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let base = Instant::now();
    let total = (args.rate * args.seconds) as usize;
    let consumer = consumer(bootstrap)?;
    assign_all(&consumer, topic, args.partitions, Offset::End)?;
    // Let the consumer learn its positions (the end is still 0) before the first send.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(1) {
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
            bail!("consume: {e}");
        }
    }

    let received = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let received = Arc::clone(&received);
        let done = Arc::clone(&done);
        std::thread::spawn(move || -> anyhow::Result<()> {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        let now = base.elapsed();
                        let sent = m
                            .payload()
                            .and_then(|p| p.get(..8))
                            .and_then(|b| <[u8; 8]>::try_from(b).ok())
                            .map(u64::from_be_bytes)
                            .context("payload without a timestamp")?;
                        lock(&received).push(now.saturating_sub(Duration::from_nanos(sent)));
                    }
                    Some(Err(e)) => bail!("consume: {e}"),
                    None => {}
                }
            }
            Ok(())
        })
    };

    let context = LatencyContext {
        latencies: Mutex::new(Vec::with_capacity(total)),
        failures: Mutex::new(HashMap::new()),
    };
    let producer: ThreadedProducer<LatencyContext> =
        producer_config(args, bootstrap).create_with_context(context)?;
    let interval_ns = 1_000_000_000 / args.rate;
    let mut payload = vec![0u8; args.size];
    for i in 0..total {
        let due = base + Duration::from_secs(1) + Duration::from_nanos(interval_ns * i as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = base.elapsed().as_nanos() as u64;
        payload[..8].copy_from_slice(&sent.to_be_bytes());
        let record = BaseRecord::with_opaque_to(topic, Box::new(Instant::now()))
            .key(&[][..])
            .payload(&payload[..]);
        if let Err((e, _)) = producer.send(record) {
            bail!("send: {e}");
        }
    }
    producer.flush(Duration::from_secs(60))?;
    let wait_until = Instant::now() + Duration::from_secs(30);
    while lock(&received).len() < total && Instant::now() < wait_until {
        std::thread::sleep(Duration::from_millis(10));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("consumer thread panicked"))??;
    let mut end_to_end = std::mem::take(&mut *lock(&received));
    if end_to_end.len() != total {
        bail!("received {} of {total} records", end_to_end.len());
    }
    println!(
        "latency phase: {} records/s for {} s ({:.2} MB/s)",
        args.rate,
        args.seconds,
        (args.rate as f64 * args.size as f64) / 1e6
    );
    let mut acks = std::mem::take(&mut *lock(&producer.context().latencies));
    report_latency("send->ack at fixed rate", &mut acks);
    report_latency("end-to-end at fixed rate", &mut end_to_end);
    Ok(())
}

fn report_rate(what: &str, records: usize, size: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{what:<8} {records} records in {secs:.2} s: {:.0} records/s, {:.1} MB/s",
        records as f64 / secs,
        (records * size) as f64 / secs / 1e6
    );
}

fn report_latency(what: &str, samples: &mut [Duration]) {
    if samples.is_empty() {
        println!("{what}: no samples");
        return;
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1e3
    };
    println!(
        "{what:<26} p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        at(0.50),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}
