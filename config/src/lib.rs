//! Broker and topic configuration for Sluice, named as Apache Kafka names it.
//!
//! One typed source of truth: properties come from a `server.properties`-style file and
//! `--override key=value` pairs; every key is checked here, and an unknown or malformed one
//! is an error that names it.

mod broker;
mod broker_props;
mod cluster;
mod cluster_props;
mod coordinator_props;
mod def;
mod describe;
mod describe_broker;
mod dynamic;
mod inter_broker;
mod kafka_only_props;
mod layers;
mod listener;
mod reference;
mod registry_props;
mod remote_props;
mod remote_storage;
mod replication;
mod replication_props;
mod sasl;
mod schema_registry;
mod security_props;
mod shares;
mod tls;
mod topic;
mod topic_props;

pub use broker::CleanerConfig;
pub use broker::{
    AuthorizerConfig, BrokerConfig, FlushPolicy, GroupConfig, ReplicationThrottle, TxnConfig,
};
pub use cluster::ClusterConfig;
pub use describe::{
    describe_topic_configs, topic_config_type, ConfigSource, ConfigSynonym, ConfigType,
    DescribedConfig,
};
pub use describe_broker::describe_broker_configs;
pub use dynamic::{
    dynamic_def, is_static_broker_property, validate_dynamic_configs, DynamicDef, DynamicMode,
};
pub use inter_broker::{InterBrokerClient, PeerLogin, PeerTls};
pub use layers::BrokerLayers;
pub use listener::{Listener, SecurityProtocol};
pub use reference::property_reference;
pub use remote_storage::RemoteStorageConfig;
pub use replication::ReplicationConfig;
pub use sasl::{parse_plain_users, OAuthBearerConfig, SaslConfig, SaslMechanism};
pub use schema_registry::{
    RegistryAuthentication, RegistryListener, SchemaRegistryConfig, REGISTRY_LISTENER_NAME,
};
pub use shares::ShareConfig;
pub use tls::{ClientAuth, TlsConfig, TlsVersion};
pub use topic::{
    topic_config_names, validate_topic_change, validate_topic_config, validate_topic_overrides,
    CleanupPolicy, CompressionType, SubjectNameStrategy, TimestampType, TopicConfig,
};

/// A configuration error that names the offending property.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The key is not a property Sluice knows.
    #[error("unknown property `{0}`")]
    Unknown(String),
    /// The value does not parse or is out of range.
    #[error("invalid value `{value}` for property `{key}`: {reason}")]
    Invalid {
        /// The property name.
        key: String,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A line of a properties file is not `key=value`.
    #[error("line {line}: expected `key=value`, found `{text}`")]
    Syntax {
        /// One-based line number.
        line: usize,
        /// The offending text.
        text: String,
    },
}

impl From<sluice_protocol::properties::PropertiesError> for ConfigError {
    fn from(e: sluice_protocol::properties::PropertiesError) -> Self {
        ConfigError::Syntax {
            line: e.line,
            text: e.text,
        }
    }
}

/// Parses a `server.properties`-style file (`java.util.Properties` format); later keys
/// replace earlier ones, as in Java.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    Ok(sluice_protocol::properties::parse_properties(text)?)
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

pub(crate) fn parse_i64(key: &str, value: &str, min: i64) -> Result<i64, ConfigError> {
    let v: i64 = value
        .trim()
        .parse()
        .map_err(|_| ConfigError::invalid(key, value, "expected an integer"))?;
    if v < min {
        return Err(ConfigError::invalid(
            key,
            value,
            format!("must be at least {min}"),
        ));
    }
    Ok(v)
}

pub(crate) fn parse_i32(key: &str, v: &str, min: i64) -> Result<i32, ConfigError> {
    parse_i64(key, v, min)?
        .try_into()
        .map_err(|_| ConfigError::invalid(key, v, "too large"))
}

pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::invalid(key, value, "expected true or false")),
    }
}
