//! `sluice topic|group|produce|consume`: admin and client commands that speak the Kafka
//! protocol to any broker, Sluice or Apache Kafka, in the spirit of kafka-topics.sh,
//! kafka-consumer-groups.sh and kafka-console-producer/consumer.sh.
//!
//! A small client of its own (`connection`, `client`) negotiates versions with
//! ApiVersions and routes each request as a real client would; each command is one module.
//! It depends on no broker code: what it shares with the broker (API and error names,
//! SCRAM's key math, PEM stores) is in `sluice-protocol`.

pub mod args;
mod client;
mod connection;
mod consume;
mod error;
mod fetched;
mod group;
mod group_describe;
mod interrupt;
mod log_sizes;
mod metadata;
mod offsets;
mod output;
mod partition_filter;
mod partitioner;
mod placement;
mod produce;
mod reset;
mod sasl_client;
pub mod schema;
mod security;
mod share_group;
mod topic;

use std::time::Duration;

use anyhow::Context;

pub use args::AdminCommand;
use args::ConnectArgs;
use client::Client;
/// The Kafka-protocol connection the broker also uses to reach its peers (replica fetchers).
pub use connection::{Connection, Timeouts};
pub use error::CliError;
pub use security::Security;

/// Runs an admin command to completion on its own runtime; an error means exit status 1.
pub fn run(command: AdminCommand) -> anyhow::Result<()> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = runtime.block_on(execute(command));
    // Do not wait for a blocking write to a reader that stopped reading.
    runtime.shutdown_background();
    Ok(result?)
}

async fn execute(command: AdminCommand) -> Result<(), CliError> {
    match command {
        AdminCommand::Topic { connect, action } => {
            topic::run(&mut connect_client(&connect).await?, action).await
        }
        AdminCommand::Group { connect, action } => {
            group::run(&mut connect_client(&connect).await?, action).await
        }
        AdminCommand::Schema { registry, action } => schema::run(&registry, action).await,
        AdminCommand::Produce(args) => {
            let mut client = connect_client(&args.connect).await?;
            produce::run(&mut client, args).await
        }
        AdminCommand::Consume(args) => {
            let mut client = connect_client(&args.connect).await?;
            consume::run(&mut client, args).await
        }
    }
}

async fn connect_client(args: &ConnectArgs) -> Result<Client, CliError> {
    let timeouts = Timeouts {
        connect: Duration::from_millis(args.connect_timeout_ms.max(1)),
        request: Duration::from_millis(args.request_timeout_ms.max(1)),
    };
    let security = match &args.command_config {
        Some(path) => security::Security::load(path)?,
        None => security::Security::default(),
    };
    Client::connect(&args.bootstrap_server, timeouts, security).await
}

/// Logs go to stderr, warnings and errors only unless `RUST_LOG` says otherwise: the
/// commands' own output is on stdout.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
