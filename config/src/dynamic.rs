//! Dynamic broker configs (KIP-226): which broker configs Kafka lets AlterConfigs and
//! IncrementalAlterConfigs change at run time, per broker or as the cluster-wide default,
//! how a change is validated (Kafka's `DynamicBrokerConfig.validateConfigs`, with its
//! messages), and how the three layers (per-broker, cluster default, `server.properties`)
//! combine into the configuration in force.

use std::collections::BTreeMap;

use crate::def::{broker_prop, broker_props, KafkaDefault, UnderListener};
use crate::describe::{topic_default_properties, ConfigType};
use crate::layers::listener_base;
use crate::{BrokerConfig, ConfigError};

/// Where Kafka allows a dynamic broker config to be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicMode {
    /// Only on a node id resource (Kafka's `PerBrokerConfigs`).
    PerBroker,
    /// On a node id or the cluster default (the empty resource name).
    ClusterWide,
}

use DynamicMode::{ClusterWide, PerBroker};

/// The names of Kafka's dynamic broker configs other than the topic defaults.
pub(crate) fn dynamic_names() -> impl Iterator<Item = &'static str> {
    broker_props()
        .filter(|p| p.dynamic.is_some())
        .map(|p| p.name)
}

/// One dynamic broker config: type, mode and Kafka's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicDef {
    /// Kafka's type of the value.
    pub config_type: ConfigType,
    /// Where it may be set.
    pub mode: DynamicMode,
    /// Kafka's default, `None` when null.
    pub default: Option<&'static str>,
}

/// The dynamic definition of a broker config name, without listener prefixes.
fn base_def(name: &str) -> Option<DynamicDef> {
    if let Some(p) = broker_prop(name) {
        if let (Some(mode), Some(config_type)) = (p.dynamic, p.config_type) {
            return Some(DynamicDef {
                config_type,
                mode,
                default: match p.default {
                    KafkaDefault::Value(v) => Some(v),
                    _ => None,
                },
            });
        }
    }
    topic_default_properties()
        .find(|(n, ..)| *n == name)
        .map(|(_, config_type, default)| DynamicDef {
            config_type,
            mode: ClusterWide,
            default,
        })
}

/// Whether Kafka updates this broker config at run time, and where; a listener-prefixed
/// name (`listener.name.x.ssl.keystore.location`) is per broker unless its base config
/// is one of the cluster-level listener configs.
pub fn dynamic_def(name: &str) -> Option<DynamicDef> {
    if let Some(base) = listener_base(name) {
        let cluster_level =
            broker_prop(base).is_some_and(|p| p.under_listener == UnderListener::ClusterWide);
        let mode = if cluster_level {
            ClusterWide
        } else {
            PerBroker
        };
        // SASL mechanism configs (`listener.name.x.plain.sasl.jaas.config`) keep their
        // type; anything else unknown under a listener prefix is a string.
        let config_type = base_def(base)
            .or_else(|| {
                base.split_once('.')
                    .and_then(|(_, b)| base_def(b))
                    .filter(|d| d.config_type == ConfigType::Password)
            })
            .map_or(ConfigType::String, |d| d.config_type);
        return Some(DynamicDef {
            config_type,
            mode,
            default: None,
        });
    }
    base_def(name)
}

/// Kafka's type of a broker config name where the tables here know it: a dynamic
/// config, or one under a listener prefix whose base is known (`sasl.jaas.config` after
/// a mechanism included). `None` otherwise.
pub(crate) fn known_dynamic_type(name: &str) -> Option<ConfigType> {
    match listener_base(name) {
        Some(base) => base_def(base)
            .or_else(|| {
                base.split_once('.')
                    .and_then(|(_, b)| base_def(b))
                    .filter(|d| d.config_type == ConfigType::Password)
            })
            .map(|d| d.config_type),
        None => base_def(name).map(|d| d.config_type),
    }
}

/// True when `name` is a broker config Kafka knows (and so may refuse as not dynamic).
/// Sluice's own parser decides: it accepts every Kafka name it implements or ignores.
fn is_known_broker_config(name: &str, known_static: &dyn Fn(&str) -> bool) -> bool {
    dynamic_def(name).is_some() || known_static(name)
}

/// Scala's `Set(a, b)` rendering, which Kafka's messages carry.
fn scala_set(names: &[&str]) -> String {
    format!("Set({})", names.join(", "))
}

/// Checks one value against Kafka's type, with `ConfigDef.parseType`'s message.
pub(crate) fn check_type(name: &str, value: &str, config_type: ConfigType) -> Result<(), String> {
    let v = value.trim();
    let problem = match config_type {
        ConfigType::Boolean => (!v.eq_ignore_ascii_case("true")
            && !v.eq_ignore_ascii_case("false"))
        .then_some("Expected value to be either true or false"),
        ConfigType::Int => v
            .parse::<i32>()
            .is_err()
            .then_some("Not a number of type INT"),
        ConfigType::Short => v
            .parse::<i16>()
            .is_err()
            .then_some("Not a number of type SHORT"),
        ConfigType::Long => v
            .parse::<i64>()
            .is_err()
            .then_some("Not a number of type LONG"),
        ConfigType::Double => v
            .parse::<f64>()
            .is_err()
            .then_some("Not a number of type DOUBLE"),
        ConfigType::String
        | ConfigType::List
        | ConfigType::Class
        | ConfigType::Password
        | ConfigType::Unknown => None,
    };
    match problem {
        Some(p) => Err(format!(
            "Invalid value {value} for configuration {name}: {p}"
        )),
        None => Ok(()),
    }
}

/// Kafka's `DynamicBrokerConfig.validateConfigs` over the whole set of dynamic configs a
/// resource would have: non-dynamic names, security configs without a listener prefix,
/// value types, then per-broker configs at the cluster default. `Err` is Kafka's message
/// (answered as INVALID_REQUEST).
pub fn validate_dynamic_configs(
    props: &BTreeMap<String, String>,
    per_broker: bool,
    known_static: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    let non_dynamic: Vec<&str> = props
        .keys()
        .map(String::as_str)
        .filter(|k| dynamic_def(k).is_none() && is_known_broker_config(k, known_static))
        .collect();
    if !non_dynamic.is_empty() {
        return Err(format!(
            "Cannot update these configs dynamically: {}",
            scala_set(&non_dynamic)
        ));
    }
    let bare_security: Vec<&str> = props
        .keys()
        .map(String::as_str)
        .filter(|k| broker_prop(k).is_some_and(|p| p.under_listener == UnderListener::Required))
        .collect();
    if !bare_security.is_empty() {
        return Err(format!(
            "These security configs can be dynamically updated only per-listener using the listener prefix: {}",
            scala_set(&bare_security)
        ));
    }
    for (k, v) in props {
        if let Some(d) = dynamic_def(k) {
            check_type(k, v, d.config_type)?;
        }
    }
    if !per_broker {
        let only_per_broker: Vec<&str> = props
            .keys()
            .map(String::as_str)
            .filter(|k| dynamic_def(k).is_some_and(|d| d.mode == PerBroker))
            .collect();
        if !only_per_broker.is_empty() {
            return Err(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {}",
                scala_set(&only_per_broker)
            ));
        }
    }
    Ok(())
}

/// True when Sluice's parser knows `name` as a broker property (implemented or accepted
/// without effect), judged by whether it refuses it as unknown.
pub fn is_static_broker_property(name: &str) -> bool {
    !matches!(
        BrokerConfig::from_properties([(name, "")]),
        Err(ConfigError::Unknown(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafkas_checks_in_kafkas_order() {
        let v = |p: &[(&str, &str)], per_broker| {
            validate_dynamic_configs(&props(p), per_broker, &is_static_broker_property)
        };
        assert_eq!(
            v(&[("log.dirs", "/x")], true),
            Err("Cannot update these configs dynamically: Set(log.dirs)".into())
        );
        assert_eq!(
            v(&[("log.retention.hours", "1")], false),
            Err("Cannot update these configs dynamically: Set(log.retention.hours)".into())
        );
        assert_eq!(
            v(&[("ssl.keystore.location", "/k")], true),
            Err("These security configs can be dynamically updated only per-listener using the listener prefix: Set(ssl.keystore.location)".into())
        );
        assert_eq!(
            v(&[("log.retention.ms", "soon")], false),
            Err(
                "Invalid value soon for configuration log.retention.ms: Not a number of type LONG"
                    .into()
            )
        );
        assert_eq!(
            v(&[("sasl.kerberos.min.time.before.relogin", "1000")], false),
            Err("Cannot update these configs at default cluster level, broker id must be specified: Set(sasl.kerberos.min.time.before.relogin)".into())
        );
        assert_eq!(
            v(&[("sasl.kerberos.min.time.before.relogin", "1000")], true),
            Ok(())
        );
        assert_eq!(
            v(&[("listener.name.sasl.ssl.keystore.location", "/k")], true),
            Ok(())
        );
        assert_eq!(
            v(
                &[("log.retention.ms", "1000"), ("max.connections", "9")],
                false
            ),
            Ok(())
        );
        // Not a Kafka config at all: Kafka stores it as a custom config.
        assert_eq!(v(&[("custom.thing", "x")], false), Ok(()));
    }
}
