//! The command line.

use std::path::PathBuf;

use clap::Parser;
use serde::Serialize;

/// Runs named benchmark scenarios against a Sluice broker (or any Kafka broker) with
/// librdkafka, prints one table and writes the results as JSON.
#[derive(Debug, Clone, Parser, Serialize)]
#[command(name = "sluice-bench", version, about)]
pub(crate) struct Args {
    /// Runs only these scenarios (a name or a glob such as `prod*`; repeatable). Default: all.
    #[arg(long = "scenario", value_name = "NAME")]
    pub(crate) scenarios: Vec<String>,
    /// Lists the scenarios and exits.
    #[arg(long)]
    pub(crate) list: bool,
    /// A tiny version of every scenario: proves the suite still works; its numbers mean nothing.
    #[arg(long)]
    pub(crate) smoke: bool,
    /// Targets a running broker instead of starting one; scenarios that restart the
    /// broker or read its process are skipped.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) bootstrap: Option<String>,
    /// The sluice binary to start [default: $CARGO_TARGET_DIR/release/sluice, else
    /// ~/.cache/sluice-target/release/sluice].
    #[arg(long, value_name = "PATH")]
    pub(crate) sluice_bin: Option<PathBuf>,
    /// Extra broker property for every broker started (repeatable).
    #[arg(long = "broker-override", value_name = "KEY=VALUE")]
    pub(crate) broker_overrides: Vec<String>,
    /// Where the brokers' data directories and fio's files go [default: the system temp dir].
    #[arg(long, value_name = "DIR")]
    pub(crate) work_dir: Option<PathBuf>,
    /// Where the JSON results go [default: $CARGO_TARGET_DIR/bench/<UTC time>.json, else
    /// target/bench/<UTC time>.json].
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Length of each produce run and of the latency measurement.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub(crate) seconds: f64,
    /// Stops each produce run after this many records (whichever of the limits comes first).
    #[arg(long, value_name = "N")]
    pub(crate) messages: Option<u64>,
    /// Stops each produce run after this many payload bytes.
    #[arg(long, default_value_t = 1_000_000_000, value_name = "BYTES")]
    pub(crate) bytes: u64,
    /// Runs only the produce cases whose name matches (a glob, e.g. `1KiB p1 *`).
    #[arg(long = "case", value_name = "GLOB")]
    pub(crate) case: Option<String>,
    /// End-to-end latency at this many records/s instead of 50% and 10% of the measured maximum.
    #[arg(long, value_name = "N")]
    pub(crate) latency_rate: Option<u64>,
    /// Bytes written to the partition that the consume scenario reads.
    #[arg(long, default_value_t = 1 << 30, value_name = "BYTES")]
    pub(crate) consume_bytes: u64,
    /// Partition counts of the partitions scenario, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10000,100000",
        value_name = "N,N"
    )]
    pub(crate) partitions_counts: Vec<u32>,
    /// Members of the group in the group-churn scenario.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub(crate) group_members: usize,
    /// Partitions of the group-churn topic.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub(crate) group_partitions: i32,
    /// How many members leave, one after another (one rebalance timed each).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub(crate) churn_rounds: usize,
}

impl Args {
    /// Shrinks every scenario to a few thousand records when `--smoke` is given.
    pub(crate) fn apply_smoke(&mut self) {
        if !self.smoke {
            return;
        }
        self.seconds = self.seconds.min(1.0);
        self.messages = Some(self.messages.map_or(3_000, |m| m.min(3_000)));
        self.bytes = self.bytes.min(4 << 20);
        self.consume_bytes = self.consume_bytes.min(4 << 20);
        self.partitions_counts = vec![100];
        self.group_members = self.group_members.min(3);
        self.group_partitions = self.group_partitions.min(6);
        self.churn_rounds = 1;
    }

    /// The broker properties given with `--broker-override`, split.
    pub(crate) fn broker_overrides(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.broker_overrides
            .iter()
            .map(|o| {
                o.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| anyhow::anyhow!("--broker-override {o}: expected KEY=VALUE"))
            })
            .collect()
    }
}
