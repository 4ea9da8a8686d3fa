//! The `sluice` binary: parse the command line, load properties, run the broker.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use sluice_config::{parse_properties, BrokerConfig};

/// A Kafka-protocol-compatible broker.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    /// A server.properties-style file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Sets a property, as kafka-server-start.sh --override does (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Log format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    sluice_broker::init_tracing(cli.log_format == "json");
    let mut props: Vec<(String, String)> = Vec::new();
    if let Some(path) = &cli.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        props.extend(parse_properties(&text).with_context(|| format!("in {}", path.display()))?);
    }
    for o in &cli.overrides {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("--override {o}: expected key=value"))?;
        props.push((k.trim().to_string(), v.trim().to_string()));
    }
    let config = BrokerConfig::from_properties(props.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .context("invalid configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice")
        .build()
        .context("starting the runtime")?;
    runtime.block_on(sluice_broker::run(config, sluice_broker::shutdown_signal()))
}
