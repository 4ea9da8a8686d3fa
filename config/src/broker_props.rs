//! The declarations of the broker properties Sluice parses: listeners, the log, limits
//! and the authorizer (the coordinators' are in `coordinator_props`, Kafka's properties
//! Sluice only accepts or stores in `kafka_only_props`).

use std::path::PathBuf;
use std::time::Duration;

use crate::def::{BrokerProp, KafkaDefault, Parsing, UnderListener};
use crate::describe::{ConfigType, MAX_LONG};
use crate::dynamic::DynamicMode::{ClusterWide, PerBroker};
use crate::listener::parse_listeners;
use crate::{parse_bool, parse_i32, parse_i64, ConfigError};

/// Kafka's standard authorizer classes; both mean the built-in ACL authorizer.
const AUTHORIZER_CLASSES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
    "kafka.security.auth.SimpleAclAuthorizer",
];

fn listeners(ls: &[crate::Listener]) -> String {
    ls.iter()
        .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
        .collect::<Vec<_>>()
        .join(",")
}

/// Each listener's security protocol, as `listener.security.protocol.map` writes it.
fn protocol_map(ls: &[crate::Listener]) -> String {
    ls.iter()
        .map(|l| format!("{}:{}", l.name, l.security_protocol.name()))
        .collect::<Vec<_>>()
        .join(",")
}

fn set_node_id(p: &mut Parsing, k: &str, v: &str) -> Result<(), ConfigError> {
    p.cfg.node_id = parse_i64(k, v, 0)?
        .try_into()
        .map_err(|_| ConfigError::invalid(k, v, "too large"))?;
    Ok(())
}

fn set_log_dirs(p: &mut Parsing, k: &str, v: &str) -> Result<(), ConfigError> {
    let dirs: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    match dirs.as_slice() {
        [one] => p.cfg.log_dir = PathBuf::from(one),
        [] => return Err(ConfigError::invalid(k, v, "no directory given")),
        _ => {
            return Err(ConfigError::invalid(
                k,
                v,
                "only one log directory is supported so far",
            ))
        }
    }
    Ok(())
}

fn set_authorizer(p: &mut Parsing, k: &str, v: &str) -> Result<(), ConfigError> {
    p.cfg.authorizer.enabled = match v {
        "" => false,
        v if AUTHORIZER_CLASSES.contains(&v) => true,
        _ => {
            return Err(ConfigError::invalid(
                k,
                v,
                "only Kafka's standard authorizer is supported \
                 (org.apache.kafka.metadata.authorizer.StandardAuthorizer or \
                 kafka.security.authorizer.AclAuthorizer, both meaning the built-in one)",
            ))
        }
    };
    Ok(())
}

fn set_super_users(p: &mut Parsing, k: &str, v: &str) -> Result<(), ConfigError> {
    let mut users = Vec::new();
    for u in v.split(';').map(str::trim).filter(|u| !u.is_empty()) {
        if !u.contains(':') {
            return Err(ConfigError::invalid(
                k,
                v,
                format!("`{u}` is not a principal such as User:admin"),
            ));
        }
        users.push(u.to_string());
    }
    p.cfg.authorizer.super_users = users;
    Ok(())
}

fn set_ip_overrides(p: &mut Parsing, k: &str, v: &str) -> Result<(), ConfigError> {
    let mut out = std::collections::BTreeMap::new();
    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (host, limit) = item
            .rsplit_once(':')
            .ok_or_else(|| ConfigError::invalid(k, v, format!("`{item}` is not ADDRESS:LIMIT")))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let ip: std::net::IpAddr = host.parse().map_err(|_| {
            ConfigError::invalid(
                k,
                v,
                format!("`{host}` is not an IP address (host names are not resolved)"),
            )
        })?;
        out.insert(ip, parse_i64(k, limit, 0)? as usize);
    }
    p.cfg.max_connections_per_ip_overrides = out;
    Ok(())
}

fn set_metrics_listener(p: &mut Parsing, k: &str, v: &str) -> Result<(), ConfigError> {
    let addr = v.strip_prefix("http://").unwrap_or(v);
    let port_ok = addr
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    if !port_ok {
        return Err(ConfigError::invalid(k, v, "expected host:port"));
    }
    p.cfg.metrics_listener = Some(addr.to_string());
    Ok(())
}

/// Broker properties Sluice parses, outside the coordinators.
#[rustfmt::skip]
pub(crate) static BROKER_PROPS: &[BrokerProp] = &[
    BrokerProp::typed("node.id", ConfigType::Int, "This broker's id.",
        set_node_id, |b| b.node_id.to_string()),
    BrokerProp::parsed("broker.id", "This broker's id (the older name of node.id).", |b| b.node_id.to_string(), set_node_id)
        .of_type(ConfigType::Int),
    BrokerProp::typed("listeners", ConfigType::String, "Addresses the broker listens on.",
        |p, k, v| { p.cfg.listeners = parse_listeners(k, v)?; Ok(()) },
        |b| listeners(&b.listeners))
        .dynamic(PerBroker).kafka_default(KafkaDefault::Value("PLAINTEXT://:9092")),
    BrokerProp::typed("advertised.listeners", ConfigType::String, "Listeners published to clients.",
        |p, k, v| { p.cfg.advertised_listeners = parse_listeners(k, v)?; p.advertised_set = true; Ok(()) },
        |b| listeners(&b.advertised_listeners))
        .dynamic(PerBroker),
    BrokerProp::parsed("listener.security.protocol.map", "Security protocol of each listener name.", |b| protocol_map(&b.listeners),
        |p, k, v| { p.protocol_map = Some(crate::tls::parse_protocol_map(k, v)?); Ok(()) })
        .of_type(ConfigType::String).dynamic(PerBroker)
        .kafka_default(KafkaDefault::Value("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT")),
    BrokerProp::typed("log.dirs", ConfigType::String, "Data directory.",
        set_log_dirs, |b| b.log_dir.display().to_string()),
    BrokerProp::parsed("log.dir", "Data directory (when log.dirs is not set).", |b| b.log_dir.display().to_string(), set_log_dirs)
        .of_type(ConfigType::String),
    BrokerProp::parsed("authorizer.class.name", "Kafka's standard authorizer turns on ACLs.", |b| if b.authorizer.enabled { AUTHORIZER_CLASSES[0].to_string() } else { String::new() }, set_authorizer)
        .of_type(ConfigType::Class),
    BrokerProp::parsed("super.users", "Principals allowed everything, `;`-separated.", |b| b.authorizer.super_users.join(";"), set_super_users)
        .of_type(ConfigType::String),
    BrokerProp::parsed("allow.everyone.if.no.acl.found", "A resource without ACLs is open to all.", |b| b.authorizer.allow_everyone_if_no_acl_found.to_string(),
        |p, k, v| { p.cfg.authorizer.allow_everyone_if_no_acl_found = parse_bool(k, v)?; Ok(()) })
        .of_type(ConfigType::Boolean),
    BrokerProp::parsed("connection.failed.authentication.delay.ms", "Delay before answering a failed authentication.", |b| b.failed_authentication_delay.as_millis().to_string(),
        |p, k, v| { p.cfg.failed_authentication_delay = Duration::from_millis(parse_i64(k, v, 0)? as u64); Ok(()) })
        .of_type(ConfigType::Int),
    BrokerProp::typed("num.partitions", ConfigType::Int, "Partitions of auto-created topics.",
        |p, k, v| { p.cfg.num_partitions = parse_i32(k, v, 1)?; Ok(()) },
        |b| b.num_partitions.to_string()),
    BrokerProp::typed("default.replication.factor", ConfigType::Int, "Replication factor of auto-created topics.",
        |p, k, v| { p.cfg.default_replication_factor = parse_i32(k, v, 1)?.min(i32::from(i16::MAX)) as i16; Ok(()) },
        |b| b.default_replication_factor.to_string()),
    BrokerProp::typed("auto.create.topics.enable", ConfigType::Boolean, "Create a topic on first use.",
        |p, k, v| { p.cfg.auto_create_topics = parse_bool(k, v)?; Ok(()) },
        |b| b.auto_create_topics.to_string()),
    BrokerProp::typed("log.segment.bytes", ConfigType::Int, "Default segment.bytes of topics.",
        |p, k, v| { p.cfg.log_segment_bytes = parse_i64(k, v, 14)? as u64; Ok(()) },
        |b| b.log_segment_bytes.to_string()),
    BrokerProp::typed("log.roll.ms", ConfigType::Long, "Default segment.ms of topics.",
        |p, k, v| { p.roll[0] = Some(parse_i64(k, v, 1)?); Ok(()) },
        |b| b.log_roll_ms.to_string())
        .kafka_default(KafkaDefault::Null),
    BrokerProp::parsed("log.roll.hours", "Default segment.ms of topics, in hours (log.roll.ms wins).", |b| (b.log_roll_ms / 3_600_000).to_string(),
        |p, k, v| { p.roll[1] = Some(parse_i64(k, v, 1)?); Ok(()) })
        .of_type(ConfigType::Int),
    BrokerProp::typed("log.retention.ms", ConfigType::Long, "Default retention.ms of topics.",
        |p, k, v| { p.retention[0] = Some(parse_i64(k, v, -1)?); Ok(()) },
        |b| b.log_retention_ms.to_string())
        .kafka_default(KafkaDefault::Null),
    BrokerProp::parsed("log.retention.minutes", "Default retention.ms of topics, in minutes (log.retention.ms wins).", |b| (b.log_retention_ms / 60_000).to_string(),
        |p, k, v| { p.retention[1] = Some(parse_i64(k, v, -1)?); Ok(()) })
        .of_type(ConfigType::Int).kafka_default(KafkaDefault::Null),
    BrokerProp::parsed("log.retention.hours", "Default retention.ms of topics, in hours (the finer units win).", |b| (b.log_retention_ms / 3_600_000).to_string(),
        |p, k, v| { p.retention[2] = Some(parse_i64(k, v, -1)?); Ok(()) })
        .of_type(ConfigType::Int),
    BrokerProp::typed("log.retention.bytes", ConfigType::Long, "Default retention.bytes of topics.",
        |p, k, v| { p.cfg.log_retention_bytes = parse_i64(k, v, -1)?; Ok(()) },
        |b| b.log_retention_bytes.to_string()),
    BrokerProp::typed("log.retention.check.interval.ms", ConfigType::Long, "How often retention runs.",
        |p, k, v| { p.cfg.log_retention_check_interval = Duration::from_millis(parse_i64(k, v, 1)? as u64); Ok(()) },
        |b| b.log_retention_check_interval.as_millis().to_string()),
    BrokerProp::typed("num.recovery.threads.per.data.dir", ConfigType::Int,
        "Partitions opened at once at start-up and flushed at once at shutdown.",
        |p, k, v| { p.cfg.num_recovery_threads = parse_i32(k, v, 1)? as usize; Ok(()) },
        |b| b.num_recovery_threads.to_string())
        .dynamic(ClusterWide).kafka_default(KafkaDefault::Value("2")),
    BrokerProp::typed("log.max.open.segment.files", ConfigType::Int,
        "Most segment files open at once; -1: half the open-files limit.",
        |p, k, v| { p.cfg.log_max_open_segment_files = Some(parse_i64(k, v, 1)? as usize); Ok(()) },
        |b| b.log_max_open_segment_files.map_or("-1".to_string(), |n| n.to_string())),
    BrokerProp::typed("message.max.bytes", ConfigType::Int, "Default max.message.bytes of topics.",
        |p, k, v| { p.cfg.message_max_bytes = parse_i32(k, v, 0)?; Ok(()) },
        |b| b.message_max_bytes.to_string()),
    BrokerProp::typed("max.incremental.fetch.session.cache.slots", ConfigType::Int,
        "Fetch sessions kept; a full cache evicts as Kafka does.",
        |p, k, v| { p.cfg.max_incremental_fetch_session_cache_slots = parse_i32(k, v, 0)? as usize; Ok(()) },
        |b| b.max_incremental_fetch_session_cache_slots.to_string()),
    BrokerProp::typed("socket.request.max.bytes", ConfigType::Int, "Largest request accepted.",
        |p, k, v| { p.cfg.socket_request_max_bytes = parse_i32(k, v, 1)?; Ok(()) },
        |b| b.socket_request_max_bytes.to_string()),
    BrokerProp::typed("log.flush.interval.messages", ConfigType::Long, "Force an fsync after this many messages.",
        |p, k, v| { p.cfg.flush.interval_messages = parse_i64(k, v, 1)? as u64; Ok(()) },
        |b| i64::try_from(b.flush.interval_messages).unwrap_or(i64::MAX).to_string()),
    BrokerProp::typed("log.flush.interval.ms", ConfigType::Long, "Force an fsync of data older than this.",
        |p, k, v| { p.cfg.flush.interval = Some(Duration::from_millis(parse_i64(k, v, 0)? as u64)); Ok(()) },
        |b| b.flush.interval.map_or(MAX_LONG.to_string(), |d| d.as_millis().to_string()))
        .kafka_default(KafkaDefault::Null)
        .synonyms(&["log.flush.interval.ms", "log.flush.scheduler.interval.ms"]),
    BrokerProp::typed("max.connections", ConfigType::Int, "Most open client connections.",
        |p, k, v| { p.cfg.max_connections = parse_i64(k, v, 1)? as usize; Ok(()) },
        |b| b.max_connections.to_string())
        .dynamic(ClusterWide).kafka_default(KafkaDefault::Value("2147483647"))
        .under_listener(UnderListener::ClusterWide),
    BrokerProp::typed("leader.replication.throttled.rate", ConfigType::Long,
        "Bytes/s a leader sends to followers out of the ISR of replicas in leader.replication.throttled.replicas.",
        |p, k, v| { p.cfg.replication_throttle.leader = parse_i64(k, v, 0)? as u64; Ok(()) },
        |b| b.replication_throttle.leader.to_string())
        .dynamic(ClusterWide).kafka_default(KafkaDefault::Value(MAX_LONG)),
    BrokerProp::typed("follower.replication.throttled.rate", ConfigType::Long,
        "Bytes/s a follower out of the ISR fetches for replicas in follower.replication.throttled.replicas.",
        |p, k, v| { p.cfg.replication_throttle.follower = parse_i64(k, v, 0)? as u64; Ok(()) },
        |b| b.replication_throttle.follower.to_string())
        .dynamic(ClusterWide).kafka_default(KafkaDefault::Value(MAX_LONG)),
    BrokerProp::typed("max.connections.per.ip", ConfigType::Int, "Most open connections from one client address.",
        |p, k, v| { p.cfg.max_connections_per_ip = parse_i64(k, v, 0)? as usize; Ok(()) },
        |b| b.max_connections_per_ip.to_string())
        .dynamic(ClusterWide).kafka_default(KafkaDefault::Value("2147483647")),
    BrokerProp::parsed("max.connections.per.ip.overrides", "Per-address exceptions: ADDRESS:LIMIT, comma-separated.", |b| b.max_connections_per_ip_overrides.iter().map(|(ip, n)| format!("{ip}:{n}")).collect::<Vec<_>>().join(","),
        set_ip_overrides)
        .of_type(ConfigType::String).dynamic(ClusterWide).kafka_default(KafkaDefault::Value("")),
    BrokerProp::parsed("metrics.listener", "host:port of the HTTP listener for /metrics, /health and /ready (Sluice's own).", |b| b.metrics_listener.clone().unwrap_or_default(),
        set_metrics_listener)
        .of_type(ConfigType::String),
    BrokerProp::parsed("quota.window.num", "Samples in a client quota's rate window.", |b| b.quota_window_num.to_string(),
        |p, k, v| { p.cfg.quota_window_num = parse_i64(k, v, 2)? as usize; Ok(()) })
        .of_type(ConfigType::Int),
    BrokerProp::parsed("quota.window.size.seconds", "Length of one quota sample.", |b| b.quota_window_size.as_secs().to_string(),
        |p, k, v| { p.cfg.quota_window_size = Duration::from_secs(parse_i64(k, v, 1)? as u64); Ok(()) })
        .of_type(ConfigType::Int),
    BrokerProp::typed("connections.max.idle.ms", ConfigType::Long, "Idle connections are closed after this long.",
        |p, k, v| { p.cfg.connections_max_idle = Duration::from_millis(parse_i64(k, v, 1)? as u64); Ok(()) },
        |b| b.connections_max_idle.as_millis().to_string()),
    BrokerProp::parsed("cluster.id", "The cluster id reported to clients; generated and stored if unset.", |b| b.cluster_id.clone().unwrap_or_default(),
        |p, k, v| {
            if v.is_empty() {
                return Err(ConfigError::invalid(k, v, "must not be empty"));
            }
            p.cfg.cluster_id = Some(v.to_string());
            Ok(())
        })
        .of_type(ConfigType::String),
];
