//! Per-topic configuration: Kafka's topic config names, their validation, and the values in
//! force for a topic (its overrides over the broker defaults).

use std::collections::BTreeMap;

use crate::topic_props::{topic_prop, Check, TOPIC_PROPS};
use crate::{parse_i64, BrokerConfig, ConfigError};

/// Every topic-level config name Apache Kafka accepts, sorted.
pub fn topic_config_names() -> impl Iterator<Item = &'static str> {
    TOPIC_PROPS.iter().map(|p| p.name)
}

/// `cleanup.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// `delete`: retention removes old segments.
    Delete,
    /// `compact`: the cleaner keeps the latest record per key.
    Compact,
    /// `compact,delete`: both.
    CompactDelete,
}

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// `CreateTime`: the producer's timestamps, checked against the allowed range.
    CreateTime,
    /// `LogAppendTime`: the broker stamps each batch with its own time.
    LogAppendTime,
}

/// `compression.type`: the codec stored batches are kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// `producer`: batches keep the producer's codec.
    Producer,
    /// `uncompressed` (or `none`).
    Uncompressed,
    /// `gzip`.
    Gzip,
    /// `snappy`.
    Snappy,
    /// `lz4`.
    Lz4,
    /// `zstd`.
    Zstd,
}

impl CompressionType {
    pub(crate) fn parse(key: &str, v: &str) -> Result<Self, ConfigError> {
        Ok(match v {
            "producer" => CompressionType::Producer,
            "uncompressed" | "none" => CompressionType::Uncompressed,
            "gzip" => CompressionType::Gzip,
            "snappy" => CompressionType::Snappy,
            "lz4" => CompressionType::Lz4,
            "zstd" => CompressionType::Zstd,
            _ => {
                return Err(ConfigError::invalid(
                    key,
                    v,
                    "expected producer, uncompressed, gzip, snappy, lz4 or zstd",
                ))
            }
        })
    }
}

impl CompressionType {
    /// The name `compression.type` takes for this codec.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }
}

impl TimestampType {
    /// The name `message.timestamp.type` takes.
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

impl CleanupPolicy {
    /// The value `cleanup.policy` takes.
    pub fn name(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }

    /// True when the cleaner compacts the log.
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }

    /// True when retention deletes old segments.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
}

/// The values in force for one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// `retention.ms`; -1 keeps data forever.
    pub retention_ms: i64,
    /// `retention.bytes`; -1 means no size limit.
    pub retention_bytes: i64,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: i32,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime may be.
    pub timestamp_after_max_ms: i64,
    /// `compression.type`.
    pub compression_type: CompressionType,
    /// `delete.retention.ms`: how long the cleaner keeps tombstones once it has seen them.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: records older than this are compacted whatever the ratio.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: share of uncleaned bytes that makes a log worth cleaning.
    pub min_cleanable_dirty_ratio: f64,
    /// `flush.messages`: an fsync before acknowledging once this many messages are
    /// unflushed; `u64::MAX` leaves flushing to the OS (and `flush.ms`).
    pub flush_messages: u64,
    /// `min.insync.replicas`: the smallest ISR that may acknowledge an `acks=all` write.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`: an out-of-sync replica may become leader.
    pub unclean_leader_election_enable: bool,
    /// `remote.storage.enable`: sealed segments are copied to the remote tier.
    pub remote_storage_enable: bool,
    /// `remote.log.copy.disable`: no more copies; what is remote stays readable.
    pub remote_log_copy_disable: bool,
    /// `remote.log.delete.on.disable`: turning `remote.storage.enable` off deletes the
    /// remote segments (without it, turning it off is refused).
    pub remote_log_delete_on_disable: bool,
    /// `local.retention.ms`; -2 is `retention.ms`.
    pub local_retention_ms: i64,
    /// `local.retention.bytes`; -2 is `retention.bytes`.
    pub local_retention_bytes: i64,
    /// `confluent.key.schema.validation`: record keys must name a schema of their subject.
    pub key_schema_validation: bool,
    /// `confluent.value.schema.validation`: record values must name a schema of their
    /// subject.
    pub value_schema_validation: bool,
    /// `confluent.key.subject.name.strategy`.
    pub key_subject_name_strategy: SubjectNameStrategy,
    /// `confluent.value.subject.name.strategy`.
    pub value_subject_name_strategy: SubjectNameStrategy,
}

/// How a record's subject is named (Confluent's `subject.name.strategy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubjectNameStrategy {
    /// `<topic>-key` or `<topic>-value`.
    #[default]
    TopicName,
    /// The record's fully-qualified name.
    RecordName,
    /// `<topic>-<record's fully-qualified name>`.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// Confluent's class name.
    pub fn class_name(self) -> &'static str {
        match self {
            SubjectNameStrategy::TopicName => {
                "io.confluent.kafka.serializers.subject.TopicNameStrategy"
            }
            SubjectNameStrategy::RecordName => {
                "io.confluent.kafka.serializers.subject.RecordNameStrategy"
            }
            SubjectNameStrategy::TopicRecordName => {
                "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy"
            }
        }
    }

    /// Reads a class name, or its simple name.
    pub(crate) fn parse(key: &str, v: &str) -> Result<Self, ConfigError> {
        match v.rsplit('.').next().unwrap_or(v) {
            "TopicNameStrategy" => Ok(SubjectNameStrategy::TopicName),
            "RecordNameStrategy" => Ok(SubjectNameStrategy::RecordName),
            "TopicRecordNameStrategy" => Ok(SubjectNameStrategy::TopicRecordName),
            _ => Err(ConfigError::invalid(
                key,
                v,
                "expected TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy",
            )),
        }
    }
}

impl TopicConfig {
    /// The values in force: `overrides` over the broker defaults. The overrides must
    /// already have passed [`validate_topic_config`].
    pub fn resolve(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Self {
        let mut cfg = TopicConfig {
            retention_ms: broker.log_retention_ms,
            retention_bytes: broker.log_retention_bytes,
            segment_bytes: broker.log_segment_bytes,
            segment_ms: broker.log_roll_ms,
            max_message_bytes: broker.message_max_bytes,
            cleanup_policy: CleanupPolicy::Delete,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            // Kafka 4's default: an hour into the future.
            timestamp_after_max_ms: 3_600_000,
            compression_type: CompressionType::Producer,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            flush_messages: broker.flush.interval_messages,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            remote_storage_enable: false,
            remote_log_copy_disable: false,
            remote_log_delete_on_disable: false,
            local_retention_ms: -2,
            local_retention_bytes: -2,
            key_schema_validation: false,
            value_schema_validation: false,
            key_subject_name_strategy: SubjectNameStrategy::TopicName,
            value_subject_name_strategy: SubjectNameStrategy::TopicName,
        };
        // Broker properties set some defaults (validated at start-up).
        for (k, v) in &broker.topic_defaults {
            let _ = cfg.apply(k, v);
        }
        for (k, v) in overrides {
            // Validated before it was stored; a value that no longer parses keeps the default.
            let _ = cfg.apply(k, v);
        }
        cfg
    }

    /// The local log's time retention with tiered storage: `local.retention.ms`, or
    /// `retention.ms` when it is -2.
    pub fn effective_local_retention_ms(&self) -> i64 {
        if self.local_retention_ms == -2 {
            self.retention_ms
        } else {
            self.local_retention_ms
        }
    }

    /// The local log's size retention with tiered storage: `local.retention.bytes`, or
    /// `retention.bytes` when it is -2.
    pub fn effective_local_retention_bytes(&self) -> i64 {
        if self.local_retention_bytes == -2 {
            self.retention_bytes
        } else {
            self.local_retention_bytes
        }
    }

    /// Sets one entry (its name as a topic config); names without a typed field are
    /// accepted and ignored here.
    pub(crate) fn apply(&mut self, key: &str, v: &str) -> Result<(), ConfigError> {
        match topic_prop(key).map(|p| p.check) {
            Some(Check::Typed { apply, .. }) => apply(self, key, v),
            _ => Ok(()),
        }
    }
}

pub(crate) fn parse_timestamp_type(key: &str, v: &str) -> Result<TimestampType, ConfigError> {
    match v {
        "CreateTime" => Ok(TimestampType::CreateTime),
        "LogAppendTime" => Ok(TimestampType::LogAppendTime),
        _ => Err(ConfigError::invalid(
            key,
            v,
            "expected CreateTime or LogAppendTime",
        )),
    }
}

pub(crate) fn parse_cleanup_policy(key: &str, v: &str) -> Result<CleanupPolicy, ConfigError> {
    let mut parts: Vec<&str> = v.split(',').map(str::trim).collect();
    parts.sort_unstable();
    parts.dedup();
    match parts.as_slice() {
        ["delete"] => Ok(CleanupPolicy::Delete),
        ["compact"] => Ok(CleanupPolicy::Compact),
        ["compact", "delete"] => Ok(CleanupPolicy::CompactDelete),
        _ => Err(ConfigError::invalid(
            key,
            v,
            "expected delete, compact, or compact,delete",
        )),
    }
}

/// Checks a change of a topic's overrides from `old` to `new` (both valid on their own):
/// as Kafka (KIP-950), turning `remote.storage.enable` off is refused unless
/// `remote.log.delete.on.disable` says the remote segments may go.
pub fn validate_topic_change(
    broker: &BrokerConfig,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let (before, after) = (
        TopicConfig::resolve(broker, old),
        TopicConfig::resolve(broker, new),
    );
    if before.remote_storage_enable
        && !after.remote_storage_enable
        && !after.remote_log_delete_on_disable
    {
        return Err(ConfigError::invalid(
            "remote.storage.enable",
            "false",
            "turning tiered storage off would leave the remote data unreadable: set \
             remote.log.delete.on.disable=true with it to delete the remote segments, or \
             keep remote.storage.enable=true and set remote.log.copy.disable=true to stop \
             copying while the remote data stays readable",
        ));
    }
    Ok(())
}

/// Checks the entries of a topic's overrides together, as Kafka does after each one
/// passed [`validate_topic_config`].
pub fn validate_topic_overrides(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let cfg = TopicConfig::resolve(broker, overrides);
    if cfg.min_compaction_lag_ms > cfg.max_compaction_lag_ms {
        return Err(ConfigError::invalid(
            "min.compaction.lag.ms",
            &cfg.min_compaction_lag_ms.to_string(),
            format!(
                "must not exceed max.compaction.lag.ms ({})",
                cfg.max_compaction_lag_ms
            ),
        ));
    }
    if cfg.remote_storage_enable && !broker.remote.enabled {
        return Err(ConfigError::invalid(
            "remote.storage.enable",
            "true",
            "tiered storage is disabled in the broker (remote.log.storage.system.enable=false)",
        ));
    }
    for (validates, key) in [
        (cfg.key_schema_validation, "confluent.key.schema.validation"),
        (
            cfg.value_schema_validation,
            "confluent.value.schema.validation",
        ),
    ] {
        if validates && broker.schema_registry.listeners.is_empty() {
            return Err(ConfigError::invalid(
                key,
                "true",
                "schema validation needs the built-in Schema Registry (schema.registry.listeners)",
            ));
        }
    }
    if cfg.remote_storage_enable && cfg.cleanup_policy.compacts() {
        return Err(ConfigError::invalid(
            "remote.storage.enable",
            "true",
            "remote log storage is unsupported for compacted topics",
        ));
    }
    // Kafka's checks: the local tier keeps no more than the whole log.
    if cfg.retention_ms != -1 && cfg.effective_local_retention_ms() > cfg.retention_ms {
        return Err(ConfigError::invalid(
            "local.retention.ms",
            &cfg.local_retention_ms.to_string(),
            format!("must not be more than retention.ms ({})", cfg.retention_ms),
        ));
    }
    if cfg.retention_bytes != -1 && cfg.effective_local_retention_bytes() > cfg.retention_bytes {
        return Err(ConfigError::invalid(
            "local.retention.bytes",
            &cfg.local_retention_bytes.to_string(),
            format!(
                "must not be more than retention.bytes ({})",
                cfg.retention_bytes
            ),
        ));
    }
    Ok(())
}

/// Checks one topic config entry as CreateTopics and AlterConfigs must.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), ConfigError> {
    let Some(prop) = topic_prop(key) else {
        return Err(ConfigError::Unknown(key.to_string()));
    };
    match prop.check {
        Check::Typed { apply, .. } => {
            let mut scratch = TopicConfig::resolve(&BrokerConfig::default(), &BTreeMap::new());
            apply(&mut scratch, key, value)
        }
        Check::Bool => crate::parse_bool(key, value).map(|_| ()),
        Check::AtLeast(min) => parse_i64(key, value, min).map(|_| ()),
        Check::ThrottledReplicas => check_throttled_replicas(key, value),
        Check::Any => Ok(()),
    }
}

/// `*`, nothing, or `partition:broker` pairs of integers separated by commas.
fn check_throttled_replicas(key: &str, value: &str) -> Result<(), ConfigError> {
    let value = value.trim();
    if value.is_empty() || value == "*" {
        return Ok(());
    }
    let pair = |item: &str| {
        let mut parts = item.trim().split(':');
        let ok = |p: Option<&str>| p.is_some_and(|p| p.trim().parse::<i32>().is_ok_and(|n| n >= 0));
        ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
    };
    if value.split(',').all(pair) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            value,
            "must be * or a comma-separated list of partition:broker pairs",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_replica_lists_are_checked_as_kafka_checks_them() {
        for ok in ["", "*", "0:1", "0:1, 1:2,2:3"] {
            assert!(
                validate_topic_config("leader.replication.throttled.replicas", ok).is_ok(),
                "{ok}"
            );
        }
        for bad in ["1", "0:x", "0:1:2", "0:1,", "*,0:1", "-1:1"] {
            assert!(
                validate_topic_config("follower.replication.throttled.replicas", bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn overrides_win_over_broker_defaults() {
        let broker = BrokerConfig::default();
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "1000".to_string());
        o.insert("cleanup.policy".to_string(), "delete,compact".to_string());
        let t = TopicConfig::resolve(&broker, &o);
        assert_eq!(t.retention_ms, 1000);
        assert_eq!(t.cleanup_policy, CleanupPolicy::CompactDelete);
        assert_eq!(t.segment_bytes, broker.log_segment_bytes);
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(
            validate_topic_config("retention.msec", "1"),
            Err(ConfigError::Unknown("retention.msec".into()))
        );
        assert!(validate_topic_config("cleanup.policy", "forever").is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("compression.type", "zstd").is_ok());
    }
}
