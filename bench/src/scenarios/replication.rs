//! A three-broker cluster on etcd: what replication costs and how long a leader's death
//! stalls producers. Throughput of 1 KiB records to one partition with one replica
//! (acks=1) and three (acks=1, acks=all); the latency of one acks=all record at a time;
//! and the time from a leader's kill -9 (or clean stop) to the next acknowledged record.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::producer::{BaseRecord, Producer as _, ThreadedProducer};

use super::produce::{self, Budget, Case};
use super::{case, Ctx};
use crate::broker_process::BrokerProcess;
use crate::client::{self, Acks};
use crate::etcd_process::EtcdProcess;
use crate::report::Row;
use crate::stats::Percentiles;
use crate::target::{Broker, Target};

/// The scenario's name.
pub(crate) const NAME: &str = "replication";

/// Brokers in the cluster.
const BROKERS: i32 = 3;

/// Sequential records timed for the latency figures (fewer in smoke mode).
const SEQUENTIAL: usize = 2_000;

/// Records sent before the timed ones.
const WARM_UP: u64 = 20;

/// Waiting for one acknowledgement longer than this is a failure.
const ACK_TIMEOUT: Duration = Duration::from_secs(120);

/// etcd and three brokers; dropped together.
struct Cluster {
    _etcd: EtcdProcess,
    brokers: Vec<Broker>,
}

impl Cluster {
    fn start(ctx: &Ctx<'_>, session_timeout_ms: u32) -> anyhow::Result<Cluster> {
        let Target::Managed {
            bin,
            work_dir,
            overrides,
        } = ctx.target
        else {
            bail!("needs brokers this process starts");
        };
        let etcd = EtcdProcess::start(work_dir)?;
        let mut brokers = Vec::new();
        for node_id in 1..=BROKERS {
            let mut props: Vec<(String, String)> = vec![
                ("node.id".into(), node_id.to_string()),
                ("metadata.etcd.endpoints".into(), etcd.endpoint()),
                (
                    "broker.session.timeout.ms".into(),
                    session_timeout_ms.to_string(),
                ),
            ];
            props.extend(overrides.iter().cloned());
            brokers.push(Broker::Managed(BrokerProcess::start(
                bin, work_dir, &props,
            )?));
        }
        let cluster = Cluster {
            _etcd: etcd,
            brokers,
        };
        let admin = client::admin(&cluster.bootstrap())?;
        let started = Instant::now();
        loop {
            let md = admin
                .inner()
                .fetch_metadata(None, Duration::from_secs(10))
                .context("Metadata")?;
            if md.brokers().len() == BROKERS as usize {
                return Ok(cluster);
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("only {} of {BROKERS} brokers joined", md.brokers().len());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn bootstrap(&self) -> String {
        self.brokers
            .iter()
            .map(Broker::bootstrap)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The leader's node id of `topic`-0, once it has one and (with `isr`) that many in sync.
    fn leader(&self, topic: &str, isr: usize) -> anyhow::Result<i32> {
        let admin = client::admin(&self.bootstrap())?;
        let started = Instant::now();
        loop {
            let md = admin
                .inner()
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .context("Metadata")?;
            let p = md
                .topics()
                .first()
                .and_then(|t| t.partitions().first())
                .map(|p| (p.leader(), p.isr().len()));
            if let Some((leader, in_sync)) = p {
                if leader >= 0 && in_sync >= isr {
                    return Ok(leader);
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("{topic}-0 has no leader with {isr} in-sync replicas");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn broker(&mut self, node_id: i32) -> anyhow::Result<&mut BrokerProcess> {
        self.brokers
            .get_mut(usize::try_from(node_id - 1)?)
            .and_then(Broker::process)
            .context("no such broker")
    }
}

fn topic_name(case: &str) -> String {
    format!(
        "bench-replication-{}-{}",
        case.replace(['=', ' '], "-"),
        std::process::id()
    )
}

/// Sends one record and waits for its acknowledgement; returns how long that took.
fn send_one(
    producer: &ThreadedProducer<Acks>,
    topic: &str,
    payload: &[u8],
    sent_before: u64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    client::send(producer, BaseRecord::to(topic).payload(payload))?;
    let acks = producer.context();
    while acks.delivered.load(Ordering::Acquire) + acks.failed.load(Ordering::Acquire)
        <= sent_before
    {
        if started.elapsed() > ACK_TIMEOUT {
            bail!("no acknowledgement within {ACK_TIMEOUT:?}");
        }
        std::thread::yield_now();
    }
    acks.check(sent_before + 1)?;
    Ok(started.elapsed())
}

/// Throughput with `replicas` replicas and `acks`, and the latency of records sent one
/// at a time.
fn throughput_case(
    ctx: &Ctx<'_>,
    cluster: &Cluster,
    name: &str,
    replicas: i32,
    acks: &'static str,
    row: &mut Row,
) -> anyhow::Result<()> {
    let topic = topic_name(name);
    client::create_replicated_topics(
        &cluster.bootstrap(),
        &[(topic.clone(), 1)],
        &[],
        1,
        replicas,
    )?;
    let leader = cluster.leader(&topic, replicas as usize)?;
    let case = Case {
        record_size: 1024,
        partitions: 1,
        acks,
        fsync: false,
        compression: "none",
    };
    let budget = Budget {
        seconds: ctx.args.seconds,
        messages: ctx.args.messages,
        bytes: ctx.args.bytes,
    };
    let broker = &cluster.brokers[usize::try_from(leader - 1)?];
    let measured = produce::measure(broker, &topic, &case, &budget)?;
    measured.add_to(row);
    row.setting("replicas", replicas)
        .setting("acks", acks)
        .setting("record.size", 1024)
        .note("broker CPU is the leader's");

    let producer = client::producer(
        &cluster.bootstrap(),
        &[
            ("acks", acks),
            ("linger.ms", "0"),
            ("enable.idempotence", "false"),
        ],
    )?;
    let payload = client::payloads(1024, 1).remove(0);
    let count = if ctx.args.smoke { 50 } else { SEQUENTIAL };
    // The first records wait for connections and the leader's metadata: not timed.
    for i in 0..WARM_UP {
        send_one(&producer, &topic, &payload, i)?;
    }
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        samples.push(send_one(&producer, &topic, &payload, WARM_UP + i as u64)?);
    }
    let p = Percentiles::new(samples);
    row.figure("one at a time p50", p.median_ms(), "ms").figure(
        "one at a time p99",
        p.ms(0.99),
        "ms",
    );
    Ok(())
}

/// The time from stopping the leader (kill -9, or SIGTERM) to the next acknowledged
/// acks=all record, sent by a producer that was already connected.
fn failover_case(ctx: &Ctx<'_>, kill: bool, row: &mut Row) -> anyhow::Result<()> {
    let session_timeout_ms = 9_000;
    let mut cluster = Cluster::start(ctx, session_timeout_ms)?;
    let topic = topic_name(if kill {
        "failover-kill"
    } else {
        "failover-stop"
    });
    client::create_replicated_topics(&cluster.bootstrap(), &[(topic.clone(), 1)], &[], 1, 3)?;
    let leader = cluster.leader(&topic, 3)?;
    let producer = client::producer(
        &cluster.bootstrap(),
        &[
            ("acks", "all"),
            ("linger.ms", "0"),
            ("enable.idempotence", "true"),
        ],
    )?;
    let payload = client::payloads(1024, 1).remove(0);
    for i in 0..100 {
        send_one(&producer, &topic, &payload, i)?;
    }
    let stopped = Instant::now();
    if kill {
        cluster.broker(leader)?.kill()?;
    } else {
        cluster.broker(leader)?.stop()?;
    }
    send_one(&producer, &topic, &payload, 100)?;
    let stall = stopped.elapsed();
    let new_leader = cluster.leader(&topic, 1)?;
    if new_leader == leader {
        bail!("the stopped broker {leader} still leads");
    }
    row.figure("first ack after", stall.as_secs_f64() * 1000.0, "ms")
        .setting("broker.session.timeout.ms", session_timeout_ms)
        .setting("acks", "all")
        .setting("replicas", 3);
    producer.flush(Duration::from_secs(30))?;
    Ok(())
}

/// The throughput and latency cases on one cluster, then the two failover cases, each on
/// a cluster of its own.
pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Row> {
    const CASES: &[(&str, i32, &str)] = &[
        ("1KiB p1 RF=1 acks=1", 1, "1"),
        ("1KiB p1 RF=3 acks=1", 3, "1"),
        ("1KiB p1 RF=3 acks=all", 3, "all"),
    ];
    if !ctx.target.is_managed() {
        return vec![Row::new(NAME, "cluster").skip("needs brokers this process starts")];
    }
    let cluster = match Cluster::start(ctx, 9_000) {
        Ok(c) => c,
        Err(e) => return vec![Row::new(NAME, "cluster").fail(&e)],
    };
    let mut rows: Vec<Row> = CASES
        .iter()
        .map(|(name, replicas, acks)| {
            case(NAME, name, |row| {
                throughput_case(ctx, &cluster, name, *replicas, acks, row)
            })
        })
        .collect();
    drop(cluster);
    rows.push(case(NAME, "leader kill -9 to next ack", |row| {
        failover_case(ctx, true, row)
    }));
    rows.push(case(NAME, "leader SIGTERM to next ack", |row| {
        failover_case(ctx, false, row)
    }));
    rows
}
