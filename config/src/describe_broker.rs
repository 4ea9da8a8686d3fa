//! What DescribeConfigs reports for a BROKER resource, as Kafka's `ConfigHelper` builds it:
//! for a node id every broker config with the value in force and its synonyms across the
//! KIP-226 layers (this broker's dynamic configs, the cluster default's, the static
//! properties, Kafka's defaults); for the empty name only the cluster-wide dynamic
//! configs.

use std::collections::BTreeSet;

use crate::describe::{
    kafka_topic_default, layered_synonyms, topic_default_names, topic_default_type, ConfigSource,
    ConfigType, DescribedConfig, MAX_LONG,
};
use crate::dynamic::{dynamic_def, dynamic_names, known_dynamic_type};
use crate::layers::{broker_synonyms, BrokerLayers};
use crate::BrokerConfig;

/// A setting: name, value, type, documentation.
type Setting = (&'static str, String, ConfigType, &'static str);

/// Kafka's broker configs whose default is null: the finer unit of a setting defers to
/// the coarser one that has the default.
const NULL_DEFAULTS: &[&str] = &[
    "log.retention.ms",
    "log.retention.minutes",
    "log.roll.ms",
    "log.roll.jitter.ms",
    "log.flush.interval.ms",
];

/// Kafka's default of a broker config as DescribeConfigs shows it; `None` when null or
/// unknown here.
pub(crate) fn kafka_default(name: &str) -> Option<String> {
    if NULL_DEFAULTS.contains(&name) {
        return None;
    }
    if let Some(d) = dynamic_def(name) {
        if let Some(v) = d.default {
            return Some(v.to_string());
        }
    }
    if let Some(v) = kafka_topic_default(name) {
        return Some(v.to_string());
    }
    sluice_settings(&BrokerConfig::default())
        .into_iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, v, ..)| v)
}

/// Documentation of configs Sluice keeps without acting on them.
const STORED_ONLY_DOC: &str =
    "Kafka's dynamic broker config: stored and described; Sluice does not act on it.";
const STATIC_ONLY_DOC: &str = "Accepted at start-up; Sluice does not act on it.";
const TOPIC_DEFAULT_DOC: &str = "Default of the topic config it is a synonym of.";

/// DescribeConfigs of a BROKER resource: `per_broker` for this node id (every config),
/// otherwise the cluster default (only what is set there). `broker` is the configuration
/// in force. Sorted by name.
pub fn describe_broker_configs(
    broker: &BrokerConfig,
    layers: &BrokerLayers,
    per_broker: bool,
) -> Vec<DescribedConfig> {
    let settings = sluice_settings(broker);
    let merged = layers.merged();
    let names: BTreeSet<String> = if per_broker {
        settings
            .iter()
            .map(|(n, ..)| n.to_string())
            .chain(topic_default_names().map(String::from))
            .chain(dynamic_names().map(String::from))
            .chain(layers.static_props.keys().cloned())
            .chain(layers.cluster_default.keys().cloned())
            .chain(layers.per_broker.keys().cloned())
            .collect()
    } else {
        layers.cluster_default.keys().cloned().collect()
    };
    names
        .into_iter()
        .map(|name| {
            let setting = settings.iter().find(|(n, ..)| *n == name);
            let def = dynamic_def(&name);
            // Kafka's maybeSensitive: a password, or a name whose type is not known (a
            // custom or mechanism-prefixed property may hold a secret), is never sent.
            let config_type = known_dynamic_type(&name)
                .or(setting.map(|s| s.2))
                .or_else(|| topic_default_type(&name))
                .unwrap_or(ConfigType::Unknown);
            let sensitive = matches!(config_type, ConfigType::Password | ConfigType::Unknown);
            let synonyms: Vec<_> = layered_synonyms(
                layers,
                &broker_synonyms(&name),
                per_broker,
                sensitive,
                &kafka_default,
            )
            .into_iter()
            .skip_while(|s| s.name != name)
            .collect();
            let value = if !per_broker {
                layers.cluster_default.get(&name).cloned()
            } else if let Some(v) = merged.get(&name) {
                Some(v.clone())
            } else if NULL_DEFAULTS.contains(&name.as_str()) {
                None
            } else if let Some((_, typed, ..)) = setting {
                // What Sluice enforces (listeners with their resolved form, log.dirs).
                Some(typed.clone())
            } else {
                kafka_default(&name)
            };
            let doc = match setting {
                Some(s) => s.3,
                None if topic_default_type(&name).is_some() => TOPIC_DEFAULT_DOC,
                None if def.is_some() => STORED_ONLY_DOC,
                None => STATIC_ONLY_DOC,
            };
            DescribedConfig {
                source: synonyms.first().map_or(ConfigSource::Default, |s| s.source),
                synonyms,
                value: if sensitive { None } else { value },
                config_type,
                doc,
                read_only: def.is_none(),
                sensitive,
                name,
            }
        })
        .collect()
}

/// Sluice's own broker settings under Kafka's names: name, the typed value in force,
/// Kafka's type and a line of documentation.
fn sluice_settings(broker: &BrokerConfig) -> Vec<Setting> {
    let listeners = |ls: &[crate::Listener]| {
        ls.iter()
            .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
            .collect::<Vec<_>>()
            .join(",")
    };
    let ms = |d: std::time::Duration| d.as_millis().to_string();
    let g = &broker.groups;
    let t = &broker.transactions;
    let entries: Vec<Setting> = vec![
        (
            "advertised.listeners",
            listeners(&broker.advertised_listeners),
            ConfigType::String,
            "Listeners published to clients.",
        ),
        (
            "auto.create.topics.enable",
            broker.auto_create_topics.to_string(),
            ConfigType::Boolean,
            "Create a topic on first use.",
        ),
        (
            "default.replication.factor",
            broker.default_replication_factor.to_string(),
            ConfigType::Int,
            "Replication factor of auto-created topics.",
        ),
        (
            "group.consumer.heartbeat.interval.ms",
            g.consumer_heartbeat_interval_ms.to_string(),
            ConfigType::Int,
            "How often a member of a consumer-protocol (KIP-848) group heartbeats.",
        ),
        (
            "group.consumer.session.timeout.ms",
            g.consumer_session_timeout_ms.to_string(),
            ConfigType::Int,
            "A consumer-protocol member silent this long leaves its group.",
        ),
        (
            "group.initial.rebalance.delay.ms",
            g.initial_rebalance_delay_ms.to_string(),
            ConfigType::Int,
            "Wait for more members before the first rebalance of an empty group.",
        ),
        (
            "group.max.session.timeout.ms",
            g.max_session_timeout_ms.to_string(),
            ConfigType::Int,
            "Longest session timeout a member may ask for.",
        ),
        (
            "group.max.size",
            g.max_size.to_string(),
            ConfigType::Int,
            "Most members of one group.",
        ),
        (
            "group.min.session.timeout.ms",
            g.min_session_timeout_ms.to_string(),
            ConfigType::Int,
            "Shortest session timeout a member may ask for.",
        ),
        (
            "listeners",
            listeners(&broker.listeners),
            ConfigType::String,
            "Addresses the broker listens on.",
        ),
        (
            "log.cleaner.backoff.ms",
            broker.cleaner.backoff_ms.to_string(),
            ConfigType::Long,
            "Pause of the log cleaner when no log needs cleaning.",
        ),
        (
            "log.cleaner.dedupe.buffer.size",
            broker.cleaner.dedupe_buffer_size.to_string(),
            ConfigType::Long,
            "Memory for the key map of one cleaning pass.",
        ),
        (
            "log.cleaner.enable",
            broker.cleaner.enable.to_string(),
            ConfigType::Boolean,
            "Run the log cleaner for compacted topics.",
        ),
        (
            "log.dirs",
            broker.log_dir.display().to_string(),
            ConfigType::String,
            "Data directory.",
        ),
        (
            "log.flush.interval.messages",
            i64::try_from(broker.flush.interval_messages)
                .unwrap_or(i64::MAX)
                .to_string(),
            ConfigType::Long,
            "Force an fsync after this many messages.",
        ),
        (
            "log.flush.interval.ms",
            broker.flush.interval.map_or(MAX_LONG.to_string(), ms),
            ConfigType::Long,
            "Force an fsync of data older than this.",
        ),
        (
            "log.retention.bytes",
            broker.log_retention_bytes.to_string(),
            ConfigType::Long,
            "Default retention.bytes of topics.",
        ),
        (
            "log.max.open.segment.files",
            broker
                .log_max_open_segment_files
                .map_or("-1".to_string(), |n| n.to_string()),
            ConfigType::Int,
            "Most segment files open at once; -1: half the open-files limit.",
        ),
        (
            "log.retention.check.interval.ms",
            ms(broker.log_retention_check_interval),
            ConfigType::Long,
            "How often retention runs.",
        ),
        (
            "log.retention.ms",
            broker.log_retention_ms.to_string(),
            ConfigType::Long,
            "Default retention.ms of topics.",
        ),
        (
            "log.roll.ms",
            broker.log_roll_ms.to_string(),
            ConfigType::Long,
            "Default segment.ms of topics.",
        ),
        (
            "log.segment.bytes",
            broker.log_segment_bytes.to_string(),
            ConfigType::Int,
            "Default segment.bytes of topics.",
        ),
        (
            "max.connections",
            broker.max_connections.to_string(),
            ConfigType::Int,
            "Most open client connections.",
        ),
        (
            "max.connections.per.ip",
            broker.max_connections_per_ip.to_string(),
            ConfigType::Int,
            "Most open connections from one client address.",
        ),
        (
            "connections.max.idle.ms",
            broker.connections_max_idle.as_millis().to_string(),
            ConfigType::Long,
            "Idle connections are closed after this long.",
        ),
        (
            "max.incremental.fetch.session.cache.slots",
            broker.max_incremental_fetch_session_cache_slots.to_string(),
            ConfigType::Int,
            "Fetch sessions kept; a full cache evicts as Kafka does.",
        ),
        (
            "message.max.bytes",
            broker.message_max_bytes.to_string(),
            ConfigType::Int,
            "Default max.message.bytes of topics.",
        ),
        (
            "node.id",
            broker.node_id.to_string(),
            ConfigType::Int,
            "This broker's id.",
        ),
        (
            "num.partitions",
            broker.num_partitions.to_string(),
            ConfigType::Int,
            "Partitions of auto-created topics.",
        ),
        (
            "num.recovery.threads.per.data.dir",
            broker.num_recovery_threads.to_string(),
            ConfigType::Int,
            "Partitions opened at once at start-up and flushed at once at shutdown.",
        ),
        (
            "offset.metadata.max.bytes",
            g.offset_metadata_max_bytes.to_string(),
            ConfigType::Int,
            "Longest metadata string of a committed offset.",
        ),
        (
            "offsets.retention.check.interval.ms",
            g.offsets_retention_check_interval_ms.to_string(),
            ConfigType::Long,
            "How often expired offsets are removed.",
        ),
        (
            "offsets.retention.minutes",
            (g.offsets_retention_ms / 60_000).to_string(),
            ConfigType::Int,
            "How long offsets of an empty group are kept.",
        ),
        (
            "offsets.topic.num.partitions",
            g.offsets_topic_num_partitions.to_string(),
            ConfigType::Int,
            "Partitions of the internal topic __consumer_offsets.",
        ),
        (
            "offsets.topic.segment.bytes",
            g.offsets_topic_segment_bytes.to_string(),
            ConfigType::Int,
            "Segment size of the internal topic __consumer_offsets.",
        ),
        (
            "producer.id.expiration.check.interval.ms",
            t.producer_id_expiration_check_interval_ms.to_string(),
            ConfigType::Int,
            "How often expired producer ids are removed.",
        ),
        (
            "producer.id.expiration.ms",
            t.producer_id_expiration_ms.to_string(),
            ConfigType::Int,
            "How long an idle producer id's state is kept after its last batch's timestamp.",
        ),
        (
            "socket.request.max.bytes",
            broker.socket_request_max_bytes.to_string(),
            ConfigType::Int,
            "Largest request accepted.",
        ),
        (
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            t.abort_timed_out_interval_ms.to_string(),
            ConfigType::Int,
            "How often timed-out transactions are aborted.",
        ),
        (
            "transaction.max.timeout.ms",
            t.max_timeout_ms.to_string(),
            ConfigType::Int,
            "Longest transaction.timeout.ms a producer may ask for.",
        ),
        (
            "transaction.remove.expired.transaction.cleanup.interval.ms",
            t.remove_expired_interval_ms.to_string(),
            ConfigType::Int,
            "How often idle transactional ids are removed.",
        ),
        (
            "transaction.state.log.num.partitions",
            t.state_log_num_partitions.to_string(),
            ConfigType::Int,
            "Partitions of the internal topic __transaction_state.",
        ),
        (
            "transaction.state.log.segment.bytes",
            t.state_log_segment_bytes.to_string(),
            ConfigType::Int,
            "Segment size of the internal topic __transaction_state.",
        ),
        (
            "transactional.id.expiration.ms",
            t.id_expiration_ms.to_string(),
            ConfigType::Int,
            "How long an idle transactional id is remembered.",
        ),
    ];
    entries
}
