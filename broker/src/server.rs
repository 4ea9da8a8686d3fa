//! Listeners, the accept loop, connection permits, and ordered shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use sluice_config::BrokerConfig;
use sluice_storage::{Storage, StorageConfig};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::acl::Authorizer;
use crate::broker::Broker;
use crate::clock::SystemClock;
use crate::conn_limits::PerIpLimits;
use crate::coordinator_log::{CoordinatorFlush, CoordinatorLog, SoleReplica};
use crate::coordinator_ownership::LeaderHint;
use crate::fetch_session::FetchSessionCache;
use crate::group::log_store::LogGroupStore;
use crate::group::ports::TopicCatalog;
use crate::group::GroupCoordinator;
use crate::group_configs::GroupConfigs;
use crate::internal_topics::{
    GROUP_METADATA_TOPIC, SHARE_GROUP_STATE_TOPIC, TRANSACTION_STATE_TOPIC,
};
use crate::metrics::Metrics;
use crate::quota::QuotaManager;
use crate::replication::view_catalog::ViewCatalog;
use crate::replication::ClusterNode;
use crate::sasl::SaslListener;
use crate::scram_store::ScramStore;
use crate::share::coordinator::{LogShareStateStore, ShareCoordinator};
use crate::share::persister::CoordinatorPersister;
use crate::share::ShareManager;
use crate::tls::TlsListener;
use crate::txn::cluster::ClusterMarkers;
use crate::txn::local_markers::LocalMarkers;
use crate::txn::log_store::LogTxnStore;
use crate::txn::ports::MarkerLog;
use crate::txn::TxnCoordinator;
use crate::{connection, coordinator_import, coordinator_loader, tasks};

/// A bound listener.
pub(crate) struct BoundListener {
    pub(crate) name: String,
    pub(crate) local_addr: SocketAddr,
    listener: TcpListener,
    /// TLS of an SSL or SASL_SSL listener.
    tls: Option<Arc<TlsListener>>,
    /// SASL of a SASL_PLAINTEXT or SASL_SSL listener.
    sasl: Option<Arc<SaslListener>>,
}

/// Raises the soft open-files limit to the hard one, as the JVM does for Kafka: the
/// default soft limit (often 1024) is far below what many partitions and clients need.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::debug!(from = ?limit.current, to = ?limit.maximum, "raised the open-files limit")
        }
        Err(e) => {
            tracing::warn!(limit = ?limit.current, error = %e, "could not raise the open-files limit")
        }
    }
}

/// Opens storage and binds every listener; advertised port 0 becomes the bound port.
pub(crate) async fn bind(
    config: BrokerConfig,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(Arc<Broker>, Vec<BoundListener>)> {
    raise_open_files_limit();
    let storage_config = StorageConfig::from_broker(&config);
    let storage = tokio::task::spawn_blocking(move || Storage::open(storage_config))
        .await
        .context("opening storage")?
        .with_context(|| format!("opening log.dirs {}", config.log_dir.display()))?;
    let scram = Arc::new(ScramStore::new(storage.credentials()));
    let mut bound = Vec::new();
    for l in &config.listeners {
        let tls = match &l.tls {
            Some(t) => Some(Arc::new(TlsListener::new(&l.name, t.clone())?)),
            None => None,
        };
        let sasl = match &l.sasl {
            Some(s) => Some(Arc::new(SaslListener::new(
                &l.name,
                s.clone(),
                scram.clone(),
            )?)),
            None => None,
        };
        let addr = l.bind_address();
        let listener = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding listener {} on {addr}", l.name))?;
        let local_addr = listener.local_addr()?;
        tracing::info!(listener = %l.name, address = %local_addr, protocol = ?l.security_protocol, "listening");
        bound.push(BoundListener {
            name: l.name.clone(),
            local_addr,
            listener,
            tls,
            sasl,
        });
    }
    let mut advertised = config.advertised_listeners.clone();
    for a in &mut advertised {
        if a.port == 0 {
            if let Some(b) = bound.iter().find(|b| b.name == a.name) {
                a.port = b.local_addr.port();
            }
        }
    }
    if !config.ignored.is_empty() {
        tracing::info!(properties = ?config.ignored, "accepted Kafka properties that have no effect on a single node");
    }
    tracing::info!(
        cluster_id = storage.cluster_id(),
        node_id = config.node_id,
        "broker ready"
    );
    let storage = Arc::new(storage);
    let fetch_sessions = FetchSessionCache::new(config.max_incremental_fetch_session_cache_slots);
    let opened_tier = crate::tier::Tier::open(&config).await?;
    let cluster = if config.cluster.etcd_endpoints.is_empty() {
        None
    } else {
        let remote = opened_tier.as_ref().map(|t| t.reader.clone());
        let node = ClusterNode::start(&config, &advertised, storage.clone(), remote).await?;
        let cluster_id = node.view.borrow().cluster_id.clone();
        if let Some(configured) = config.cluster_id.as_ref().filter(|c| **c != cluster_id) {
            node.shutdown().await;
            anyhow::bail!(
                "cluster.id {configured} differs from the id {cluster_id} of the cluster in etcd"
            );
        }
        tracing::info!(cluster_id, node_id = config.node_id, "joined the cluster");
        scram
            .join(node.meta.clone())
            .await
            .context("moving SCRAM credentials into the cluster")?;
        Some(node)
    };
    let authorizer = match &cluster {
        None => {
            Authorizer::load(config.authorizer.clone(), storage.acls()).context("loading ACLs")?
        }
        Some(node) => {
            if !storage.acls().load().unwrap_or_default().is_empty() {
                tracing::warn!("ACLs stored in this data directory are not used in a cluster, whose ACLs live in its metadata store: create them again there");
            }
            Authorizer::replicated(config.authorizer.clone(), node.meta.clone())
        }
    };
    let quotas = match &cluster {
        None => QuotaManager::load(
            storage.quotas(),
            config.quota_window_size,
            config.quota_window_num,
        )
        .context("loading client quotas")?,
        Some(node) => QuotaManager::replicated(
            node.meta.clone(),
            config.quota_window_size,
            config.quota_window_num,
        ),
    };
    let group_configs = match &cluster {
        None => GroupConfigs::load(storage.clone()).context("loading group configs")?,
        Some(node) => GroupConfigs::replicated(node.meta.clone()),
    };
    let topics: Arc<dyn TopicCatalog> = match &cluster {
        None => storage.clone(),
        Some(node) => Arc::new(ViewCatalog::new(node.view.clone())),
    };
    let coordinator_log = match &cluster {
        Some(node) => node.coordinator_log.clone(),
        None => Arc::new(CoordinatorLog::new(
            storage.clone(),
            Arc::new(SoleReplica),
            CoordinatorFlush::AsPolicy,
        )),
    };
    let group_store = Arc::new(LogGroupStore::new(
        coordinator_log.clone(),
        config.groups.offsets_topic_num_partitions,
    ));
    let txn_store = Arc::new(LogTxnStore::new(
        coordinator_log.clone(),
        storage.clone(),
        config.transactions.state_log_num_partitions,
    ));
    let groups = Arc::new(
        GroupCoordinator::new(
            group_store.clone(),
            topics.clone(),
            Arc::new(SystemClock),
            config.groups.clone(),
        )
        .with_share_config(config.shares.clone()),
    );
    let share_coordinator = Arc::new(ShareCoordinator::new(
        Arc::new(LogShareStateStore::new(coordinator_log.clone())),
        config.shares.state_topic_num_partitions,
    ));
    let shares = Arc::new(ShareManager::new(
        config.shares.clone(),
        Arc::new(CoordinatorPersister::new(
            share_coordinator.clone(),
            cluster.clone(),
        )),
        Arc::new(SystemClock),
    ));
    let (markers, txn_markers): (Arc<dyn MarkerLog>, _) = match &cluster {
        None => (
            Arc::new(LocalMarkers::new(storage.clone(), groups.clone())),
            None,
        ),
        Some(node) => {
            let markers = Arc::new(ClusterMarkers::new(
                storage.clone(),
                node.clone(),
                groups.clone(),
            ));
            (markers.clone(), Some(markers))
        }
    };
    let txns = Arc::new(TxnCoordinator::new(
        txn_store.clone(),
        markers,
        groups.clone(),
        config.transactions.clone(),
    ));
    match &cluster {
        Some(node) => {
            groups.set_leader_hint(leads_in_view(node, GROUP_METADATA_TOPIC, config.node_id));
            txns.set_leader_hint(leads_in_view(node, TRANSACTION_STATE_TOPIC, config.node_id));
            share_coordinator.set_leader_hint(leads_in_view(
                node,
                SHARE_GROUP_STATE_TOPIC,
                config.node_id,
            ));
        }
        // A single node leads every partition: those of the internal topics it has are
        // loaded before it serves, the others when the topics are created.
        None => {
            let targets = coordinator_import::Targets {
                log: &coordinator_log,
                groups: group_store.as_ref(),
                group_coordinator: &groups,
                txns: txn_store.as_ref(),
            };
            coordinator_import::import_legacy_state(&storage, &config, targets)
                .await
                .context("moving consumer groups and transactions into the internal topics")?;
            let (s, g, t, sc) = (
                storage.clone(),
                groups.clone(),
                txns.clone(),
                share_coordinator.clone(),
            );
            tokio::task::spawn_blocking(move || {
                let all = coordinator_loader::Coordinators {
                    groups: &g,
                    txns: &t,
                    shares: &sc,
                };
                for topic in [
                    GROUP_METADATA_TOPIC,
                    TRANSACTION_STATE_TOPIC,
                    SHARE_GROUP_STATE_TOPIC,
                ] {
                    coordinator_loader::load_sole(&s, &all, topic);
                }
            })
            .await
            .context("loading consumer groups and transactions")?;
        }
    }
    let tier = opened_tier.map(|t| {
        let logs: Arc<dyn sluice_tier::TieredLogs> = match &cluster {
            Some(node) => crate::replication::remote_metadata::ClusterTieredLogs::start(
                storage.clone(),
                node.replicas.clone(),
                node.meta.clone(),
                t.task_interval_ms(),
                node.stopping(),
            ),
            None => storage.clone(),
        };
        t.start(logs)
    });
    if let Some(t) = &tier {
        metrics
            .register_tier(&t.metrics)
            .context("registering the remote tier's metrics")?;
    }
    let schema_registry = if config.schema_registry.listeners.is_empty() {
        None
    } else {
        let (s, log, topic) = (
            storage.clone(),
            coordinator_log.clone(),
            config.schema_registry.topic.clone(),
        );
        let opened = tokio::task::spawn_blocking(move || {
            crate::schema_registry::SchemaRegistry::open(s, log, &topic)
        })
        .await
        .context("opening the schema registry")?
        .context("opening the schema registry's topic")?;
        Some(Arc::new(opened))
    };
    Ok((
        Arc::new(Broker {
            config,
            storage,
            fetch_sessions,
            advertised,
            groups,
            txns,
            shares,
            share_coordinator,
            group_configs: Arc::new(group_configs),
            coordinator_log,
            txn_markers,
            scram,
            authorizer: Arc::new(authorizer),
            quotas: Arc::new(quotas),
            metrics,
            cluster,
            topics,
            tier,
            schema_registry,
        }),
        bound,
    ))
}

/// Whether the cluster view names `node_id` the leader of a partition of `topic`.
fn leads_in_view(node: &ClusterNode, topic: &'static str, node_id: i32) -> LeaderHint {
    let view = node.view.clone();
    Box::new(move |p| {
        view.borrow()
            .partitions
            .get(&(topic.to_string(), p))
            .is_some_and(|s| s.leader == node_id)
    })
}

/// Serves until `shutdown` completes, then: stop accepting, let connections finish the
/// request in hand, stop background tasks, flush the log.
pub(crate) async fn serve(
    broker: Arc<Broker>,
    listeners: Vec<BoundListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(broker.config.max_connections));
    let per_ip = Arc::new(PerIpLimits::new(
        broker.config.max_connections_per_ip,
        broker
            .config
            .max_connections_per_ip_overrides
            .iter()
            .map(|(ip, n)| (*ip, *n)),
    ));
    let mut accept_loops = JoinSet::new();
    let connections = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
    for l in listeners {
        accept_loops.spawn(accept_loop(
            broker.clone(),
            l,
            permits.clone(),
            per_ip.clone(),
            stop_rx.clone(),
            connections.clone(),
        ));
    }
    let background = tasks::spawn_background(broker.clone(), stop_rx.clone());

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    // Leadership moves at once (the lease is revoked), rather than after the session
    // timeout; produce requests waiting for replication are answered NOT_LEADER_OR_FOLLOWER.
    if let Some(cluster) = &broker.cluster {
        cluster.shutdown().await;
    }
    // Connections blocked in JoinGroup or SyncGroup must not hold up the drain below.
    broker.groups.fail_waiting();
    while accept_loops.join_next().await.is_some() {}
    let mut conns = std::mem::take(&mut *connections.lock().await);
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections did not finish within 10 s; closing them");
        conns.abort_all();
    }
    for t in background {
        let _ = t.await;
    }
    if let Some(reason) = broker.storage.log_dir_health().subscribe().borrow().clone() {
        // Nothing written since the failure can be trusted to reach the disk: the next
        // start's recovery repairs the log's tail instead.
        tracing::error!(
            reason,
            "shutdown complete without flushing: the data directory failed"
        );
        return Err(anyhow::anyhow!("the data directory failed: {reason}"));
    }
    let mut result = Ok(());
    // As Kafka does, the recovery threads' count of partitions are flushed at once: each
    // fsync mostly waits on the disk, which takes several together.
    let dirty: Vec<_> = broker
        .storage
        .partitions()
        .into_iter()
        .filter(|p| p.has_unflushed())
        .collect();
    let mut flushes = futures::stream::iter(dirty.into_iter().map(|p| async move {
        let flushed = p.flush_now().await;
        (p, flushed)
    }))
    .buffer_unordered(broker.config.num_recovery_threads.max(1));
    while let Some((p, flushed)) = flushes.next().await {
        if let Err(e) = flushed {
            tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flush at shutdown failed");
            result = Err(anyhow::anyhow!("flush at shutdown failed: {e}"));
        }
    }
    if let Err(e) = broker.storage.flush_index() {
        tracing::error!(error = %e, "index flush at shutdown failed");
        result = Err(anyhow::anyhow!("index flush at shutdown failed: {e}"));
    }
    tracing::info!("shutdown complete");
    result
}

/// The principal of a client that did not authenticate.
const ANONYMOUS: &str = "User:ANONYMOUS";

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the TLS handshake of a new connection; `None` when it fails (a plaintext client,
/// an untrusted or missing client certificate, a principal no rule maps).
async fn handshake(
    tls: &TlsListener,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) -> Option<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    String,
)> {
    let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await;
    let stream = match accepted {
        Ok(Ok(s)) => s,
        // A peer that closes before the handshake ends (a TCP health check, a port probe)
        // is no failure worth an info line each time.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            tracing::debug!(%peer, error = %e, "connection closed during the TLS handshake");
            return None;
        }
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out");
            return None;
        }
    };
    match tls.principal(stream.get_ref().1.peer_certificates()) {
        Ok(principal) => {
            tracing::debug!(%peer, %principal, "TLS connection");
            Some((stream, principal))
        }
        Err(e) => {
            tracing::info!(%peer, error = format!("{e:#}"), "TLS client refused");
            None
        }
    }
}

async fn accept_loop(
    broker: Arc<Broker>,
    l: BoundListener,
    permits: Arc<Semaphore>,
    per_ip: Arc<PerIpLimits>,
    mut stop: watch::Receiver<bool>,
    connections: Arc<tokio::sync::Mutex<JoinSet<()>>>,
) {
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = crate::stopped(&mut stop) => return,
        };
        let accepted = tokio::select! {
            a = l.listener.accept() => a,
            _ = crate::stopped(&mut stop) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Kafka closes a connection over its address's limit at once.
                let Some(slot) = per_ip.acquire(peer.ip()) else {
                    tracing::debug!(%peer, limit = broker.config.max_connections_per_ip, "connection refused: max.connections.per.ip reached");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let broker = broker.clone();
                let stop = stop.clone();
                let name = l.name.clone();
                let mut conns = connections.lock().await;
                // Reap finished connection tasks so the set does not grow without bound.
                while conns.try_join_next().is_some() {}
                let tls = l.tls.clone();
                let sasl = l.sasl.clone();
                broker.metrics.connection_opened(&name);
                let opened_on = name.clone();
                let metrics = broker.metrics.clone();
                conns.spawn(async move {
                    match tls {
                        None => {
                            connection::serve(
                                broker,
                                stream,
                                peer,
                                name,
                                ANONYMOUS.into(),
                                sasl,
                                stop,
                            )
                            .await
                        }
                        Some(tls) => {
                            if let Some((stream, principal)) = handshake(&tls, stream, peer).await {
                                connection::serve(broker, stream, peer, name, principal, sasl, stop)
                                    .await
                            }
                        }
                    }
                    metrics.connection_closed(&opened_on);
                    drop(slot);
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(listener = %l.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
