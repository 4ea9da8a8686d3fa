//! The broker's own configuration (`server.properties`).

use std::path::PathBuf;
use std::time::Duration;

use crate::listener::{parse_listeners, Listener};
use crate::topic::TopicConfig;
use crate::{parse_bool, parse_i64, ConfigError};

/// Kafka properties that an existing `server.properties` commonly sets and that have no
/// effect on a single Sluice node; accepted so such a file keeps working, and logged.
const ACCEPTED_WITHOUT_EFFECT: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "inter.broker.listener.name",
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
    "log.flush.scheduler.interval.ms",
    "log.cleaner.threads",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.max.bytes.per.second",
    "log.segment.delete.delay.ms",
    "log.message.timestamp.difference.max.ms",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.mechanism.controller.protocol",
];

/// Kafka's standard authorizer classes; both mean the built-in ACL authorizer.
const AUTHORIZER_CLASSES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
    "kafka.security.auth.SimpleAclAuthorizer",
];

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

/// Broker properties that set a topic config's default: broker name, topic name.
const TOPIC_DEFAULT_PROPERTIES: &[(&str, &str)] = &[
    ("log.cleanup.policy", "cleanup.policy"),
    ("compression.type", "compression.type"),
    ("log.message.timestamp.type", "message.timestamp.type"),
    (
        "log.message.timestamp.before.max.ms",
        "message.timestamp.before.max.ms",
    ),
    (
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
    ),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    ("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
    ("log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms"),
    (
        "log.cleaner.min.cleanable.ratio",
        "min.cleanable.dirty.ratio",
    ),
];

/// When the log forces written data to disk (Kafka's `log.flush.*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    /// Force a flush once this many messages are unflushed (`log.flush.interval.messages`).
    pub interval_messages: u64,
    /// Force a flush of data older than this (`log.flush.interval.ms`); `None` means never.
    pub interval: Option<Duration>,
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
    /// Group coordinator settings (`group.*`, `offsets.*`).
    pub groups: GroupConfig,
    /// Transaction coordinator settings (`transaction.*`, `transactional.id.*`).
    pub transactions: TxnConfig,
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
            connections_max_idle: Duration::from_millis(600_000),
            quota_window_num: 11,
            metrics_listener: None,
            quota_window_size: Duration::from_secs(1),
            failed_authentication_delay: Duration::from_millis(100),
            authorizer: AuthorizerConfig::default(),
            cluster_id: None,
            groups: GroupConfig::default(),
            transactions: TxnConfig::default(),
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
        let mut cfg = BrokerConfig::default();
        let mut advertised_set = false;
        let mut protocol_map = None;
        // Kafka gives the most precise unit precedence: ms over minutes over hours.
        let (mut retention_ms, mut retention_min, mut retention_hours) = (None, None, None);
        let (mut roll_ms, mut roll_hours) = (None, None);
        for (key, value) in props {
            let v = value.trim();
            cfg.set_properties.insert(key.to_string(), v.to_string());
            match key {
                "node.id" | "broker.id" => {
                    cfg.node_id = parse_i64(key, v, 0)?
                        .try_into()
                        .map_err(|_| ConfigError::invalid(key, v, "too large"))?
                }
                "listeners" => cfg.listeners = parse_listeners(key, v)?,
                "advertised.listeners" => {
                    cfg.advertised_listeners = parse_listeners(key, v)?;
                    advertised_set = true;
                }
                "log.dirs" | "log.dir" => {
                    let dirs: Vec<&str> = v
                        .split(',')
                        .map(str::trim)
                        .filter(|d| !d.is_empty())
                        .collect();
                    match dirs.as_slice() {
                        [one] => cfg.log_dir = PathBuf::from(one),
                        [] => return Err(ConfigError::invalid(key, v, "no directory given")),
                        _ => {
                            return Err(ConfigError::invalid(
                                key,
                                v,
                                "only one log directory is supported so far",
                            ))
                        }
                    }
                }
                "listener.security.protocol.map" => {
                    protocol_map = Some(crate::tls::parse_protocol_map(key, v)?)
                }
                k if crate::tls::is_ssl_property(k) => {}
                k if crate::sasl::is_sasl_property(k) => {}
                "authorizer.class.name" => {
                    cfg.authorizer.enabled = match v {
                        "" => false,
                        v if AUTHORIZER_CLASSES.contains(&v) => true,
                        _ => {
                            return Err(ConfigError::invalid(
                                key,
                                v,
                                "only Kafka's standard authorizer is supported \
                                 (org.apache.kafka.metadata.authorizer.StandardAuthorizer or \
                                 kafka.security.authorizer.AclAuthorizer, both meaning the built-in one)",
                            ))
                        }
                    }
                }
                "super.users" => {
                    let mut users = Vec::new();
                    for u in v.split(';').map(str::trim).filter(|u| !u.is_empty()) {
                        if !u.contains(':') {
                            return Err(ConfigError::invalid(
                                key,
                                v,
                                format!("`{u}` is not a principal such as User:admin"),
                            ));
                        }
                        users.push(u.to_string());
                    }
                    cfg.authorizer.super_users = users;
                }
                "allow.everyone.if.no.acl.found" => {
                    cfg.authorizer.allow_everyone_if_no_acl_found = parse_bool(key, v)?
                }
                "connection.failed.authentication.delay.ms" => {
                    cfg.failed_authentication_delay =
                        Duration::from_millis(parse_i64(key, v, 0)? as u64)
                }
                "num.partitions" => cfg.num_partitions = parse_i32(key, v, 1)?,
                "default.replication.factor" => {
                    if parse_i64(key, v, 1)? != 1 {
                        return Err(ConfigError::invalid(
                            key,
                            v,
                            "a single-node broker can only hold 1 replica",
                        ));
                    }
                }
                "auto.create.topics.enable" => cfg.auto_create_topics = parse_bool(key, v)?,
                "log.segment.bytes" => cfg.log_segment_bytes = parse_i64(key, v, 14)? as u64,
                "log.roll.ms" => roll_ms = Some(parse_i64(key, v, 1)?),
                "log.roll.hours" => roll_hours = Some(parse_i64(key, v, 1)?),
                "log.retention.ms" => retention_ms = Some(parse_retention(key, v)?),
                "log.retention.minutes" => retention_min = Some(parse_retention(key, v)?),
                "log.retention.hours" => retention_hours = Some(parse_retention(key, v)?),
                "log.retention.bytes" => cfg.log_retention_bytes = parse_i64(key, v, -1)?,
                "log.retention.check.interval.ms" => {
                    cfg.log_retention_check_interval =
                        Duration::from_millis(parse_i64(key, v, 1)? as u64)
                }
                "num.recovery.threads.per.data.dir" => {
                    cfg.num_recovery_threads = parse_i32(key, v, 1)? as usize
                }
                "log.max.open.segment.files" => {
                    cfg.log_max_open_segment_files = Some(parse_i64(key, v, 1)? as usize)
                }
                "message.max.bytes" => cfg.message_max_bytes = parse_i32(key, v, 0)?,
                "max.incremental.fetch.session.cache.slots" => {
                    cfg.max_incremental_fetch_session_cache_slots = parse_i32(key, v, 0)? as usize
                }
                "socket.request.max.bytes" => cfg.socket_request_max_bytes = parse_i32(key, v, 1)?,
                "log.flush.interval.messages" => {
                    cfg.flush.interval_messages = parse_i64(key, v, 1)? as u64
                }
                "log.flush.interval.ms" => {
                    cfg.flush.interval = Some(Duration::from_millis(parse_i64(key, v, 0)? as u64))
                }
                "max.connections" => cfg.max_connections = parse_i64(key, v, 1)? as usize,
                "max.connections.per.ip" => {
                    cfg.max_connections_per_ip = parse_i64(key, v, 0)? as usize
                }
                "max.connections.per.ip.overrides" => {
                    let mut out = std::collections::BTreeMap::new();
                    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                        let (host, limit) = item.rsplit_once(':').ok_or_else(|| {
                            ConfigError::invalid(key, v, format!("`{item}` is not ADDRESS:LIMIT"))
                        })?;
                        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
                        let ip: std::net::IpAddr = host.parse().map_err(|_| {
                            ConfigError::invalid(
                                key,
                                v,
                                format!("`{host}` is not an IP address (host names are not resolved)"),
                            )
                        })?;
                        out.insert(ip, parse_i64(key, limit, 0)? as usize);
                    }
                    cfg.max_connections_per_ip_overrides = out;
                }
                "metrics.listener" => {
                    let addr = v.strip_prefix("http://").unwrap_or(v);
                    let port_ok = addr
                        .rsplit_once(':')
                        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
                    if !port_ok {
                        return Err(ConfigError::invalid(key, v, "expected host:port"));
                    }
                    cfg.metrics_listener = Some(addr.to_string());
                }
                "quota.window.num" => cfg.quota_window_num = parse_i64(key, v, 2)? as usize,
                "quota.window.size.seconds" => {
                    cfg.quota_window_size = Duration::from_secs(parse_i64(key, v, 1)? as u64)
                }
                "connections.max.idle.ms" => {
                    cfg.connections_max_idle = Duration::from_millis(parse_i64(key, v, 1)? as u64)
                }
                "cluster.id" => {
                    if v.is_empty() {
                        return Err(ConfigError::invalid(key, v, "must not be empty"));
                    }
                    cfg.cluster_id = Some(v.to_string())
                }
                "group.initial.rebalance.delay.ms" => {
                    cfg.groups.initial_rebalance_delay_ms = parse_i64(key, v, 0)?
                }
                "group.min.session.timeout.ms" => {
                    cfg.groups.min_session_timeout_ms = parse_i32(key, v, 0)?
                }
                "group.max.session.timeout.ms" => {
                    cfg.groups.max_session_timeout_ms = parse_i32(key, v, 0)?
                }
                "group.max.size" => cfg.groups.max_size = parse_i32(key, v, 1)?,
                "group.consumer.heartbeat.interval.ms" => {
                    cfg.groups.consumer_heartbeat_interval_ms = parse_i32(key, v, 1)?
                }
                "group.consumer.session.timeout.ms" => {
                    cfg.groups.consumer_session_timeout_ms = parse_i32(key, v, 1)?
                }
                "offsets.retention.minutes" => {
                    cfg.groups.offsets_retention_ms = parse_i64(key, v, 1)?.saturating_mul(60_000)
                }
                "offsets.retention.check.interval.ms" => {
                    cfg.groups.offsets_retention_check_interval_ms = parse_i64(key, v, 1)?
                }
                "offset.metadata.max.bytes" => {
                    cfg.groups.offset_metadata_max_bytes = parse_i32(key, v, 0)?
                }
                "offsets.topic.num.partitions" => {
                    cfg.groups.offsets_topic_num_partitions = parse_i32(key, v, 1)?
                }
                "offsets.topic.segment.bytes" => {
                    cfg.groups.offsets_topic_segment_bytes = parse_i64(key, v, 1)?
                }
                "transaction.state.log.num.partitions" => {
                    cfg.transactions.state_log_num_partitions = parse_i32(key, v, 1)?
                }
                "transaction.state.log.segment.bytes" => {
                    cfg.transactions.state_log_segment_bytes = parse_i64(key, v, 1)?
                }
                "transaction.max.timeout.ms" => {
                    cfg.transactions.max_timeout_ms = parse_i32(key, v, 1)?
                }
                "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                    cfg.transactions.abort_timed_out_interval_ms = parse_i64(key, v, 1)?
                }
                "transactional.id.expiration.ms" => {
                    cfg.transactions.id_expiration_ms = parse_i64(key, v, 1)?
                }
                "transaction.remove.expired.transaction.cleanup.interval.ms" => {
                    cfg.transactions.remove_expired_interval_ms = parse_i64(key, v, 1)?
                }
                "producer.id.expiration.ms" => {
                    cfg.transactions.producer_id_expiration_ms = parse_i32(key, v, 1)?.into()
                }
                "producer.id.expiration.check.interval.ms" => {
                    cfg.transactions.producer_id_expiration_check_interval_ms =
                        parse_i32(key, v, 1)?.into()
                }
                "log.cleaner.enable" => cfg.cleaner.enable = parse_bool(key, v)?,
                "log.cleaner.backoff.ms" => cfg.cleaner.backoff_ms = parse_i64(key, v, 0)?,
                "log.cleaner.dedupe.buffer.size" => {
                    cfg.cleaner.dedupe_buffer_size = parse_i64(key, v, 1)? as u64
                }
                k if TOPIC_DEFAULT_PROPERTIES.iter().any(|(b, _)| *b == k) => {
                    let topic_key = TOPIC_DEFAULT_PROPERTIES
                        .iter()
                        .find(|(b, _)| *b == k)
                        .map_or(k, |(_, t)| *t);
                    // Checked with the topic config's rules; errors name the broker property.
                    let mut scratch =
                        TopicConfig::resolve(&BrokerConfig::default(), &Default::default());
                    scratch.apply(topic_key, v).map_err(|e| match e {
                        ConfigError::Invalid { value, reason, .. } => ConfigError::Invalid {
                            key: k.to_string(),
                            value,
                            reason,
                        },
                        other => other,
                    })?;
                    cfg.topic_defaults
                        .insert(topic_key.to_string(), v.to_string());
                }
                k if ACCEPTED_WITHOUT_EFFECT.contains(&k) => cfg.ignored.push(k.to_string()),
                other => return Err(ConfigError::Unknown(other.to_string())),
            }
        }
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
        if cfg.groups.consumer_heartbeat_interval_ms >= cfg.groups.consumer_session_timeout_ms {
            return Err(ConfigError::invalid(
                "group.consumer.heartbeat.interval.ms",
                &cfg.groups.consumer_heartbeat_interval_ms.to_string(),
                "must be below group.consumer.session.timeout.ms",
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

fn parse_i32(key: &str, v: &str, min: i64) -> Result<i32, ConfigError> {
    parse_i64(key, v, min)?
        .try_into()
        .map_err(|_| ConfigError::invalid(key, v, "too large"))
}

/// Retention values: -1 means unlimited, otherwise non-negative.
fn parse_retention(key: &str, v: &str) -> Result<i64, ConfigError> {
    parse_i64(key, v, -1)
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
}
