//! The Sluice broker as a library: `run(config, shutdown)` serves until `shutdown`
//! completes, so tests can start brokers in-process on ephemeral ports.

mod acl;
mod api;
mod broker;
mod conn_limits;
mod connection;
mod dispatch;
mod error;
mod fetch_session;
mod group;
mod quota;
mod reload;
mod sasl;
mod scram_admin;
mod server;
mod tasks;
mod tls;
mod txn;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use sluice_config::BrokerConfig;
use tokio::sync::watch;

pub use broker::Broker;
pub use scram_admin::{run_scram_admin, ScramAdmin};

/// Sets up `tracing` output: human-readable text, or JSON; level from `RUST_LOG`.
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the broker");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A broker started in the background; dropping it does not stop it, [`RunningBroker::stop`] does.
pub struct RunningBroker {
    /// The bound address of each listener, in `listeners` order.
    pub addresses: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningBroker {
    /// Stops the broker and waits for its orderly shutdown.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.done.await?
    }
}

/// Opens storage, binds the listeners and serves in the background.
pub async fn start(config: BrokerConfig) -> anyhow::Result<RunningBroker> {
    let (stop, mut stop_rx) = watch::channel(false);
    let (broker, listeners) = server::bind(config).await?;
    let addresses = listeners.iter().map(|l| l.local_addr).collect();
    let done = tokio::spawn(async move {
        server::serve(broker, listeners, async move {
            stopped(&mut stop_rx).await;
        })
        .await
    });
    Ok(RunningBroker {
        addresses,
        stop,
        done,
    })
}

/// Runs the broker until `shutdown` completes, then shuts down in order.
pub async fn run(
    config: BrokerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (broker, listeners): (Arc<Broker>, _) = server::bind(config).await?;
    server::serve(broker, listeners, shutdown).await
}

/// Completes once `stop` turns true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard returned by wait_for is not Send; drop it here rather than across awaits.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}
