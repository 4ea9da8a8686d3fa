//! Produce throughput over the matrix record size × partitions × acks × flush policy ×
//! compression, each case on a fresh broker, bounded by time, records and bytes.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::producer::{BaseRecord, Producer as _};

use super::{case, glob_match, Ctx};
use crate::client;
use crate::procfs::{self, CpuUsage};
use crate::report::Row;
use crate::target::Broker;

/// The scenario's name.
pub(crate) const NAME: &str = "produce";

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Case {
    /// Payload bytes per record.
    pub(crate) record_size: usize,
    /// Partitions of the topic.
    pub(crate) partitions: i32,
    /// The producer's `acks`.
    pub(crate) acks: &'static str,
    /// `log.flush.interval.messages=1`: an fsync per group of appended requests.
    pub(crate) fsync: bool,
    /// The producer's `compression.type`.
    pub(crate) compression: &'static str,
}

/// The case the latency scenario paces itself by: 1 KiB, 1 partition, acks=1.
pub(crate) const LATENCY_BASE: Case = Case {
    record_size: 1024,
    partitions: 1,
    acks: "1",
    fsync: false,
    compression: "none",
};

impl Case {
    /// The name in the table, e.g. `1KiB p16 acks=all fsync lz4`.
    pub(crate) fn name(&self) -> String {
        let size = if self.record_size % 1024 == 0 {
            format!("{}KiB", self.record_size / 1024)
        } else {
            format!("{}B", self.record_size)
        };
        format!(
            "{size} p{} acks={} {} {}",
            self.partitions,
            self.acks,
            if self.fsync { "fsync" } else { "no-flush" },
            self.compression
        )
    }

    /// Broker properties of the case.
    pub(crate) fn broker_props(&self) -> Vec<(&'static str, &'static str)> {
        if self.fsync {
            vec![("log.flush.interval.messages", "1")]
        } else {
            Vec::new()
        }
    }

    /// Producer settings of the case.
    pub(crate) fn producer_settings(
        &self,
        linger_ms: &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        vec![
            ("acks", self.acks),
            ("compression.type", self.compression),
            ("linger.ms", linger_ms),
        ]
    }
}

/// The full matrix (32 cases), or one case per value of each axis in smoke mode.
pub(crate) fn matrix(smoke: bool) -> Vec<Case> {
    if smoke {
        return vec![
            LATENCY_BASE,
            Case {
                record_size: 100,
                partitions: 16,
                acks: "all",
                fsync: true,
                compression: "lz4",
            },
        ];
    }
    let mut cases = Vec::new();
    for record_size in [1024, 100] {
        for partitions in [1, 16] {
            for acks in ["1", "all"] {
                for fsync in [false, true] {
                    for compression in ["none", "lz4"] {
                        cases.push(Case {
                            record_size,
                            partitions,
                            acks,
                            fsync,
                            compression,
                        });
                    }
                }
            }
        }
    }
    cases
}

/// When a produce run stops sending: the first limit reached.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Wall time.
    pub(crate) seconds: f64,
    /// Records.
    pub(crate) messages: Option<u64>,
    /// Payload bytes.
    pub(crate) bytes: u64,
}

/// What one produce run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    /// Records acknowledged.
    pub(crate) records: u64,
    /// Payload bytes acknowledged.
    pub(crate) bytes: u64,
    /// First send to last acknowledgement.
    pub(crate) wall: Duration,
    /// CPU over that time.
    pub(crate) cpu: CpuUsage,
}

impl Measured {
    /// Records per second.
    pub(crate) fn records_per_s(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Payload megabytes (10^6) per second.
    pub(crate) fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Adds the throughput and CPU figures to `row`.
    pub(crate) fn add_to(&self, row: &mut Row) {
        row.figure("records", self.records as f64, "records")
            .figure("rate", self.records_per_s(), "rec/s")
            .figure("payload", self.mb_per_s(), "MB/s");
        add_cpu(row, &self.cpu);
    }
}

/// Adds broker CPU (cores, share of the machine) and client CPU to `row`.
pub(crate) fn add_cpu(row: &mut Row, cpu: &CpuUsage) {
    if let Some(cores) = cpu.broker_cores() {
        row.figure("broker CPU", cores, "cores").figure(
            "broker share",
            100.0 * cores / procfs::cores() as f64,
            "%",
        );
    }
    row.figure("client CPU", cpu.client_cores(), "cores");
}

/// Produces to `topic` as fast as the producer goes until the budget is spent, then
/// waits for every acknowledgement.
pub(crate) fn measure(
    broker: &Broker,
    topic: &str,
    case: &Case,
    budget: &Budget,
) -> anyhow::Result<Measured> {
    // Distinct payloads so that lz4 sees varied records, not one repeated.
    let payloads = client::payloads(case.record_size, 1024);
    measure_payloads(broker, topic, case, budget, &payloads)
}

/// [`measure`] with these payloads, sent in turn.
pub(crate) fn measure_payloads(
    broker: &Broker,
    topic: &str,
    case: &Case,
    budget: &Budget,
    payloads: &[Vec<u8>],
) -> anyhow::Result<Measured> {
    let producer = client::producer(&broker.bootstrap(), &case.producer_settings("5"))?;
    // Connected and knowing the leaders before the clock starts.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .context("Metadata")?;
    let max_records = budget
        .messages
        .unwrap_or(u64::MAX)
        .min(budget.bytes / case.record_size.max(1) as u64)
        .max(1);
    let deadline = Duration::try_from_secs_f64(budget.seconds).unwrap_or(Duration::MAX);
    let meter = broker.cpu_meter()?;
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < max_records && (sent % 1024 != 0 || started.elapsed() < deadline) {
        let payload = &payloads[sent as usize % payloads.len()];
        client::send(&producer, BaseRecord::to(topic).payload(&payload[..]))?;
        sent += 1;
    }
    producer
        .flush(Duration::from_secs(120))
        .context("waiting for acknowledgements")?;
    let wall = started.elapsed();
    let cpu = meter.finish_at(wall)?;
    producer.context().check(sent)?;
    Ok(Measured {
        records: sent,
        bytes: sent * case.record_size as u64,
        wall,
        cpu,
    })
}

/// Runs one case on its own broker (or on the external broker, with its own topic).
pub(crate) fn run_case(ctx: &Ctx<'_>, case: &Case, row: &mut Row) -> anyhow::Result<Measured> {
    let broker = ctx.target.broker(&case.broker_props())?;
    let topic = format!("bench-produce-{}", std::process::id());
    let mut topic_configs = Vec::new();
    if case.fsync && !ctx.target.is_managed() {
        // A broker property cannot be set from here; Kafka's per-topic equivalent can.
        topic_configs.push(("flush.messages", "1"));
        row.note("fsync set as topic config flush.messages=1 (the broker must honour it)");
    }
    client::create_topics(
        &broker.bootstrap(),
        &[(topic.clone(), case.partitions)],
        &topic_configs,
        1,
    )?;
    for (k, v) in case.producer_settings("5") {
        row.setting(k, v);
    }
    for (k, v) in case.broker_props() {
        row.setting(&format!("broker {k}"), v);
    }
    row.setting("record.size", case.record_size)
        .setting("partitions", case.partitions);
    let budget = Budget {
        seconds: ctx.args.seconds,
        messages: ctx.args.messages,
        bytes: ctx.args.bytes,
    };
    let measured = measure(&broker, &topic, case, &budget).map_err(|e| broker.explain(e));
    if !ctx.target.is_managed() {
        // The external broker keeps running; leave it as it was.
        client::delete_topics(&broker.bootstrap(), &[&topic])?;
    }
    measured
}

/// Runs the matrix, or the cases `--case` selects.
pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Row> {
    matrix(ctx.args.smoke)
        .into_iter()
        .filter(|c| {
            ctx.args
                .case
                .as_deref()
                .is_none_or(|pattern| glob_match(pattern, &c.name()))
        })
        .map(|c| {
            eprintln!("  produce {}", c.name());
            case(NAME, &c.name(), |row| {
                let measured = run_case(ctx, &c, row)?;
                measured.add_to(row);
                Ok(())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_has_every_combination_once() {
        let m = matrix(false);
        assert_eq!(m.len(), 32);
        let mut names: Vec<String> = m.iter().map(Case::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 32);
        assert!(m.contains(&LATENCY_BASE));
        assert_eq!(LATENCY_BASE.name(), "1KiB p1 acks=1 no-flush none");
    }

    #[test]
    fn smoke_covers_every_value_of_every_axis() {
        let m = matrix(true);
        for size in [1024, 100] {
            assert!(m.iter().any(|c| c.record_size == size));
        }
        for p in [1, 16] {
            assert!(m.iter().any(|c| c.partitions == p));
        }
        assert!(m.iter().any(|c| c.fsync) && m.iter().any(|c| !c.fsync));
        assert!(m.iter().any(|c| c.acks == "all") && m.iter().any(|c| c.acks == "1"));
        assert!(m.iter().any(|c| c.compression == "lz4"));
    }
}
