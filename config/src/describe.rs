//! What DescribeConfigs reports: every topic config with the value in force, where that
//! value comes from (the topic's override, the broker's `server.properties`, or Kafka's
//! default), its synonyms in precedence order, its type and a line of documentation.

use std::collections::BTreeMap;

use crate::topic::TopicConfig;
use crate::BrokerConfig;

/// Where a config value comes from, with DescribeConfigs' codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// An override set on the topic (1).
    DynamicTopic,
    /// Set in the broker's properties at start-up (4).
    StaticBroker,
    /// Kafka's default (5).
    Default,
}

impl ConfigSource {
    /// The code DescribeConfigs v1+ sends.
    pub fn code(self) -> i8 {
        match self {
            ConfigSource::DynamicTopic => 1,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// The type of a config, with DescribeConfigs v3's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// BOOLEAN (1).
    Boolean,
    /// STRING (2).
    String,
    /// INT (3).
    Int,
    /// LONG (5).
    Long,
    /// DOUBLE (6).
    Double,
    /// LIST (7).
    List,
}

impl ConfigType {
    /// The code DescribeConfigs v3+ sends.
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

/// One synonym of a config: a name and value that would supply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The topic or broker property name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Where it is set.
    pub source: ConfigSource,
}

/// One config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    /// Config name.
    pub name: &'static str,
    /// Value in force.
    pub value: String,
    /// Where the value in force comes from.
    pub source: ConfigSource,
    /// Every source that could supply it, highest precedence first.
    pub synonyms: Vec<ConfigSynonym>,
    /// Type of the value.
    pub config_type: ConfigType,
    /// One line of documentation.
    pub doc: &'static str,
    /// True when it cannot be changed without a restart.
    pub read_only: bool,
}

/// A topic config: its broker-level synonyms (highest precedence first), Kafka's default
/// for the last of them, its type and documentation.
struct TopicConfigDef {
    name: &'static str,
    synonyms: &'static [&'static str],
    default: &'static str,
    config_type: ConfigType,
    doc: &'static str,
}

const MAX_LONG: &str = "9223372036854775807";

const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef { name: "cleanup.policy", synonyms: &["log.cleanup.policy"], default: "delete", config_type: ConfigType::List, doc: "delete: old segments are deleted by retention; compact: the latest record per key is kept; both may be given." },
    TopicConfigDef { name: "compression.type", synonyms: &["compression.type"], default: "producer", config_type: ConfigType::String, doc: "Codec of stored batches: producer keeps the producer's, or uncompressed, gzip, snappy, lz4, zstd." },
    TopicConfigDef { name: "compression.gzip.level", synonyms: &["compression.gzip.level"], default: "-1", config_type: ConfigType::Int, doc: "gzip level when compression.type is gzip." },
    TopicConfigDef { name: "compression.lz4.level", synonyms: &["compression.lz4.level"], default: "9", config_type: ConfigType::Int, doc: "lz4 level when compression.type is lz4." },
    TopicConfigDef { name: "compression.zstd.level", synonyms: &["compression.zstd.level"], default: "3", config_type: ConfigType::Int, doc: "zstd level when compression.type is zstd." },
    TopicConfigDef { name: "delete.retention.ms", synonyms: &["log.cleaner.delete.retention.ms"], default: "86400000", config_type: ConfigType::Long, doc: "How long tombstones of a compacted topic are kept." },
    TopicConfigDef { name: "file.delete.delay.ms", synonyms: &["log.segment.delete.delay.ms"], default: "60000", config_type: ConfigType::Long, doc: "Delay before a deleted segment's file is removed." },
    TopicConfigDef { name: "flush.messages", synonyms: &["log.flush.interval.messages"], default: MAX_LONG, config_type: ConfigType::Long, doc: "Force an fsync after this many messages." },
    TopicConfigDef { name: "flush.ms", synonyms: &["log.flush.interval.ms"], default: MAX_LONG, config_type: ConfigType::Long, doc: "Force an fsync of data older than this." },
    TopicConfigDef { name: "follower.replication.throttled.replicas", synonyms: &["follower.replication.throttled.replicas"], default: "", config_type: ConfigType::List, doc: "Replicas throttled on the follower side." },
    TopicConfigDef { name: "index.interval.bytes", synonyms: &["log.index.interval.bytes"], default: "4096", config_type: ConfigType::Int, doc: "How often an offset index entry is added." },
    TopicConfigDef { name: "leader.replication.throttled.replicas", synonyms: &["leader.replication.throttled.replicas"], default: "", config_type: ConfigType::List, doc: "Replicas throttled on the leader side." },
    TopicConfigDef { name: "local.retention.bytes", synonyms: &["log.local.retention.bytes"], default: "-2", config_type: ConfigType::Long, doc: "Local size retention with tiered storage; -2 uses retention.bytes." },
    TopicConfigDef { name: "local.retention.ms", synonyms: &["log.local.retention.ms"], default: "-2", config_type: ConfigType::Long, doc: "Local time retention with tiered storage; -2 uses retention.ms." },
    TopicConfigDef { name: "max.compaction.lag.ms", synonyms: &["log.cleaner.max.compaction.lag.ms"], default: MAX_LONG, config_type: ConfigType::Long, doc: "Longest time a record stays ineligible for compaction." },
    TopicConfigDef { name: "max.message.bytes", synonyms: &["message.max.bytes"], default: "1048588", config_type: ConfigType::Int, doc: "Largest record batch accepted." },
    TopicConfigDef { name: "message.downconversion.enable", synonyms: &["log.message.downconversion.enable"], default: "true", config_type: ConfigType::Boolean, doc: "Down-conversion for old consumers (not applicable: only magic v2 is stored)." },
    TopicConfigDef { name: "message.format.version", synonyms: &["log.message.format.version"], default: "3.0-IV1", config_type: ConfigType::String, doc: "Message format version (always v2)." },
    TopicConfigDef { name: "message.timestamp.after.max.ms", synonyms: &["log.message.timestamp.after.max.ms"], default: "3600000", config_type: ConfigType::Long, doc: "How far in the future a CreateTime timestamp may be." },
    TopicConfigDef { name: "message.timestamp.before.max.ms", synonyms: &["log.message.timestamp.before.max.ms"], default: MAX_LONG, config_type: ConfigType::Long, doc: "How far in the past a CreateTime timestamp may be." },
    TopicConfigDef { name: "message.timestamp.difference.max.ms", synonyms: &["log.message.timestamp.difference.max.ms"], default: MAX_LONG, config_type: ConfigType::Long, doc: "Deprecated: see message.timestamp.before.max.ms and after.max.ms." },
    TopicConfigDef { name: "message.timestamp.type", synonyms: &["log.message.timestamp.type"], default: "CreateTime", config_type: ConfigType::String, doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's time." },
    TopicConfigDef { name: "min.cleanable.dirty.ratio", synonyms: &["log.cleaner.min.cleanable.ratio"], default: "0.5", config_type: ConfigType::Double, doc: "Share of the log that must be uncleaned before compaction runs." },
    TopicConfigDef { name: "min.compaction.lag.ms", synonyms: &["log.cleaner.min.compaction.lag.ms"], default: "0", config_type: ConfigType::Long, doc: "Shortest time a record stays uncompacted." },
    TopicConfigDef { name: "min.insync.replicas", synonyms: &["min.insync.replicas"], default: "1", config_type: ConfigType::Int, doc: "Replicas that must acknowledge an acks=all write (one node: 1)." },
    TopicConfigDef { name: "preallocate", synonyms: &["log.preallocate"], default: "false", config_type: ConfigType::Boolean, doc: "Preallocate segment files." },
    TopicConfigDef { name: "remote.log.copy.disable", synonyms: &[], default: "false", config_type: ConfigType::Boolean, doc: "Stop copying segments to tiered storage." },
    TopicConfigDef { name: "remote.log.delete.on.disable", synonyms: &[], default: "false", config_type: ConfigType::Boolean, doc: "Delete tiered segments when tiered storage is disabled." },
    TopicConfigDef { name: "remote.storage.enable", synonyms: &[], default: "false", config_type: ConfigType::Boolean, doc: "Tiered storage for this topic." },
    TopicConfigDef { name: "retention.bytes", synonyms: &["log.retention.bytes"], default: "-1", config_type: ConfigType::Long, doc: "Largest size of a partition before old segments are deleted; -1 for no limit." },
    TopicConfigDef { name: "retention.ms", synonyms: &["log.retention.ms", "log.retention.minutes", "log.retention.hours"], default: "168", config_type: ConfigType::Long, doc: "How long a segment is kept after its newest record; -1 forever." },
    TopicConfigDef { name: "segment.bytes", synonyms: &["log.segment.bytes"], default: "1073741824", config_type: ConfigType::Int, doc: "Size at which a segment file is rolled." },
    TopicConfigDef { name: "segment.index.bytes", synonyms: &["log.index.size.max.bytes"], default: "10485760", config_type: ConfigType::Int, doc: "Size of a segment's offset index (the index is in RocksDB here)." },
    TopicConfigDef { name: "segment.jitter.ms", synonyms: &["log.roll.jitter.ms", "log.roll.jitter.hours"], default: "0", config_type: ConfigType::Long, doc: "Random jitter subtracted from segment.ms." },
    TopicConfigDef { name: "segment.ms", synonyms: &["log.roll.ms", "log.roll.hours"], default: "168", config_type: ConfigType::Long, doc: "Age at which a segment is rolled even if not full." },
    TopicConfigDef { name: "unclean.leader.election.enable", synonyms: &["unclean.leader.election.enable"], default: "false", config_type: ConfigType::Boolean, doc: "Allow an out-of-sync replica to become leader (one node: no effect)." },
];

/// The broker property that supplies a topic config's default, its value in force and
/// its source; `None` when the broker's value is Kafka's default.
fn broker_value(
    broker: &BrokerConfig,
    defaults: &TopicConfig,
    def: &TopicConfigDef,
) -> (String, ConfigSource) {
    let set = def
        .synonyms
        .iter()
        .find(|s| broker.set_properties.contains_key(**s));
    let source = if set.is_some() {
        ConfigSource::StaticBroker
    } else {
        ConfigSource::Default
    };
    // Values Sluice parses come from the typed configuration, so the report is what is
    // enforced; the others are passed through as given, or Kafka's default.
    let typed = match def.name {
        "retention.ms" => Some(defaults.retention_ms.to_string()),
        "retention.bytes" => Some(defaults.retention_bytes.to_string()),
        "segment.bytes" => Some(defaults.segment_bytes.to_string()),
        "segment.ms" => Some(defaults.segment_ms.to_string()),
        "max.message.bytes" => Some(defaults.max_message_bytes.to_string()),
        "message.timestamp.after.max.ms" => Some(defaults.timestamp_after_max_ms.to_string()),
        "cleanup.policy" => Some(defaults.cleanup_policy.name().to_string()),
        "compression.type" => Some(defaults.compression_type.name().to_string()),
        "message.timestamp.type" => Some(defaults.timestamp_type.name().to_string()),
        "delete.retention.ms" => Some(defaults.delete_retention_ms.to_string()),
        "min.compaction.lag.ms" => Some(defaults.min_compaction_lag_ms.to_string()),
        "max.compaction.lag.ms" => Some(defaults.max_compaction_lag_ms.to_string()),
        "min.cleanable.dirty.ratio" => Some(defaults.min_cleanable_dirty_ratio.to_string()),
        "message.timestamp.before.max.ms" => Some(defaults.timestamp_before_max_ms.to_string()),
        "flush.messages" => Some(
            i64::try_from(broker.flush.interval_messages)
                .unwrap_or(i64::MAX)
                .to_string(),
        ),
        "flush.ms" => Some(
            broker
                .flush
                .interval
                .map_or(MAX_LONG.to_string(), |d| d.as_millis().to_string()),
        ),
        _ => None,
    };
    let value = typed
        .or_else(|| set.and_then(|s| broker.set_properties.get(*s).cloned()))
        .unwrap_or_else(|| def.default.to_string());
    (value, source)
}

/// The type of a topic config; `None` for a name Kafka does not have.
pub fn topic_config_type(name: &str) -> Option<ConfigType> {
    TOPIC_CONFIGS
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.config_type)
}

/// Every topic config of a topic with these overrides, sorted by name.
pub fn describe_topic_configs(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Vec<DescribedConfig> {
    let defaults = TopicConfig::resolve(broker, &BTreeMap::new());
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(def.name) {
                synonyms.push(ConfigSynonym {
                    name: def.name.to_string(),
                    value: v.clone(),
                    source: ConfigSource::DynamicTopic,
                });
            }
            for s in def.synonyms {
                if let Some(v) = broker.set_properties.get(*s) {
                    synonyms.push(ConfigSynonym {
                        name: s.to_string(),
                        value: v.clone(),
                        source: ConfigSource::StaticBroker,
                    });
                }
            }
            if let Some(last) = def.synonyms.last() {
                synonyms.push(ConfigSynonym {
                    name: last.to_string(),
                    value: def.default.to_string(),
                    source: ConfigSource::Default,
                });
            }
            let (value, source) = match overrides.get(def.name) {
                Some(v) => (v.clone(), ConfigSource::DynamicTopic),
                None => broker_value(broker, &defaults, def),
            };
            DescribedConfig {
                name: def.name,
                value,
                source,
                synonyms,
                config_type: def.config_type,
                doc: def.doc,
                read_only: false,
            }
        })
        .collect()
}

/// The broker's own settings in force, all static (a restart changes them), sorted by
/// name.
pub fn describe_broker_configs(broker: &BrokerConfig) -> Vec<DescribedConfig> {
    let listeners = |ls: &[crate::Listener]| {
        ls.iter()
            .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
            .collect::<Vec<_>>()
            .join(",")
    };
    let ms = |d: std::time::Duration| d.as_millis().to_string();
    let g = &broker.groups;
    let t = &broker.transactions;
    let entries: Vec<(&'static str, String, ConfigType, &'static str)> = vec![
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
        .into_iter()
        .map(|(name, value, config_type, doc)| {
            let source = if broker.set_properties.contains_key(name) {
                ConfigSource::StaticBroker
            } else {
                ConfigSource::Default
            };
            DescribedConfig {
                name,
                synonyms: vec![ConfigSynonym {
                    name: name.to_string(),
                    value: value.clone(),
                    source,
                }],
                value,
                source,
                config_type,
                doc,
                read_only: true,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(all: &'a [DescribedConfig], name: &str) -> &'a DescribedConfig {
        all.iter().find(|c| c.name == name).expect(name)
    }

    #[test]
    fn every_topic_config_name_is_described() {
        let all = describe_topic_configs(&BrokerConfig::default(), &BTreeMap::new());
        let names: Vec<&str> = all.iter().map(|c| c.name).collect();
        assert_eq!(names, crate::TOPIC_CONFIG_NAMES);
    }

    #[test]
    fn sources_follow_precedence() {
        let broker =
            BrokerConfig::from_properties([("log.retention.hours", "2"), ("log.dirs", "/tmp/x")])
                .expect("config");
        let mut overrides = BTreeMap::new();
        overrides.insert("cleanup.policy".to_string(), "compact".to_string());
        let all = describe_topic_configs(&broker, &overrides);

        let cleanup = find(&all, "cleanup.policy");
        assert_eq!(
            (cleanup.value.as_str(), cleanup.source),
            ("compact", ConfigSource::DynamicTopic)
        );
        assert_eq!(cleanup.synonyms[0].source, ConfigSource::DynamicTopic);
        assert_eq!(cleanup.synonyms[1].name, "log.cleanup.policy");
        assert_eq!(cleanup.synonyms[1].source, ConfigSource::Default);

        let retention = find(&all, "retention.ms");
        assert_eq!(retention.value, "7200000");
        assert_eq!(retention.source, ConfigSource::StaticBroker);
        assert_eq!(
            retention
                .synonyms
                .iter()
                .map(|s| (s.name.as_str(), s.value.as_str(), s.source))
                .collect::<Vec<_>>(),
            vec![
                ("log.retention.hours", "2", ConfigSource::StaticBroker),
                ("log.retention.hours", "168", ConfigSource::Default),
            ]
        );

        let segment = find(&all, "segment.bytes");
        assert_eq!(
            (segment.value.as_str(), segment.source),
            ("1073741824", ConfigSource::Default)
        );
    }
}
