//! The broker's own configuration (`server.properties`).

use std::path::PathBuf;
use std::time::Duration;

use crate::def::{broker_prop, Parsing, Role};
use crate::listener::Listener;
use crate::shares::ShareConfig;
use crate::topic::TopicConfig;
use crate::ConfigError;

/// The ACL authorizer's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Whether requests are authorized at all (`authorizer.class.name` is set).
    pub enabled: bool,
    /// `super.users`: principals allowed everything.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`: a resource without ACLs is open to all.
    pub allow_everyone_if_no_acl_found: bool,
}

/// When the log forces written data to disk (Kafka's `log.flush.*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    /// Force a flush once this many messages are unflushed (`log.flush.interval.messages`).
    pub interval_messages: u64,
    /// Force a flush of data older than this (`log.flush.interval.ms`); `None` means never.
    pub interval: Option<Duration>,
}

/// Replication quotas in bytes per second; `u64::MAX` (Kafka's `Long.MAX_VALUE`) is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationThrottle {
    /// `leader.replication.throttled.rate`: what a leader sends to throttled followers.
    pub leader: u64,
    /// `follower.replication.throttled.rate`: what a follower fetches for throttled replicas.
    pub follower: u64,
}

impl Default for ReplicationThrottle {
    fn default() -> Self {
        ReplicationThrottle {
            leader: i64::MAX as u64,
            follower: i64::MAX as u64,
        }
    }
}

impl FlushPolicy {
    /// True when the policy never forces a flush from the append path.
    pub fn is_lazy(&self) -> bool {
        self.interval_messages == u64::MAX
    }
}

/// Typed broker configuration; defaults are Kafka's except where a single-node
/// development broker needs otherwise (listener on 127.0.0.1:9092, data under ./data).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id` (or `broker.id`).
    pub node_id: i32,
    /// `listeners`.
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`; defaults to `listeners`.
    pub advertised_listeners: Vec<Listener>,
    /// `log.dirs` (or `log.dir`).
    pub log_dir: PathBuf,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `log.segment.bytes`.
    pub log_segment_bytes: u64,
    /// `log.roll.ms` (or `log.roll.hours`).
    pub log_roll_ms: i64,
    /// `log.retention.ms` (or `.minutes`, `.hours`); -1 keeps data forever.
    pub log_retention_ms: i64,
    /// `log.retention.bytes`; -1 means no size limit.
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms`.
    pub log_retention_check_interval: Duration,
    /// `num.recovery.threads.per.data.dir`: threads opening partitions at start-up.
    pub num_recovery_threads: usize,
    /// `log.max.open.segment.files` (Sluice's own): how many segment files may be open at
    /// once; `None` means half the process's open-files limit.
    pub log_max_open_segment_files: Option<usize>,
    /// `message.max.bytes`: the largest record batch accepted.
    pub message_max_bytes: i32,
    /// `max.incremental.fetch.session.cache.slots`: how many fetch sessions are kept.
    pub max_incremental_fetch_session_cache_slots: usize,
    /// `socket.request.max.bytes`: the largest request frame accepted.
    pub socket_request_max_bytes: i32,
    /// `log.flush.interval.messages` and `log.flush.interval.ms`.
    pub flush: FlushPolicy,
    /// `max.connections`.
    pub max_connections: usize,
    /// `max.connections.per.ip`: connections one client address may hold.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`: per-address exceptions (IP address → limit).
    pub max_connections_per_ip_overrides: std::collections::BTreeMap<std::net::IpAddr, usize>,
    /// `leader.replication.throttled.rate` and `follower.replication.throttled.rate`.
    pub replication_throttle: ReplicationThrottle,
    /// `metrics.listener`: `host:port` of the HTTP listener for `/metrics`, `/health` and
    /// `/ready`; none when unset.
    pub metrics_listener: Option<String>,
    /// `quota.window.num`: samples in a client quota's rate window.
    pub quota_window_num: usize,
    /// `quota.window.size.seconds`: the length of one sample.
    pub quota_window_size: Duration,
    /// `connections.max.idle.ms`: a connection without a complete request for this long
    /// is closed.
    pub connections_max_idle: Duration,
    /// The ACL authorizer (`authorizer.class.name`, `super.users`,
    /// `allow.everyone.if.no.acl.found`).
    pub authorizer: AuthorizerConfig,
    /// `connection.failed.authentication.delay.ms`: how long a failed SASL authentication
    /// waits before its answer and the close, to slow down password guessing.
    pub failed_authentication_delay: Duration,
    /// `cluster.id`: the cluster id reported to clients; generated and stored if unset.
    pub cluster_id: Option<String>,
    /// The replicated cluster: etcd, the broker session, the rack.
    pub cluster: crate::ClusterConfig,
    /// `replica.*`, `inter.broker.listener.name`: how a cluster member replicates.
    pub replication: crate::ReplicationConfig,
    /// Group coordinator settings (`group.*`, `offsets.*`).
    pub groups: GroupConfig,
    /// Transaction coordinator settings (`transaction.*`, `transactional.id.*`).
    pub transactions: TxnConfig,
    /// Share groups (KIP-932).
    pub shares: ShareConfig,
    /// Tiered storage (KIP-405).
    pub remote: crate::RemoteStorageConfig,
    /// The built-in Schema Registry.
    pub schema_registry: crate::SchemaRegistryConfig,
    /// Topic config defaults set by broker properties (`log.cleanup.policy`,
    /// `compression.type`, `log.message.timestamp.*`, `log.cleaner.*` topic defaults),
    /// under the topic configs' names; validated.
    pub topic_defaults: std::collections::BTreeMap<String, String>,
    /// The log cleaner's own settings (`log.cleaner.*`).
    pub cleaner: CleanerConfig,
    /// Accepted Kafka properties that have no effect here, for a start-up log line.
    pub ignored: Vec<String>,
    /// Every property given at start-up, as given: the source DescribeConfigs reports
    /// as STATIC_BROKER_CONFIG.
    pub set_properties: std::collections::BTreeMap<String, String>,
}

/// The group coordinator's settings, with Kafka's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub max_size: i32,
    /// `group.consumer.heartbeat.interval.ms`: how often a KIP-848 member heartbeats.
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms`: a KIP-848 member silent this long is removed.
    pub consumer_session_timeout_ms: i32,
    /// `offsets.retention.minutes`, in ms: how long offsets of an empty group are kept.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`: the longest metadata string of a committed offset.
    pub offset_metadata_max_bytes: i32,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.segment.bytes`: segment size of `__consumer_offsets`.
    pub offsets_topic_segment_bytes: i64,
    /// `offsets.topic.replication.factor`: replicas of `__consumer_offsets` in a cluster,
    /// which is created only once that many brokers are live.
    pub offsets_topic_replication_factor: i32,
}

/// The transaction coordinator's settings, with Kafka's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a producer may ask.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often expired
    /// transactions are looked for and aborted.
    pub abort_timed_out_interval_ms: i64,
    /// `transactional.id.expiration.ms`: how long an idle transactional id is remembered.
    pub id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: i64,
    /// `transaction.state.log.num.partitions`: partitions of `__transaction_state`.
    pub state_log_num_partitions: i32,
    /// `transaction.state.log.segment.bytes`: segment size of `__transaction_state`.
    pub state_log_segment_bytes: i64,
    /// `transaction.state.log.replication.factor`: replicas of `__transaction_state` in a
    /// cluster, which is created only once that many brokers are live.
    pub state_log_replication_factor: i32,
    /// `transaction.state.log.min.isr`: `min.insync.replicas` of `__transaction_state`.
    pub state_log_min_isr: i32,
    /// `producer.id.expiration.ms`: how long after its last batch's timestamp an idle
    /// producer id's state is kept on a partition.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`: how often expired producer ids are removed.
    pub producer_id_expiration_check_interval_ms: i64,
}

/// The log cleaner's settings, with Kafka's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.backoff.ms`: the pause when no log needs cleaning.
    pub backoff_ms: i64,
    /// `log.cleaner.dedupe.buffer.size`: memory for the key map of one cleaning pass.
    pub dedupe_buffer_size: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enable: true,
            backoff_ms: 15_000,
            dedupe_buffer_size: 134_217_728,
        }
    }
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            abort_timed_out_interval_ms: 10_000,
            id_expiration_ms: 7 * 24 * 60 * 60 * 1000,
            remove_expired_interval_ms: 3_600_000,
            state_log_num_partitions: 50,
            state_log_segment_bytes: 104_857_600,
            state_log_replication_factor: 3,
            state_log_min_isr: 2,
            producer_id_expiration_ms: 24 * 60 * 60 * 1000,
            producer_id_expiration_check_interval_ms: 600_000,
        }
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_session_timeout_ms: 45_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 104_857_600,
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let listener = Listener {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9092,
            security_protocol: crate::SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        };
        BrokerConfig {
            node_id: 1,
            listeners: vec![listener.clone()],
            advertised_listeners: vec![listener],
            log_dir: PathBuf::from("./data"),
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics: true,
            log_segment_bytes: 1024 * 1024 * 1024,
            log_roll_ms: 7 * 24 * 3600 * 1000,
            log_retention_ms: 7 * 24 * 3600 * 1000,
            log_retention_bytes: -1,
            log_retention_check_interval: Duration::from_millis(300_000),
            log_max_open_segment_files: None,
            // Kafka's default is 2; opening a partition mostly waits on the disk (its
            // directory, its last batch), so more threads than cores pay off.
            num_recovery_threads: 8,
            message_max_bytes: 1_048_588,
            max_incremental_fetch_session_cache_slots: 1000,
            socket_request_max_bytes: 104_857_600,
            flush: FlushPolicy {
                interval_messages: u64::MAX,
                interval: None,
            },
            max_connections: 10_000,
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: std::collections::BTreeMap::new(),
            replication_throttle: ReplicationThrottle::default(),
            connections_max_idle: Duration::from_millis(600_000),
            quota_window_num: 11,
            metrics_listener: None,
            quota_window_size: Duration::from_secs(1),
            failed_authentication_delay: Duration::from_millis(100),
            authorizer: AuthorizerConfig::default(),
            cluster_id: None,
            cluster: crate::ClusterConfig::default(),
            replication: crate::ReplicationConfig::default(),
            groups: GroupConfig::default(),
            transactions: TxnConfig::default(),
            shares: ShareConfig::default(),
            remote: crate::RemoteStorageConfig::default(),
            schema_registry: crate::SchemaRegistryConfig::default(),
            topic_defaults: Default::default(),
            cleaner: CleanerConfig::default(),
            ignored: Vec::new(),
            set_properties: Default::default(),
        }
    }
}

impl BrokerConfig {
    /// Builds the configuration from properties in order; later entries win.
    pub fn from_properties<'a, I>(props: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut p = Parsing::default();
        for (key, value) in props {
            let v = value.trim();
            p.cfg.set_properties.insert(key.to_string(), v.to_string());
            // The listeners' TLS and SASL settings are read per listener once all are in.
            if crate::tls::is_ssl_property(key) || crate::sasl::is_sasl_property(key) {
                continue;
            }
            match broker_prop(key).map(|d| d.role) {
                Some(Role::Parsed { set, .. }) => set(&mut p, key, v)?,
                Some(Role::TopicDefault { topic }) => {
                    // Checked with the topic config's rules; errors name the broker property.
                    let mut scratch =
                        TopicConfig::resolve(&BrokerConfig::default(), &Default::default());
                    scratch.apply(topic, v).map_err(|e| match e {
                        ConfigError::Invalid { value, reason, .. } => ConfigError::Invalid {
                            key: key.to_string(),
                            value,
                            reason,
                        },
                        other => other,
                    })?;
                    p.cfg
                        .topic_defaults
                        .insert(topic.to_string(), v.to_string());
                }
                Some(Role::Ignored) => p.cfg.ignored.push(key.to_string()),
                Some(Role::Security | Role::StoredOnly) | None => {
                    return Err(ConfigError::Unknown(key.to_string()))
                }
            }
        }
        let Parsing {
            mut cfg,
            advertised_set,
            protocol_map,
            retention: [retention_ms, retention_min, retention_hours],
            roll: [roll_ms, roll_hours],
        } = p;
        crate::listener::resolve_security(
            &mut cfg.listeners,
            protocol_map.as_ref(),
            &cfg.set_properties,
            "listeners",
        )?;
        if advertised_set {
            crate::listener::resolve_security(
                &mut cfg.advertised_listeners,
                protocol_map.as_ref(),
                &cfg.set_properties,
                "advertised.listeners",
            )?;
        } else {
            cfg.advertised_listeners = cfg.listeners.clone();
        }
        for l in &cfg.listeners {
            if !cfg.advertised_listeners.iter().any(|a| a.name == l.name) {
                return Err(ConfigError::invalid(
                    "advertised.listeners",
                    &format!(
                        "{:?}",
                        cfg.advertised_listeners
                            .iter()
                            .map(|a| &a.name)
                            .collect::<Vec<_>>()
                    ),
                    format!("listener `{}` is not advertised", l.name),
                ));
            }
        }
        if let Some(ms) = retention_ms
            .or(retention_min.map(|m| mul_or_keep(m, 60_000)))
            .or(retention_hours.map(|h| mul_or_keep(h, 3_600_000)))
        {
            cfg.log_retention_ms = ms;
        }
        if let Some(ms) = roll_ms.or(roll_hours.map(|h| h * 3_600_000)) {
            cfg.log_roll_ms = ms;
        }
        if cfg.shares.heartbeat_interval_ms >= cfg.shares.session_timeout_ms {
            return Err(ConfigError::invalid(
                "group.share.heartbeat.interval.ms",
                &cfg.shares.heartbeat_interval_ms.to_string(),
                "must be below group.share.session.timeout.ms",
            ));
        }
        if cfg.groups.consumer_heartbeat_interval_ms >= cfg.groups.consumer_session_timeout_ms {
            return Err(ConfigError::invalid(
                "group.consumer.heartbeat.interval.ms",
                &cfg.groups.consumer_heartbeat_interval_ms.to_string(),
                "must be below group.consumer.session.timeout.ms",
            ));
        }
        cfg.cluster.check()?;
        cfg.remote.check()?;
        if let Some(v) = cfg.set_properties.get("schema.registry.listeners") {
            // Again, now that the ssl.* settings an https listener reads are all in.
            cfg.schema_registry.listeners = crate::schema_registry::parse_listeners(
                "schema.registry.listeners",
                v,
                Some(&cfg.set_properties),
            )?;
            if !cfg.cluster.etcd_endpoints.is_empty() {
                return Err(ConfigError::invalid(
                    "schema.registry.listeners",
                    v,
                    "the built-in Schema Registry runs on a single node only; a cluster needs it served by the leader of its topic, which is not built yet",
                ));
            }
        }
        if !cfg.cluster.etcd_endpoints.is_empty() {
            cfg.replication.inter_broker_client = Some(crate::inter_broker::resolve(&cfg)?);
        }
        if cfg.default_replication_factor > 1 && cfg.cluster.etcd_endpoints.is_empty() {
            return Err(ConfigError::invalid(
                "default.replication.factor",
                &cfg.default_replication_factor.to_string(),
                "a single-node broker can only hold 1 replica; set metadata.etcd.endpoints to run a cluster",
            ));
        }
        if cfg.groups.min_session_timeout_ms > cfg.groups.max_session_timeout_ms {
            return Err(ConfigError::invalid(
                "group.min.session.timeout.ms",
                &cfg.groups.min_session_timeout_ms.to_string(),
                "must not exceed group.max.session.timeout.ms",
            ));
        }
        let d = TopicConfig::resolve(&cfg, &Default::default());
        if d.min_compaction_lag_ms > d.max_compaction_lag_ms {
            return Err(ConfigError::invalid(
                "log.cleaner.min.compaction.lag.ms",
                &d.min_compaction_lag_ms.to_string(),
                "must not exceed log.cleaner.max.compaction.lag.ms",
            ));
        }
        if cfg.message_max_bytes > cfg.socket_request_max_bytes {
            return Err(ConfigError::invalid(
                "message.max.bytes",
                &cfg.message_max_bytes.to_string(),
                "must not exceed socket.request.max.bytes",
            ));
        }
        Ok(cfg)
    }
}

fn mul_or_keep(v: i64, factor: i64) -> i64 {
    if v < 0 {
        v
    } else {
        v.saturating_mul(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::{CleanupPolicy, CompressionType, TimestampType};

    fn cfg(props: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::from_properties(props.iter().copied())
    }

    #[test]
    fn connection_limits() {
        let c = BrokerConfig::from_properties([
            ("max.connections.per.ip", "10"),
            ("max.connections.per.ip.overrides", "127.0.0.1:100, ::1:0"),
            ("connections.max.idle.ms", "30000"),
        ])
        .unwrap();
        assert_eq!(c.max_connections_per_ip, 10);
        let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let v6: std::net::IpAddr = "::1".parse().unwrap();
        assert_eq!(c.max_connections_per_ip_overrides[&local], 100);
        assert_eq!(c.max_connections_per_ip_overrides[&v6], 0);
        assert_eq!(c.connections_max_idle, Duration::from_secs(30));
        let e = BrokerConfig::from_properties([("max.connections.per.ip.overrides", "db1:5")])
            .unwrap_err();
        assert!(e.to_string().contains("db1"), "{e}");
    }

    #[test]
    fn defaults_serve_localhost_9092_under_data() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.listeners[0].bind_address(), "127.0.0.1:9092");
        assert_eq!(c.advertised_listeners, c.listeners);
        assert_eq!(c.log_dir, PathBuf::from("./data"));
        assert!(c.flush.is_lazy());
    }

    #[test]
    fn topic_defaults_come_from_broker_properties() {
        let c = cfg(&[
            ("log.cleanup.policy", "compact"),
            ("compression.type", "zstd"),
            ("log.cleaner.delete.retention.ms", "1000"),
            ("log.cleaner.min.cleanable.ratio", "0.1"),
            ("log.message.timestamp.type", "LogAppendTime"),
        ])
        .unwrap();
        let t = TopicConfig::resolve(&c, &Default::default());
        assert_eq!(t.cleanup_policy, CleanupPolicy::Compact);
        assert_eq!(t.compression_type, CompressionType::Zstd);
        assert_eq!(t.delete_retention_ms, 1000);
        assert_eq!(t.min_cleanable_dirty_ratio, 0.1);
        assert_eq!(t.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(
            cfg(&[("log.cleaner.min.cleanable.ratio", "2")]).unwrap_err(),
            ConfigError::Invalid {
                key: "log.cleaner.min.cleanable.ratio".into(),
                value: "2".into(),
                reason: "expected a number between 0 and 1".into(),
            }
        );
        assert!(cfg(&[
            ("log.cleaner.min.compaction.lag.ms", "10"),
            ("log.cleaner.max.compaction.lag.ms", "5")
        ])
        .is_err());
    }

    #[test]
    fn unknown_property_is_named() {
        assert_eq!(
            cfg(&[("log.segmnet.bytes", "10")]).unwrap_err(),
            ConfigError::Unknown("log.segmnet.bytes".into())
        );
    }

    #[test]
    fn malformed_value_is_named() {
        let err = cfg(&[("num.partitions", "three")]).unwrap_err();
        assert!(err.to_string().contains("num.partitions"), "{err}");
        let err = cfg(&[("num.partitions", "0")]).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }

    #[test]
    fn retention_precedence_is_ms_then_minutes_then_hours() {
        let c = cfg(&[("log.retention.hours", "1"), ("log.retention.minutes", "2")]).unwrap();
        assert_eq!(c.log_retention_ms, 120_000);
        let c = cfg(&[("log.retention.ms", "5"), ("log.retention.hours", "1")]).unwrap();
        assert_eq!(c.log_retention_ms, 5);
        let c = cfg(&[("log.retention.hours", "-1")]).unwrap();
        assert_eq!(c.log_retention_ms, -1);
    }

    #[test]
    fn replication_factor_above_one_is_refused() {
        assert!(cfg(&[("default.replication.factor", "3")]).is_err());
    }

    #[test]
    fn replication_factor_above_one_needs_a_cluster() {
        let c = cfg(&[
            ("default.replication.factor", "3"),
            ("metadata.etcd.endpoints", "http://127.0.0.1:2379"),
        ])
        .unwrap();
        assert_eq!(c.default_replication_factor, 3);
    }
}
