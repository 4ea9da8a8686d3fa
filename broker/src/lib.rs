//! The Sluice broker as a library: `run(config, shutdown)` serves until `shutdown`
//! completes, so tests can start brokers in-process on ephemeral ports.

mod acl;
mod api;
mod broker;
mod clock;
mod cluster_metrics;
mod conn_limits;
mod connection;
mod coordinator_import;
mod coordinator_loader;
mod coordinator_log;
mod coordinator_ownership;
mod dispatch;
mod error;
mod fetch_session;
mod group;
mod group_configs;
mod http;
mod internal_topics;
mod metrics;
mod quota;
mod reload;
mod replication;
mod response;
mod sasl;
mod schema_registry;
mod scram_admin;
mod scram_store;
mod server;
mod session;
mod share;
mod shared_set;
mod tasks;
mod tier;
mod tls;
mod txn;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use sluice_config::BrokerConfig;
use tokio::sync::watch;

pub use broker::Broker;
pub use scram_admin::{run_scram_admin, ScramAdmin};

/// Sets up `tracing` output: human-readable text, or JSON; level from `RUST_LOG`.
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: `docker logs`, journald and files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
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
    /// The bound address of `metrics.listener`, when set.
    pub metrics_address: Option<SocketAddr>,
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

/// A broker with storage open and every listener bound, not yet serving.
struct Launched {
    broker: Arc<Broker>,
    listeners: Vec<server::BoundListener>,
    http: Arc<http::HttpState>,
    /// The metrics listener's stop signal and task.
    http_task: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
    metrics_address: Option<SocketAddr>,
    /// The schema registry listeners' stop signal and tasks.
    registry_tasks: (watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>),
}

/// Binds `schema.registry.listeners` and serves the registry on them until the returned
/// sender turns true.
async fn serve_registry(
    broker: &Arc<Broker>,
) -> anyhow::Result<(watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>)> {
    let (tx, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let Some(registry) = &broker.schema_registry else {
        return Ok((tx, tasks));
    };
    let cfg = &broker.config.schema_registry;
    let service = Arc::new(schema_registry::RegistryService {
        registry: registry.clone(),
        access: schema_registry::Access::new(
            cfg.authentication,
            broker.scram.clone(),
            broker.authorizer.clone(),
        ),
        max_request_bytes: cfg.max_request_bytes,
    });
    for l in &cfg.listeners {
        let tls = match &l.tls {
            Some(t) => Some(
                tls::TlsListener::new(sluice_config::REGISTRY_LISTENER_NAME, t.clone())?.acceptor(),
            ),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(&l.address)
            .await
            .with_context(|| format!("binding schema.registry.listeners {}", l.address))?;
        tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "schema registry listening");
        tasks.push(tokio::spawn(schema_registry::serve(
            listener,
            tls,
            service.clone(),
            rx.clone(),
        )));
    }
    Ok((tx, tasks))
}

/// Binds the metrics listener first, so that `/health` answers while storage recovers,
/// then opens storage and binds the Kafka listeners.
async fn launch(config: BrokerConfig) -> anyhow::Result<Launched> {
    let metrics = Arc::new(metrics::Metrics::new()?);
    let state = Arc::new(http::HttpState::new(metrics.clone()));
    let mut http_task = None;
    let mut metrics_address = None;
    if let Some(addr) = &config.metrics_listener {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding metrics.listener {addr}"))?;
        let local = listener.local_addr()?;
        tracing::info!(address = %local, "metrics listening");
        metrics_address = Some(local);
        let (tx, rx) = watch::channel(false);
        http_task = Some((tx, tokio::spawn(http::serve(listener, state.clone(), rx))));
    }
    let (broker, listeners) = server::bind(config, metrics).await?;
    let registry_tasks = serve_registry(&broker).await?;
    Ok(Launched {
        broker,
        listeners,
        http: state,
        http_task,
        metrics_address,
        registry_tasks,
    })
}

/// Serves until `shutdown` completes; `/ready` turns 503 as shutdown begins.
async fn serve_launched(
    l: Launched,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    l.http.set_ready(l.broker.clone());
    let state = l.http.clone();
    let result = server::serve(l.broker, l.listeners, async move {
        shutdown.await;
        state.set_stopping();
    })
    .await;
    if let Some((stop, task)) = l.http_task {
        let _ = stop.send(true);
        let _ = task.await;
    }
    let (stop, tasks) = l.registry_tasks;
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
    result
}

/// Opens storage, binds the listeners and serves in the background.
pub async fn start(config: BrokerConfig) -> anyhow::Result<RunningBroker> {
    let (stop, mut stop_rx) = watch::channel(false);
    let launched = launch(config).await?;
    let addresses = launched.listeners.iter().map(|l| l.local_addr).collect();
    let metrics_address = launched.metrics_address;
    let done = tokio::spawn(serve_launched(launched, async move {
        stopped(&mut stop_rx).await;
    }));
    Ok(RunningBroker {
        addresses,
        metrics_address,
        stop,
        done,
    })
}

/// Runs the broker until `shutdown` completes, then shuts down in order.
pub async fn run(
    config: BrokerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_launched(launch(config).await?, shutdown).await
}

/// Completes once `stop` turns true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard returned by wait_for is not Send; drop it here rather than across awaits.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}
