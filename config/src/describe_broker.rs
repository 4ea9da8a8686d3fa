//! What DescribeConfigs reports for a BROKER resource, as Kafka's `ConfigHelper` builds it:
//! for a node id every broker config with the value in force and its synonyms across the
//! KIP-226 layers (this broker's dynamic configs, the cluster default's, the static
//! properties, Kafka's defaults); for the empty name only the cluster-wide dynamic
//! configs.

use std::collections::BTreeSet;

use crate::def::{
    broker_prop, broker_props, BrokerProp, KafkaDefault, Role, STATIC_ONLY_DOC, STORED_ONLY_DOC,
    TOPIC_DEFAULT_DOC,
};
use crate::describe::{
    kafka_topic_default, layered_synonyms, topic_default_names, topic_default_type, ConfigSource,
    ConfigType, DescribedConfig,
};
use crate::dynamic::{dynamic_def, dynamic_names, known_dynamic_type};
use crate::layers::{broker_synonyms, BrokerLayers};
use crate::BrokerConfig;

/// True for a property whose default is null: its value is null unless set.
fn null_default(name: &str) -> bool {
    broker_prop(name).is_some_and(|p| p.default == KafkaDefault::Null)
}

/// Kafka's default of a broker config as DescribeConfigs shows it; `None` when null or
/// unknown here.
pub(crate) fn kafka_default(name: &str) -> Option<String> {
    if null_default(name) {
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
    broker_prop(name)
        .and_then(BrokerProp::value)
        .map(|value| value(&BrokerConfig::default()))
}

/// DescribeConfigs of a BROKER resource: `per_broker` for this node id (every config),
/// otherwise the cluster default (only what is set there). `broker` is the configuration
/// in force. Sorted by name.
pub fn describe_broker_configs(
    broker: &BrokerConfig,
    layers: &BrokerLayers,
    per_broker: bool,
) -> Vec<DescribedConfig> {
    let merged = layers.merged();
    let names: BTreeSet<String> = if per_broker {
        broker_props()
            .filter(|p| p.value().is_some())
            .map(|p| p.name.to_string())
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
            let prop = broker_prop(&name);
            // The properties DescribeConfigs lists with their value in force.
            let setting = prop.and_then(|p| Some((p, p.value()?)));
            let def = dynamic_def(&name);
            // Kafka's maybeSensitive: a password, or a name whose type is not known (a
            // custom or mechanism-prefixed property may hold a secret), is never sent.
            let config_type = known_dynamic_type(&name)
                .or(setting.and_then(|(p, _)| p.config_type))
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
            } else if null_default(&name) {
                None
            } else if let Some((_, value)) = setting {
                // What Sluice enforces (listeners with their resolved form, log.dirs).
                Some(value(broker))
            } else {
                kafka_default(&name)
            };
            let doc = match prop {
                // What Sluice reads says what it does with it.
                Some(p) if matches!(p.role, Role::Parsed { .. } | Role::Security) => p.doc,
                _ if topic_default_type(&name).is_some() => TOPIC_DEFAULT_DOC,
                _ if def.is_some() => STORED_ONLY_DOC,
                _ => STATIC_ONLY_DOC,
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
