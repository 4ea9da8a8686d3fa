//! What DescribeConfigs reports: every topic config with the value in force, where that
//! value comes from (the topic's override, the broker's `server.properties`, or Kafka's
//! default), its synonyms in precedence order, its type and a line of documentation.

use std::collections::BTreeMap;

use crate::layers::BrokerLayers;
use crate::topic::TopicConfig;
use crate::topic_props::{TopicProp, TOPIC_PROPS};
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
    /// A config set on a group (8).
    Group,
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
            ConfigSource::Group => 8,
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

/// Kafka's `Long.MAX_VALUE`, the default of several configs.
pub(crate) const MAX_LONG: &str = "9223372036854775807";

/// The broker property that supplies a topic config's default, its value in force and
/// Sluice enforces it (the broker's typed value) or the one given.
fn broker_value(
    broker: &BrokerConfig,
    merged: &BTreeMap<String, String>,
    defaults: &TopicConfig,
    def: &TopicProp,
) -> String {
    let set = def.synonyms.iter().find(|s| merged.contains_key(**s));
    // Values Sluice parses come from the typed configuration, so the report is what is
    // enforced; the others are passed through as given, or Kafka's default.
    let typed = def.value.map(|value| value(defaults, broker));
    typed
        .or_else(|| set.and_then(|s| merged.get(*s).cloned()))
        .unwrap_or_else(|| def.default.to_string())
}

/// The type of a topic config; `None` for a name Kafka does not have.
pub fn topic_config_type(name: &str) -> Option<ConfigType> {
    TOPIC_PROPS
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.config_type)
}

/// The topic-default broker properties Kafka updates dynamically (the first broker
/// synonym of each topic config), their type and Kafka's default (`None` when null:
/// `log.retention.ms` defers to `log.retention.hours`).
pub(crate) fn topic_default_properties(
) -> impl Iterator<Item = (&'static str, ConfigType, Option<&'static str>)> {
    TOPIC_PROPS
        .iter()
        .filter(|d| d.broker_dynamic)
        .filter_map(|d| {
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
    TOPIC_PROPS
        .iter()
        .flat_map(|d| d.synonyms.iter().copied())
        .filter(|s| !s.ends_with(".throttled.replicas"))
}

/// Kafka's type of a topic-default broker name.
pub(crate) fn topic_default_type(name: &str) -> Option<ConfigType> {
    TOPIC_PROPS
        .iter()
        .find(|d| d.synonyms.contains(&name))
        .map(|d| d.config_type)
}

/// Kafka's default of a topic-default broker name: on the last synonym of its topic
/// config (`log.retention.hours`, not `.ms`).
pub(crate) fn kafka_topic_default(name: &str) -> Option<&'static str> {
    TOPIC_PROPS
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
    TOPIC_PROPS
        .iter()
        // Confluent Server's schema validation configs are listed only where they can
        // act: with the built-in Schema Registry on (or set on the topic anyway).
        .filter(|def| {
            !def.name.starts_with("confluent.")
                || !broker.schema_registry.listeners.is_empty()
                || overrides.contains_key(def.name)
        })
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
        let names = |b: &BrokerConfig| -> Vec<String> {
            describe_topic_configs(b, &BrokerLayers::from_static(b), &BTreeMap::new())
                .into_iter()
                .map(|c| c.name)
                .collect()
        };
        let with_registry =
            BrokerConfig::from_properties([("schema.registry.listeners", "http://127.0.0.1:8081")])
                .unwrap();
        assert_eq!(
            names(&with_registry),
            crate::topic_config_names().collect::<Vec<_>>()
        );
        // Without the registry, Kafka's 36 and none of Confluent Server's.
        let kafka = names(&BrokerConfig::default());
        assert_eq!(kafka.len(), 36);
        assert!(kafka.iter().all(|n| !n.starts_with("confluent.")));
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
