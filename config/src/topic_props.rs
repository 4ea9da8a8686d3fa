//! The declarations of Kafka's topic configs: name, broker-level synonyms (highest
//! precedence first; Kafka's default is on the last), default, type, documentation, and
//! how Sluice parses the value it enforces or checks one it only stores.

use crate::describe::{ConfigType, MAX_LONG};
use crate::topic::{
    parse_cleanup_policy, parse_timestamp_type, CompressionType, SubjectNameStrategy, TopicConfig,
};
use crate::{parse_bool, parse_i32, parse_i64, BrokerConfig, ConfigError};

/// Sets the typed value of a topic config Sluice enforces; the error names the key.
pub(crate) type Apply = fn(&mut TopicConfig, &str, &str) -> Result<(), ConfigError>;
/// The value in force from the broker's defaults, for a config Sluice enforces.
pub(crate) type Value = fn(&TopicConfig, &BrokerConfig) -> String;

/// How a topic config's value is checked.
#[derive(Clone, Copy)]
pub(crate) enum Check {
    /// Parsed into the typed configuration, which checks it.
    Typed {
        /// Parses and sets the value.
        apply: Apply,
        /// The value in force when the topic does not override it.
        value: Value,
    },
    /// `true` or `false`.
    Bool,
    /// An integer no less than this.
    AtLeast(i64),
    /// `*`, or `partition:broker` pairs separated by commas (Kafka's
    /// `ThrottledReplicaListValidator`).
    ThrottledReplicas,
    /// Anything.
    Any,
}

/// One topic config.
pub(crate) struct TopicProp {
    /// Kafka's name.
    pub(crate) name: &'static str,
    /// The broker properties that supply its default, highest precedence first.
    pub(crate) synonyms: &'static [&'static str],
    /// Kafka's default, on the last synonym.
    pub(crate) default: &'static str,
    /// Kafka's type.
    pub(crate) config_type: ConfigType,
    /// One line of documentation.
    pub(crate) doc: &'static str,
    /// How a value is checked.
    pub(crate) check: Check,
    /// The value in force when the topic does not override it, where Sluice enforces one.
    pub(crate) value: Option<Value>,
    /// Kafka updates its first broker synonym dynamically (as the topic default).
    pub(crate) broker_dynamic: bool,
}

impl TopicProp {
    const fn new(
        name: &'static str,
        synonyms: &'static [&'static str],
        default: &'static str,
        config_type: ConfigType,
        check: Check,
        doc: &'static str,
    ) -> Self {
        let value = match check {
            Check::Typed { value, .. } => Some(value),
            _ => None,
        };
        TopicProp {
            name,
            synonyms,
            default,
            config_type,
            doc,
            check,
            value,
            broker_dynamic: true,
        }
    }

    /// The same config, whose broker synonym Kafka 4 does not update dynamically (removed
    /// or replica-throttle configs).
    const fn broker_static(mut self) -> Self {
        self.broker_dynamic = false;
        self
    }

    /// The same config, with the value in force read from the broker's configuration.
    const fn shown(mut self, value: Value) -> Self {
        self.value = Some(value);
        self
    }
}

const fn typed(apply: Apply, value: Value) -> Check {
    Check::Typed { apply, value }
}

fn set_i32(v: &str, k: &str, min: i64) -> Result<i32, ConfigError> {
    crate::parse_i32(k, v, min)
}

use ConfigType::{Boolean, Double, Int, List, Long, String as Str};

/// Every topic config Apache Kafka has, by name.
#[rustfmt::skip]
pub(crate) static TOPIC_PROPS: &[TopicProp] = &[
    TopicProp::new("cleanup.policy", &["log.cleanup.policy"], "delete", List,
        typed(|t, k, v| { t.cleanup_policy = parse_cleanup_policy(k, v)?; Ok(()) }, |t, _| t.cleanup_policy.name().to_string()),
        "delete: old segments are deleted by retention; compact: the latest record per key is kept; both may be given."),
    TopicProp::new("compression.type", &["compression.type"], "producer", Str,
        typed(|t, k, v| { t.compression_type = CompressionType::parse(k, v)?; Ok(()) }, |t, _| t.compression_type.name().to_string()),
        "Codec of stored batches: producer keeps the producer's, or uncompressed, gzip, snappy, lz4, zstd."),
    TopicProp::new("compression.gzip.level", &["compression.gzip.level"], "-1", Int, Check::Any,
        "gzip level when compression.type is gzip."),
    TopicProp::new("compression.lz4.level", &["compression.lz4.level"], "9", Int, Check::Any,
        "lz4 level when compression.type is lz4."),
    TopicProp::new("compression.zstd.level", &["compression.zstd.level"], "3", Int, Check::Any,
        "zstd level when compression.type is zstd."),
    TopicProp::new("confluent.key.schema.validation", &[], "false", Boolean,
        typed(|t, k, v| { t.key_schema_validation = parse_bool(k, v)?; Ok(()) }, |t, _| t.key_schema_validation.to_string()),
        "Refuse records whose key does not carry a schema id registered under its subject in the built-in Schema Registry (Confluent Server's)."),
    TopicProp::new("confluent.key.subject.name.strategy", &[], "io.confluent.kafka.serializers.subject.TopicNameStrategy", Str,
        typed(|t, k, v| { t.key_subject_name_strategy = SubjectNameStrategy::parse(k, v)?; Ok(()) }, |t, _| t.key_subject_name_strategy.class_name().to_string()),
        "How key validation names the subject: TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy (Confluent Server's)."),
    TopicProp::new("confluent.value.schema.validation", &[], "false", Boolean,
        typed(|t, k, v| { t.value_schema_validation = parse_bool(k, v)?; Ok(()) }, |t, _| t.value_schema_validation.to_string()),
        "Refuse records whose value does not carry a schema id registered under its subject in the built-in Schema Registry (Confluent Server's)."),
    TopicProp::new("confluent.value.subject.name.strategy", &[], "io.confluent.kafka.serializers.subject.TopicNameStrategy", Str,
        typed(|t, k, v| { t.value_subject_name_strategy = SubjectNameStrategy::parse(k, v)?; Ok(()) }, |t, _| t.value_subject_name_strategy.class_name().to_string()),
        "How value validation names the subject: TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy (Confluent Server's)."),
    TopicProp::new("delete.retention.ms", &["log.cleaner.delete.retention.ms"], "86400000", Long,
        typed(|t, k, v| { t.delete_retention_ms = parse_i64(k, v, 0)?; Ok(()) }, |t, _| t.delete_retention_ms.to_string()),
        "How long tombstones of a compacted topic are kept."),
    TopicProp::new("file.delete.delay.ms", &["log.segment.delete.delay.ms"], "60000", Long, Check::AtLeast(0),
        "Delay before a deleted segment's file is removed."),
    TopicProp::new("flush.messages", &["log.flush.interval.messages"], MAX_LONG, Long,
        typed(|t, k, v| { t.flush_messages = parse_i64(k, v, 1)? as u64; Ok(()) },
            |_, b| i64::try_from(b.flush.interval_messages).unwrap_or(i64::MAX).to_string()),
        "Force an fsync after this many messages."),
    TopicProp::new("flush.ms", &["log.flush.interval.ms"], MAX_LONG, Long, Check::AtLeast(1),
        "Force an fsync of data older than this.")
        .shown(|_, b| b.flush.interval.map_or(MAX_LONG.to_string(), |d| d.as_millis().to_string())),
    TopicProp::new("follower.replication.throttled.replicas", &["follower.replication.throttled.replicas"], "", List, Check::ThrottledReplicas,
        "Replicas (partition:broker, or *) whose followers out of the ISR fetch within follower.replication.throttled.rate.")
        .broker_static(),
    TopicProp::new("index.interval.bytes", &["log.index.interval.bytes"], "4096", Int, Check::AtLeast(0),
        "How often an offset index entry is added."),
    TopicProp::new("leader.replication.throttled.replicas", &["leader.replication.throttled.replicas"], "", List, Check::ThrottledReplicas,
        "Replicas (partition:broker, or *) whose leaders send to followers out of the ISR within leader.replication.throttled.rate.")
        .broker_static(),
    TopicProp::new("local.retention.bytes", &["log.local.retention.bytes"], "-2", Long,
        typed(|t, k, v| { t.local_retention_bytes = parse_i64(k, v, -2)?; Ok(()) }, |t, _| t.local_retention_bytes.to_string()),
        "Local size retention with tiered storage: uploaded segments beyond it leave the local disk; -2 uses retention.bytes."),
    TopicProp::new("local.retention.ms", &["log.local.retention.ms"], "-2", Long,
        typed(|t, k, v| { t.local_retention_ms = parse_i64(k, v, -2)?; Ok(()) }, |t, _| t.local_retention_ms.to_string()),
        "Local time retention with tiered storage: uploaded segments older than it leave the local disk; -2 uses retention.ms."),
    TopicProp::new("max.compaction.lag.ms", &["log.cleaner.max.compaction.lag.ms"], MAX_LONG, Long,
        typed(|t, k, v| { t.max_compaction_lag_ms = parse_i64(k, v, 1)?; Ok(()) }, |t, _| t.max_compaction_lag_ms.to_string()),
        "Longest time a record stays ineligible for compaction."),
    TopicProp::new("max.message.bytes", &["message.max.bytes"], "1048588", Int,
        typed(|t, k, v| { t.max_message_bytes = set_i32(v, k, 0)?; Ok(()) }, |t, _| t.max_message_bytes.to_string()),
        "Largest record batch accepted."),
    TopicProp::new("message.downconversion.enable", &["log.message.downconversion.enable"], "true", Boolean, Check::Bool,
        "Down-conversion for old consumers (not applicable: only magic v2 is stored).")
        .broker_static(),
    TopicProp::new("message.format.version", &["log.message.format.version"], "3.0-IV1", Str, Check::Any,
        "Message format version (always v2).")
        .broker_static(),
    TopicProp::new("message.timestamp.after.max.ms", &["log.message.timestamp.after.max.ms"], "3600000", Long,
        typed(|t, k, v| { t.timestamp_after_max_ms = parse_i64(k, v, 0)?; Ok(()) }, |t, _| t.timestamp_after_max_ms.to_string()),
        "How far in the future a CreateTime timestamp may be."),
    TopicProp::new("message.timestamp.before.max.ms", &["log.message.timestamp.before.max.ms"], MAX_LONG, Long,
        typed(|t, k, v| { t.timestamp_before_max_ms = parse_i64(k, v, 0)?; Ok(()) }, |t, _| t.timestamp_before_max_ms.to_string()),
        "How far in the past a CreateTime timestamp may be."),
    TopicProp::new("message.timestamp.difference.max.ms", &["log.message.timestamp.difference.max.ms"], MAX_LONG, Long, Check::AtLeast(0),
        "Deprecated: see message.timestamp.before.max.ms and after.max.ms.")
        .broker_static(),
    TopicProp::new("message.timestamp.type", &["log.message.timestamp.type"], "CreateTime", Str,
        typed(|t, k, v| { t.timestamp_type = parse_timestamp_type(k, v)?; Ok(()) }, |t, _| t.timestamp_type.name().to_string()),
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's time."),
    TopicProp::new("min.cleanable.dirty.ratio", &["log.cleaner.min.cleanable.ratio"], "0.5", Double,
        typed(|t, k, v| match v.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => { t.min_cleanable_dirty_ratio = r; Ok(()) }
            _ => Err(ConfigError::invalid(k, v, "expected a number between 0 and 1")),
        }, |t, _| t.min_cleanable_dirty_ratio.to_string()),
        "Share of the log that must be uncleaned before compaction runs."),
    TopicProp::new("min.compaction.lag.ms", &["log.cleaner.min.compaction.lag.ms"], "0", Long,
        typed(|t, k, v| { t.min_compaction_lag_ms = parse_i64(k, v, 0)?; Ok(()) }, |t, _| t.min_compaction_lag_ms.to_string()),
        "Shortest time a record stays uncompacted."),
    TopicProp::new("min.insync.replicas", &["min.insync.replicas"], "1", Int,
        typed(|t, k, v| { t.min_insync_replicas = parse_i32(k, v, 1)?; Ok(()) }, |t, _| t.min_insync_replicas.to_string()),
        "The smallest ISR that may acknowledge an acks=all write."),
    TopicProp::new("preallocate", &["log.preallocate"], "false", Boolean, Check::Bool,
        "Preallocate segment files."),
    TopicProp::new("remote.log.copy.disable", &[], "false", Boolean,
        typed(|t, k, v| { t.remote_log_copy_disable = parse_bool(k, v)?; Ok(()) }, |t, _| t.remote_log_copy_disable.to_string()),
        "Stop copying segments to tiered storage; what is there stays readable."),
    TopicProp::new("remote.log.delete.on.disable", &[], "false", Boolean,
        typed(|t, k, v| { t.remote_log_delete_on_disable = parse_bool(k, v)?; Ok(()) }, |t, _| t.remote_log_delete_on_disable.to_string()),
        "Delete tiered segments when tiered storage is disabled."),
    TopicProp::new("remote.storage.enable", &[], "false", Boolean,
        typed(|t, k, v| { t.remote_storage_enable = parse_bool(k, v)?; Ok(()) }, |t, _| t.remote_storage_enable.to_string()),
        "Tiered storage for this topic: sealed segments are copied to the remote tier (needs remote.log.storage.system.enable)."),
    TopicProp::new("retention.bytes", &["log.retention.bytes"], "-1", Long,
        typed(|t, k, v| { t.retention_bytes = parse_i64(k, v, -1)?; Ok(()) }, |t, _| t.retention_bytes.to_string()),
        "Largest size of a partition before old segments are deleted; -1 for no limit."),
    TopicProp::new("retention.ms", &["log.retention.ms", "log.retention.minutes", "log.retention.hours"], "168", Long,
        typed(|t, k, v| { t.retention_ms = parse_i64(k, v, -1)?; Ok(()) }, |t, _| t.retention_ms.to_string()),
        "How long a segment is kept after its newest record; -1 forever."),
    TopicProp::new("segment.bytes", &["log.segment.bytes"], "1073741824", Int,
        typed(|t, k, v| { t.segment_bytes = parse_i64(k, v, 14)? as u64; Ok(()) }, |t, _| t.segment_bytes.to_string()),
        "Size at which a segment file is rolled."),
    TopicProp::new("segment.index.bytes", &["log.index.size.max.bytes"], "10485760", Int, Check::AtLeast(1),
        "Size of a segment's offset index (the index is in RocksDB here)."),
    TopicProp::new("segment.jitter.ms", &["log.roll.jitter.ms", "log.roll.jitter.hours"], "0", Long, Check::AtLeast(0),
        "Random jitter subtracted from segment.ms."),
    TopicProp::new("segment.ms", &["log.roll.ms", "log.roll.hours"], "168", Long,
        typed(|t, k, v| { t.segment_ms = parse_i64(k, v, 1)?; Ok(()) }, |t, _| t.segment_ms.to_string()),
        "Age at which a segment is rolled even if not full."),
    TopicProp::new("unclean.leader.election.enable", &["unclean.leader.election.enable"], "false", Boolean,
        typed(|t, k, v| { t.unclean_leader_election_enable = parse_bool(k, v)?; Ok(()) }, |t, _| t.unclean_leader_election_enable.to_string()),
        "Allow an out-of-sync replica to become leader, losing acknowledged writes."),
];

/// The declaration of a topic config.
pub(crate) fn topic_prop(name: &str) -> Option<&'static TopicProp> {
    TOPIC_PROPS.iter().find(|p| p.name == name)
}
