//! This broker as a member of a cluster: registered in the cluster metadata under a
//! lease, following its view to give replicas their roles, shrinking lagging ISRs, and
//! campaigning to be the controller.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_cli::Security;
use sluice_cluster::{
    BrokerRegistration, ClusterMetadata, ClusterView, Endpoint, EtcdMetadata, EtcdSettings,
    EtcdTls, Liveness, MetadataError, OFFLINE_LOG_DIRS,
};
use sluice_config::{BrokerConfig, Listener};
use sluice_storage::Storage;
use tokio::sync::watch;

use super::broker_client::BrokerClient;
use super::fetcher::{FetcherSettings, Fetchers, FollowerThrottle};
use super::manager::{ReplicaManager, ReplicationSettings};
use super::txn_verification::TxnVerification;
use crate::coordinator_log::{CoordinatorFlush, CoordinatorLog};

/// The cluster side of a broker.
pub(crate) struct ClusterNode {
    /// Where the cluster metadata lives.
    pub(crate) meta: Arc<dyn ClusterMetadata>,
    /// The etcd connection, for the clean shutdown (revoking the lease).
    etcd: Arc<EtcdMetadata>,
    /// The latest view of the cluster.
    pub(crate) view: watch::Receiver<Arc<ClusterView>>,
    /// This broker's replicas.
    pub(crate) replicas: Arc<ReplicaManager>,
    /// The coordinators' internal partitions this broker leads, as a log.
    pub(crate) coordinator_log: Arc<CoordinatorLog>,
    /// Connections to the other brokers.
    pub(crate) broker_client: BrokerClient,
    /// Which producers' transactions are verified in the partitions this broker leads.
    pub(crate) txn_verification: TxnVerification,
    /// Stops the background tasks.
    stop: watch::Sender<bool>,
}

impl ClusterNode {
    /// A receiver that turns true when the node stops.
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

impl ClusterNode {
    /// Connects to etcd, registers this broker (waiting out a previous registration of the
    /// same node id that has not expired yet, as after a crash), and starts following the
    /// cluster: the view gives replicas their roles, a ticker shrinks ISRs, and the
    /// controller runs whenever this broker wins its election.
    pub(crate) async fn start(
        config: &BrokerConfig,
        advertised: &[Listener],
        storage: Arc<Storage>,
        remote: Option<sluice_tier::RemoteReader>,
    ) -> anyhow::Result<Arc<Self>> {
        let c = &config.cluster;
        let settings = EtcdSettings {
            endpoints: c.etcd_endpoints.clone(),
            prefix: c.etcd_prefix.clone(),
            username: c.etcd_username.clone(),
            password: c.etcd_password.clone(),
            tls: (c.etcd_ssl_ca_location.is_some() || c.etcd_ssl_certificate_location.is_some())
                .then(|| EtcdTls {
                    ca_location: c.etcd_ssl_ca_location.clone(),
                    certificate_location: c.etcd_ssl_certificate_location.clone(),
                    key_location: c.etcd_ssl_key_location.clone(),
                }),
            session_timeout_ms: c.session_timeout_ms.max(1) as u64,
            heartbeat_interval_ms: c.heartbeat_interval_ms.max(1) as u64,
        };
        let etcd =
            Arc::new(EtcdMetadata::connect(settings).await.with_context(|| {
                format!("connecting to etcd at {}", c.etcd_endpoints.join(","))
            })?);
        let me = BrokerRegistration {
            node_id: config.node_id,
            rack: c.rack.clone(),
            endpoints: advertised
                .iter()
                .map(|l| Endpoint {
                    listener: l.name.clone(),
                    host: if l.host.is_empty() {
                        "localhost".to_string()
                    } else {
                        l.host.clone()
                    },
                    port: l.port,
                    security_protocol: l.security_protocol.name().to_string(),
                })
                .collect(),
        };
        // A restart is a new start: whatever failed before (the disk replaced, space freed),
        // this data directory has just opened.
        if etcd.view().borrow().log_dir_offline(config.node_id) {
            etcd.apply_entries(
                OFFLINE_LOG_DIRS,
                Vec::new(),
                vec![config.node_id.to_string()],
            )
            .await
            .context("clearing this broker's data directory failure in the cluster")?;
        }
        let log_dir_failure = storage.log_dir_health().subscribe();
        let liveness = register(&etcd, me, c.session_timeout_ms).await?;
        let meta: Arc<dyn ClusterMetadata> = etcd.clone();
        // Producer ids must be unique across brokers: a new leader holds the producer
        // state its predecessor wrote.
        let producer_ids = super::producer_ids::ClusterProducerIds::start(meta.clone())
            .await
            .context("reserving producer ids in the cluster")?;
        storage.set_producer_id_source(producer_ids);
        let peers = config
            .replication
            .inter_broker_client
            .as_ref()
            .context("the inter-broker listener was not resolved")?;
        let security = Arc::new(
            Security::broker_client(peers.tls.as_ref(), peers.sasl.as_ref())
                .with_context(|| format!("the inter-broker listener {}", peers.listener))?,
        );
        let fetchers = Fetchers::new(FetcherSettings {
            node_id: config.node_id,
            listener: peers.listener.clone(),
            security: security.clone(),
            wait_max_ms: config.replication.fetch_wait_max_ms,
            max_bytes: config.replication.fetch_max_bytes,
            response_max_bytes: config.replication.fetch_response_max_bytes,
            backoff: Duration::from_millis(config.replication.fetch_backoff_ms.max(1) as u64),
            throttle: Arc::new(FollowerThrottle {
                storage: storage.clone(),
                quota: Default::default(),
            }),
            remote,
        });
        let settings = ReplicationSettings {
            lag_time_max_ms: config.replication.lag_time_max_ms,
        };
        let replicas = ReplicaManager::new(
            config.node_id,
            settings,
            storage.clone(),
            meta.clone(),
            liveness,
            fetchers,
        );
        let (stop, stop_rx) = watch::channel(false);
        let node = Arc::new(ClusterNode {
            view: meta.view(),
            meta: meta.clone(),
            etcd,
            replicas: replicas.clone(),
            coordinator_log: Arc::new(CoordinatorLog::new(
                storage,
                replicas.clone(),
                CoordinatorFlush::Always,
            )),
            broker_client: BrokerClient::new(peers.listener.clone(), security, meta.view()),
            txn_verification: TxnVerification::default(),
            stop,
        });
        tokio::spawn(follow_view(node.clone(), log_dir_failure, stop_rx.clone()));
        tokio::spawn(shrink_isrs(replicas, settings, stop_rx.clone()));
        tokio::spawn(async move {
            let mut stop_rx = stop_rx;
            tokio::select! {
                _ = sluice_cluster::controller::run(meta) => {}
                _ = crate::stopped(&mut stop_rx) => {}
            }
        });
        Ok(node)
    }

    /// A clean shutdown: stop fetching and leading, and revoke the lease so that the
    /// controller moves leadership at once rather than after the session timeout.
    pub(crate) async fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.replicas.stop();
        self.etcd.shutdown().await;
    }
}

/// Registers, retrying while a previous registration of this node id is still alive
/// (a restart after a crash, before the old lease expired).
async fn register(
    etcd: &EtcdMetadata,
    me: BrokerRegistration,
    session_timeout_ms: i32,
) -> anyhow::Result<watch::Receiver<Liveness>> {
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(2 * session_timeout_ms.max(1000) as u64);
    loop {
        match etcd.register(me.clone()).await {
            Ok(liveness) => {
                tracing::info!(node_id = me.node_id, "registered in the cluster");
                return Ok(liveness);
            }
            Err(MetadataError::DuplicateBrokerId(id)) if tokio::time::Instant::now() < deadline => {
                tracing::info!(
                    node_id = id,
                    "waiting for the previous registration of this node id to expire"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(anyhow::anyhow!(e))
                    .with_context(|| format!("registering node.id {} in the cluster", me.node_id))
            }
        }
    }
}

/// Applies every new view to the replicas.
async fn follow_view(
    node: Arc<ClusterNode>,
    mut log_dir_failure: watch::Receiver<Option<String>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut view = node.view.clone();
    // A failure from before the subscription would never show as a change: report it now.
    if let Some(reason) = log_dir_failure.borrow_and_update().clone() {
        tokio::spawn(report_log_dir_failure(node.clone(), reason, stop.clone()));
    }
    loop {
        let current = view.borrow_and_update().clone();
        node.replicas.apply(&current);
        tokio::select! {
            changed = view.changed() => if changed.is_err() { return },
            failed = log_dir_failure.changed() => {
                if failed.is_err() {
                    return;
                }
                let reason = log_dir_failure.borrow_and_update().clone();
                if let Some(reason) = reason {
                    tokio::spawn(report_log_dir_failure(node.clone(), reason, stop.clone()));
                }
            }
            _ = crate::stopped(&mut stop) => return,
        }
    }
}

/// Tells the cluster that this broker's data directory failed, so that the controller
/// moves its leaderships and takes it out of the ISRs; retried until etcd takes it.
async fn report_log_dir_failure(
    node: Arc<ClusterNode>,
    reason: String,
    mut stop: watch::Receiver<bool>,
) {
    let me = node.replicas.node_id().to_string();
    loop {
        let put = vec![(me.clone(), reason.clone().into_bytes())];
        match node
            .meta
            .apply_entries(OFFLINE_LOG_DIRS, put, Vec::new())
            .await
        {
            Ok(()) => {
                tracing::warn!("reported the data directory failure to the cluster: its partitions move to other replicas");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot report the data directory failure to the cluster yet; retrying")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = crate::stopped(&mut stop) => return,
        }
    }
}

/// Every half `replica.lag.time.max.ms`, as Kafka's isr-expiration task.
async fn shrink_isrs(
    replicas: Arc<ReplicaManager>,
    settings: ReplicationSettings,
    mut stop: watch::Receiver<bool>,
) {
    let period = Duration::from_millis((settings.lag_time_max_ms / 2).max(1) as u64);
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = tick.tick() => replicas.shrink_lagging(),
            _ = crate::stopped(&mut stop) => return,
        }
    }
}

/// Why a topic cannot be placed or created: a Kafka error and its message.
pub(crate) type Refusal = (kafka_protocol::ResponseError, String);

/// The Kafka error of a cluster metadata write that failed: UNKNOWN_TOPIC_OR_PARTITION
/// when `what` (a topic or partition) is gone, REQUEST_TIMED_OUT (retriable) otherwise.
pub(super) fn metadata_refusal(e: MetadataError, what: &str) -> Refusal {
    match e {
        MetadataError::UnknownTopic(_) => (
            kafka_protocol::ResponseError::UnknownTopicOrPartition,
            format!("{what} does not exist"),
        ),
        other => (
            kafka_protocol::ResponseError::RequestTimedOut,
            other.to_string(),
        ),
    }
}

/// How long an admin request waits for its change to reach this broker's view.
const VIEW_WAIT: Duration = Duration::from_secs(30);

impl ClusterNode {
    /// Waits until the view satisfies `done` (a change this broker wrote has come back
    /// through the watch); after [`VIEW_WAIT`], REQUEST_TIMED_OUT saying "`change` but
    /// this broker has not seen it yet".
    pub(super) async fn wait_view(
        &self,
        done: impl Fn(&ClusterView) -> bool,
        change: &str,
    ) -> Result<(), Refusal> {
        let mut view = self.view.clone();
        let reached = tokio::time::timeout(VIEW_WAIT, view.wait_for(|v| done(v))).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err((
                kafka_protocol::ResponseError::RequestTimedOut,
                format!("{change} but this broker has not seen it yet"),
            )),
        }
    }

    /// Whether the cluster has a topic of this name.
    pub(crate) fn topic_exists(&self, name: &str) -> bool {
        self.view.borrow().topics.contains_key(name)
    }

    /// The live brokers with their racks.
    fn live_brokers(&self) -> Vec<(i32, Option<String>)> {
        let view = self.view.borrow();
        view.brokers
            .values()
            .filter(|b| !view.log_dir_offline(b.node_id))
            .map(|b| (b.node_id, b.rack.clone()))
            .collect()
    }

    /// Replicas for a new topic: the request's own assignment (checked), or Kafka's
    /// placement over the live brokers.
    pub(crate) fn place(
        &self,
        partitions: i32,
        replication_factor: i32,
        manual: Option<Vec<Vec<i32>>>,
    ) -> Result<Vec<Vec<i32>>, Refusal> {
        use kafka_protocol::ResponseError::{InvalidReplicaAssignment, InvalidReplicationFactor};
        let live = self.live_brokers();
        if let Some(manual) = manual {
            let rf = manual.first().map_or(0, Vec::len);
            for (i, replicas) in manual.iter().enumerate() {
                let mut unique = replicas.clone();
                unique.sort_unstable();
                unique.dedup();
                if replicas.is_empty() || unique.len() != replicas.len() || replicas.len() != rf {
                    return Err((
                        InvalidReplicaAssignment,
                        format!("partition {i} must list {rf} distinct brokers, as the first partition does"),
                    ));
                }
                if let Some(unknown) = replicas
                    .iter()
                    .find(|r| !live.iter().any(|(id, _)| id == *r))
                {
                    return Err((
                        InvalidReplicaAssignment,
                        format!("broker {unknown} of partition {i} is not registered"),
                    ));
                }
            }
            return Ok(manual);
        }
        if replication_factor as usize > live.len() {
            return Err((
                InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only {} broker(s) are registered.",
                    live.len()
                ),
            ));
        }
        sluice_cluster::assign::assign_replicas(&live, partitions, replication_factor, 0, None)
            .map_err(|e| (InvalidReplicationFactor, e.to_string()))
    }

    /// Creates a topic in the cluster metadata and waits until this broker's view has it
    /// (so that the client's next Metadata finds it). Returns the topic id.
    pub(crate) async fn create_topic(
        &self,
        name: &str,
        assignment: Vec<Vec<i32>>,
        configs: std::collections::BTreeMap<String, String>,
    ) -> Result<uuid::Uuid, Refusal> {
        use kafka_protocol::ResponseError;
        let topic_id = uuid::Uuid::new_v4();
        let states = assignment
            .iter()
            .map(|replicas| sluice_cluster::PartitionState {
                leader: replicas.first().copied().unwrap_or(-1),
                leader_epoch: 0,
                isr: replicas.clone(),
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
                partition_epoch: 0,
            })
            .collect();
        let record = sluice_cluster::TopicRecord {
            name: name.to_string(),
            topic_id,
            assignment,
            configs,
        };
        match self.meta.create_topic(record, states).await {
            Ok(()) => {}
            Err(sluice_cluster::MetadataError::AlreadyExists(_)) => {
                return Err((
                    ResponseError::TopicAlreadyExists,
                    format!("Topic '{name}' already exists."),
                ))
            }
            Err(e) => return Err(metadata_refusal(e, &format!("topic {name}"))),
        }
        self.wait_view(
            |v| v.topics.get(name).is_some_and(|t| t.topic_id == topic_id),
            &format!("topic {name} was created"),
        )
        .await?;
        Ok(topic_id)
    }
}

impl ClusterNode {
    /// The live leader of `key`'s partition of an internal topic (Kafka's `partitionFor`).
    pub(crate) fn coordinator(&self, topic: &str, key: &str) -> Option<i32> {
        let view = self.view.borrow();
        let partitions = view.topics.get(topic)?.assignment.len() as i32;
        let index = crate::internal_topics::partition_for(key, partitions);
        let state = view.partitions.get(&(topic.to_string(), index))?;
        (state.leader >= 0 && view.is_serving(state.leader)).then_some(state.leader)
    }
}

impl ClusterNode {
    /// A topic's name and id, by name or by id.
    pub(crate) fn find_topic(
        &self,
        name: Option<&str>,
        id: uuid::Uuid,
    ) -> Option<(String, uuid::Uuid)> {
        let view = self.view.borrow();
        let t = match name {
            Some(n) => view.topics.get(n),
            None => view.topics.values().find(|t| t.topic_id == id),
        }?;
        Some((t.name.clone(), t.topic_id))
    }

    /// Deletes a topic from the cluster metadata and waits until this broker's view no
    /// longer has it; every replica deletes its data as its view drops the topic.
    pub(crate) async fn delete_topic(&self, name: &str) -> Result<(), Refusal> {
        if let Err(e) = self.meta.delete_topic(name).await {
            return Err(metadata_refusal(e, &format!("topic {name}")));
        }
        self.wait_view(
            |v| !v.topics.contains_key(name),
            &format!("topic {name} was deleted"),
        )
        .await?;
        Ok(())
    }
}

impl ClusterNode {
    /// A topic's config overrides as the cluster holds them.
    pub(crate) fn topic_configs(
        &self,
        name: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        self.view
            .borrow()
            .topics
            .get(name)
            .map(|t| t.configs.clone())
    }

    /// Replaces a topic's overrides in the cluster metadata and waits until this broker's
    /// view has them (each replica applies them from its view).
    pub(crate) async fn set_topic_configs(
        &self,
        name: &str,
        configs: std::collections::BTreeMap<String, String>,
    ) -> Result<(), Refusal> {
        if let Err(e) = self.meta.set_topic_configs(name, configs.clone()).await {
            return Err(metadata_refusal(e, &format!("topic {name}")));
        }
        self.wait_view(
            |v| v.topics.get(name).is_some_and(|t| t.configs == configs),
            &format!("the configs of {name} were changed"),
        )
        .await?;
        Ok(())
    }

    /// The partition count of a topic and the replicas of its partition 0.
    pub(crate) fn partitioning(&self, name: &str) -> Option<(i32, Vec<i32>)> {
        let view = self.view.borrow();
        let t = view.topics.get(name)?;
        Some((
            t.assignment.len() as i32,
            t.assignment.first().cloned().unwrap_or_default(),
        ))
    }

    /// Grows a topic to `count` partitions (CreatePartitions): the new partitions' replicas
    /// are the request's, or placed as Kafka places them after the existing ones.
    pub(crate) async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        manual: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), Refusal> {
        use kafka_protocol::ResponseError;
        let (current, assignment, first) = {
            let view = self.view.borrow();
            let t = view.topics.get(name).ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic {name} does not exist"),
                )
            })?;
            (
                t.assignment.len() as i32,
                t.assignment.clone(),
                t.assignment.first().cloned().unwrap_or_default(),
            )
        };
        let added = match manual {
            Some(m) => self.place(count - current, first.len() as i32, Some(m))?,
            None => sluice_cluster::assign::assign_replicas(
                &self.live_brokers(),
                count - current,
                first.len() as i32,
                current,
                Some(&first),
            )
            .map_err(|e| (ResponseError::InvalidReplicationFactor, e.to_string()))?,
        };
        if validate_only {
            return Ok(());
        }
        let states = added
            .iter()
            .map(|r| sluice_cluster::PartitionState::initial(r))
            .collect();
        let mut grown = assignment;
        grown.extend(added);
        match self.meta.create_partitions(name, grown, states).await {
            Ok(()) => {}
            Err(e) => return Err((ResponseError::InvalidPartitions, e.to_string())),
        }
        self.wait_view(
            |v| {
                v.topics
                    .get(name)
                    .is_some_and(|t| t.assignment.len() as i32 == count)
            },
            &format!("partitions were added to {name}"),
        )
        .await?;
        Ok(())
    }
}
