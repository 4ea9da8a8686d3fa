//! What DescribeConfigs reports: every topic config with the value in force, where that
//! value comes from (the topic's override, the broker's `server.properties`, or Kafka's
//! default), its synonyms in precedence order, its type and a line of documentation.

use std::collections::BTreeMap;

use crate::layers::BrokerLayers;
use crate::topic::TopicConfig;
use crate::BrokerConfig;

/// Where a config value comes from, with DescribeConfigs' codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// An override set on the topic (1).
    DynamicTopic,
    /// A dynamic config of this broker (2).
    DynamicBroker,
    /// A dynamic config of the cluster default (3).
    DynamicDefaultBroker,
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
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// The type of a config, with DescribeConfigs v3's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// UNKNOWN (0): a name without a definition, reported as sensitive.
    Unknown,
    /// BOOLEAN (1).
    Boolean,
    /// STRING (2).
    String,
    /// INT (3).
    Int,
    /// SHORT (4).
    Short,
    /// LONG (5).
    Long,
    /// DOUBLE (6).
    Double,
    /// LIST (7).
    List,
    /// CLASS (8).
    Class,
    /// PASSWORD (9): never sent back.
    Password,
}

impl ConfigType {
    /// The code DescribeConfigs v3+ sends.
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Unknown => 0,
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }
}

/// One synonym of a config: a name and value that would supply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The topic or broker property name.
    pub name: String,
    /// Its value; `None` when sensitive.
    pub value: Option<String>,
    /// Where it is set.
    pub source: ConfigSource,
}

/// One config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    /// Config name.
    pub name: String,
    /// Value in force; `None` when null (no default) or sensitive.
    pub value: Option<String>,
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
    /// True for a password: its value is never sent.
    pub sensitive: bool,
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

pub(crate) const MAX_LONG: &str = "9223372036854775807";

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
/// Sluice enforces it (the broker's typed value) or the one given.
fn broker_value(
    broker: &BrokerConfig,
    merged: &BTreeMap<String, String>,
    defaults: &TopicConfig,
    def: &TopicConfigDef,
) -> String {
    let set = def.synonyms.iter().find(|s| merged.contains_key(**s));
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
    typed
        .or_else(|| set.and_then(|s| merged.get(*s).cloned()))
        .unwrap_or_else(|| def.default.to_string())
}

/// The type of a topic config; `None` for a name Kafka does not have.
pub fn topic_config_type(name: &str) -> Option<ConfigType> {
    TOPIC_CONFIGS
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.config_type)
}

/// The topic-default broker properties Kafka updates dynamically (the first broker
/// synonym of each topic config), their type and Kafka's default (`None` when null:
/// `log.retention.ms` defers to `log.retention.hours`).
pub(crate) fn topic_default_properties(
) -> impl Iterator<Item = (&'static str, ConfigType, Option<&'static str>)> {
    TOPIC_CONFIGS.iter().filter_map(|d| {
        let first = d.synonyms.first()?;
        Some((
            *first,
            d.config_type,
            (d.synonyms.len() == 1).then_some(d.default),
        ))
    })
}

/// The synonyms of `names` set in the broker's layers, in Kafka's precedence: this
/// broker's dynamic configs (when `per_broker`), the cluster default's, the static
/// properties, then Kafka's defaults; within a layer in the order of `names`.
pub(crate) fn layered_synonyms(
    layers: &BrokerLayers,
    names: &[&str],
    per_broker: bool,
    sensitive: bool,
    kafka_default: &dyn Fn(&str) -> Option<String>,
) -> Vec<ConfigSynonym> {
    let mut out = Vec::new();
    let mut add = |map: &dyn Fn(&str) -> Option<String>, source: ConfigSource| {
        for n in names {
            if let Some(v) = map(n) {
                out.push(ConfigSynonym {
                    name: n.to_string(),
                    value: (!sensitive).then_some(v),
                    source,
                });
            }
        }
    };
    if per_broker {
        add(
            &|n| layers.per_broker.get(n).cloned(),
            ConfigSource::DynamicBroker,
        );
    }
    add(
        &|n| layers.cluster_default.get(n).cloned(),
        ConfigSource::DynamicDefaultBroker,
    );
    add(
        &|n| layers.static_props.get(n).cloned(),
        ConfigSource::StaticBroker,
    );
    add(kafka_default, ConfigSource::Default);
    out
}

/// Every broker name that supplies a topic config's default (replica throttles are
/// topic-only despite sharing the table).
pub(crate) fn topic_default_names() -> impl Iterator<Item = &'static str> {
    TOPIC_CONFIGS
        .iter()
        .flat_map(|d| d.synonyms.iter().copied())
        .filter(|s| !s.ends_with(".throttled.replicas"))
}

/// Kafka's type of a topic-default broker name.
pub(crate) fn topic_default_type(name: &str) -> Option<ConfigType> {
    TOPIC_CONFIGS
        .iter()
        .find(|d| d.synonyms.contains(&name))
        .map(|d| d.config_type)
}

/// Kafka's default of a topic-default broker name: on the last synonym of its topic
/// config (`log.retention.hours`, not `.ms`).
pub(crate) fn kafka_topic_default(name: &str) -> Option<&'static str> {
    TOPIC_CONFIGS
        .iter()
        .find(|d| d.synonyms.last() == Some(&name))
        .map(|d| d.default)
}

/// Every topic config of a topic with these overrides, sorted by name; `broker` is the
/// configuration in force and `layers` says where each broker property comes from.
pub fn describe_topic_configs(
    broker: &BrokerConfig,
    layers: &BrokerLayers,
    overrides: &BTreeMap<String, String>,
) -> Vec<DescribedConfig> {
    let defaults = TopicConfig::resolve(broker, &BTreeMap::new());
    let merged = layers.merged();
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(def.name) {
                synonyms.push(ConfigSynonym {
                    name: def.name.to_string(),
                    value: Some(v.clone()),
                    source: ConfigSource::DynamicTopic,
                });
            }
            let mut broker_side = layered_synonyms(layers, def.synonyms, true, false, &|_| None);
            // Kafka's default of a config with several units is on the last of them
            // (log.retention.hours), kept although the first is the one named.
            if let Some(last) = def.synonyms.last() {
                broker_side.push(ConfigSynonym {
                    name: last.to_string(),
                    value: Some(def.default.to_string()),
                    source: ConfigSource::Default,
                });
            }
            synonyms.extend(broker_side);
            let (value, source) = match overrides.get(def.name) {
                Some(v) => (v.clone(), ConfigSource::DynamicTopic),
                None => (
                    broker_value(broker, &merged, &defaults, def),
                    synonyms.first().map_or(ConfigSource::Default, |s| s.source),
                ),
            };
            DescribedConfig {
                name: def.name.to_string(),
                value: Some(value),
                source,
                synonyms,
                config_type: def.config_type,
                doc: def.doc,
                read_only: false,
                sensitive: false,
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
        let b = BrokerConfig::default();
        let all = describe_topic_configs(&b, &BrokerLayers::from_static(&b), &BTreeMap::new());
        let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, crate::TOPIC_CONFIG_NAMES);
    }

    #[test]
    fn sources_follow_precedence() {
        let broker =
            BrokerConfig::from_properties([("log.retention.hours", "2"), ("log.dirs", "/tmp/x")])
                .expect("config");
        let mut overrides = BTreeMap::new();
        overrides.insert("cleanup.policy".to_string(), "compact".to_string());
        let all = describe_topic_configs(&broker, &BrokerLayers::from_static(&broker), &overrides);

        let cleanup = find(&all, "cleanup.policy");
        assert_eq!(
            (cleanup.value.as_deref(), cleanup.source),
            (Some("compact"), ConfigSource::DynamicTopic)
        );
        assert_eq!(cleanup.synonyms[0].source, ConfigSource::DynamicTopic);
        assert_eq!(cleanup.synonyms[1].name, "log.cleanup.policy");
        assert_eq!(cleanup.synonyms[1].source, ConfigSource::Default);

        let retention = find(&all, "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("7200000"));
        assert_eq!(retention.source, ConfigSource::StaticBroker);
        assert_eq!(
            retention
                .synonyms
                .iter()
                .map(|s| (
                    s.name.as_str(),
                    s.value.as_deref().unwrap_or_default(),
                    s.source
                ))
                .collect::<Vec<_>>(),
            vec![
                ("log.retention.hours", "2", ConfigSource::StaticBroker),
                ("log.retention.hours", "168", ConfigSource::Default),
            ]
        );

        let segment = find(&all, "segment.bytes");
        assert_eq!(
            (segment.value.as_deref(), segment.source),
            (Some("1073741824"), ConfigSource::Default)
        );
    }
}
