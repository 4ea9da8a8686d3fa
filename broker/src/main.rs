//! The `sluice` binary: parse the command line, load properties, run the broker (or a
//! maintenance command on its data directory, or an admin command against a running
//! cluster).

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_config::{parse_properties, BrokerConfig};

/// A Kafka-protocol-compatible broker.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    /// A server.properties-style file.
    // Not global: `topic create --config KEY=VALUE` is a topic config, as in kafka-topics.sh.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Sets a property, as kafka-server-start.sh --override does (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Log format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manages SCRAM users in the data directory of a stopped broker.
    Scram {
        /// A server.properties-style file (the same as --config before `scram`).
        #[arg(long = "config", value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        /// Sets a property (the same as --override before `scram`).
        #[arg(long = "override", value_name = "KEY=VALUE", global = true)]
        overrides: Vec<String>,
        #[command(subcommand)]
        action: ScramAction,
    },
    #[command(flatten)]
    Admin(sluice_cli::AdminCommand),
}

#[derive(Debug, Subcommand)]
enum ScramAction {
    /// Sets a user's SCRAM password (read from standard input unless --password is given).
    Set {
        #[arg(long)]
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-256")]
        mechanism: String,
        /// The password; visible to other local users in the process list, so prefer stdin.
        #[arg(long)]
        password: Option<String>,
        #[arg(long, default_value_t = 4096)]
        iterations: i32,
    },
    /// Deletes a user's credential for one mechanism.
    Delete {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "SCRAM-SHA-256")]
        mechanism: String,
    },
    /// Lists users with their mechanisms and iteration counts.
    List,
}

fn load_config(cli: &Cli) -> anyhow::Result<BrokerConfig> {
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
    BrokerConfig::from_properties(props.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .context("invalid configuration")
}

fn scram_command(action: ScramAction) -> anyhow::Result<sluice_broker::ScramAdmin> {
    Ok(match action {
        ScramAction::Set {
            user,
            mechanism,
            password,
            iterations,
        } => {
            let password = match password {
                Some(p) => p,
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            sluice_broker::ScramAdmin::Set {
                user,
                mechanism,
                password,
                iterations,
            }
        }
        ScramAction::Delete { user, mechanism } => {
            sluice_broker::ScramAdmin::Delete { user, mechanism }
        }
        ScramAction::List => sluice_broker::ScramAdmin::List,
    })
}

fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    // Admin commands talk to a cluster; the broker's own properties do not apply.
    cli.command = match cli.command.take() {
        Some(Command::Admin(command)) => {
            if let Err(e) = sluice_cli::run(command) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            return Ok(());
        }
        other => other,
    };
    sluice_broker::init_tracing(cli.log_format == "json");
    // `--config` and `--override` are not global, so that `topic create --config` can be a
    // topic config; `scram` takes them after its name too.
    if let Some(Command::Scram {
        config, overrides, ..
    }) = &mut cli.command
    {
        if let Some(path) = config.take() {
            cli.config = Some(path);
        }
        cli.overrides.append(overrides);
    }
    let config = load_config(&cli)?;
    if let Some(Command::Scram { action, .. }) = cli.command.take() {
        return sluice_broker::run_scram_admin(&config, scram_command(action)?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice")
        .build()
        .context("starting the runtime")?;
    runtime.block_on(sluice_broker::run(config, sluice_broker::shutdown_signal()))
}
