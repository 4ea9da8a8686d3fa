//! Dynamic broker configs (KIP-226): which broker configs Kafka lets AlterConfigs and
//! IncrementalAlterConfigs change at run time, per broker or as the cluster-wide default,
//! how a change is validated (Kafka's `DynamicBrokerConfig.validateConfigs`, with its
//! messages), and how the three layers (per-broker, cluster default, `server.properties`)
//! combine into the configuration in force.

use std::collections::BTreeMap;

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

/// Kafka's dynamic broker configs other than the topic defaults (`DynamicLogConfig`, taken
/// from the topic config table): name, type, mode and Kafka's default (`None` for a null
/// default). From `DynamicBrokerConfig.AllDynamicConfigs` of Kafka 4.2:
/// `DynamicListenerConfig`, `SocketServer`, `LogCleaner`, `DynamicThreadPool`, metric
/// reporters, the producer state manager, broker replication quotas and config providers.
/// The remote-storage and coordinator ones are not listed: Sluice does not know those
/// names, so they pass as Kafka passes any name it has no definition for (stored as
/// strings).
#[rustfmt::skip]
const DYNAMIC_CONFIGS: &[(&str, ConfigType, DynamicMode, Option<&str>)] = &[
    ("advertised.listeners", ConfigType::String, PerBroker, None),
    ("background.threads", ConfigType::Int, ClusterWide, Some("10")),
    ("config.providers", ConfigType::List, ClusterWide, Some("")),
    ("follower.replication.throttled.rate", ConfigType::Long, ClusterWide, Some("9223372036854775807")),
    ("leader.replication.throttled.rate", ConfigType::Long, ClusterWide, Some("9223372036854775807")),
    ("listener.security.protocol.map", ConfigType::String, PerBroker, Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT")),
    ("listeners", ConfigType::String, PerBroker, Some("PLAINTEXT://:9092")),
    ("log.cleaner.backoff.ms", ConfigType::Long, ClusterWide, Some("15000")),
    ("log.cleaner.dedupe.buffer.size", ConfigType::Long, ClusterWide, Some("134217728")),
    ("log.cleaner.io.buffer.load.factor", ConfigType::Double, ClusterWide, Some("0.9")),
    ("log.cleaner.io.buffer.size", ConfigType::Int, ClusterWide, Some("524288")),
    ("log.cleaner.io.max.bytes.per.second", ConfigType::Double, ClusterWide, Some("1.7976931348623157E308")),
    ("log.cleaner.threads", ConfigType::Int, ClusterWide, Some("1")),
    ("max.connection.creation.rate", ConfigType::Int, ClusterWide, Some("2147483647")),
    ("max.connections", ConfigType::Int, ClusterWide, Some("2147483647")),
    ("max.connections.per.ip", ConfigType::Int, ClusterWide, Some("2147483647")),
    ("max.connections.per.ip.overrides", ConfigType::String, ClusterWide, Some("")),
    ("metric.reporters", ConfigType::List, ClusterWide, Some("")),
    ("num.io.threads", ConfigType::Int, ClusterWide, Some("8")),
    ("num.network.threads", ConfigType::Int, ClusterWide, Some("3")),
    ("num.recovery.threads.per.data.dir", ConfigType::Int, ClusterWide, Some("2")),
    ("num.replica.fetchers", ConfigType::Int, ClusterWide, Some("1")),
    ("principal.builder.class", ConfigType::Class, PerBroker, Some("org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder")),
    ("producer.id.expiration.ms", ConfigType::Int, ClusterWide, Some("86400000")),
    ("replica.alter.log.dirs.io.max.bytes.per.second", ConfigType::Long, ClusterWide, Some("9223372036854775807")),
    ("sasl.enabled.mechanisms", ConfigType::List, PerBroker, Some("GSSAPI")),
    ("sasl.jaas.config", ConfigType::Password, PerBroker, None),
    ("sasl.kerberos.kinit.cmd", ConfigType::String, PerBroker, Some("/usr/bin/kinit")),
    ("sasl.kerberos.min.time.before.relogin", ConfigType::Long, PerBroker, Some("60000")),
    ("sasl.kerberos.principal.to.local.rules", ConfigType::List, PerBroker, Some("DEFAULT")),
    ("sasl.kerberos.service.name", ConfigType::String, PerBroker, None),
    ("sasl.kerberos.ticket.renew.jitter", ConfigType::Double, PerBroker, Some("0.05")),
    ("sasl.kerberos.ticket.renew.window.factor", ConfigType::Double, PerBroker, Some("0.8")),
    ("sasl.login.refresh.buffer.seconds", ConfigType::Short, PerBroker, Some("300")),
    ("sasl.login.refresh.min.period.seconds", ConfigType::Short, PerBroker, Some("60")),
    ("sasl.login.refresh.window.factor", ConfigType::Double, PerBroker, Some("0.8")),
    ("sasl.login.refresh.window.jitter", ConfigType::Double, PerBroker, Some("0.05")),
    ("sasl.mechanism.inter.broker.protocol", ConfigType::String, PerBroker, Some("GSSAPI")),
    ("ssl.cipher.suites", ConfigType::List, PerBroker, Some("")),
    ("ssl.client.auth", ConfigType::String, PerBroker, Some("none")),
    ("ssl.enabled.protocols", ConfigType::List, PerBroker, Some("TLSv1.2,TLSv1.3")),
    ("ssl.endpoint.identification.algorithm", ConfigType::String, PerBroker, Some("https")),
    ("ssl.engine.factory.class", ConfigType::Class, PerBroker, None),
    ("ssl.key.password", ConfigType::Password, PerBroker, None),
    ("ssl.keymanager.algorithm", ConfigType::String, PerBroker, Some("SunX509")),
    ("ssl.keystore.certificate.chain", ConfigType::Password, PerBroker, None),
    ("ssl.keystore.key", ConfigType::Password, PerBroker, None),
    ("ssl.keystore.location", ConfigType::String, PerBroker, None),
    ("ssl.keystore.password", ConfigType::Password, PerBroker, None),
    ("ssl.keystore.type", ConfigType::String, PerBroker, Some("JKS")),
    ("ssl.protocol", ConfigType::String, PerBroker, Some("TLSv1.3")),
    ("ssl.provider", ConfigType::String, PerBroker, None),
    ("ssl.secure.random.implementation", ConfigType::String, PerBroker, None),
    ("ssl.trustmanager.algorithm", ConfigType::String, PerBroker, Some("PKIX")),
    ("ssl.truststore.certificates", ConfigType::Password, PerBroker, None),
    ("ssl.truststore.location", ConfigType::String, PerBroker, None),
    ("ssl.truststore.password", ConfigType::Password, PerBroker, None),
    ("ssl.truststore.type", ConfigType::String, PerBroker, Some("JKS")),
    ("transaction.partition.verification.enable", ConfigType::Boolean, ClusterWide, Some("true")),
];

/// The names of Kafka's dynamic broker configs other than the topic defaults.
pub(crate) fn dynamic_names() -> impl Iterator<Item = &'static str> {
    DYNAMIC_CONFIGS.iter().map(|(n, ..)| *n)
}

/// Listener configs that are cluster-wide even though listener configs are per broker.
const CLUSTER_LEVEL_LISTENER_CONFIGS: &[&str] = &[
    "max.connections",
    "max.connection.creation.rate",
    "num.network.threads",
];

/// Kafka's `SslConfigs.RECONFIGURABLE_CONFIGS`: dynamic only with a listener prefix.
const SECURITY_CONFIGS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.certificates",
];

/// The Kafka topic-default names that are not dynamic in Kafka 4 (removed or
/// hours/minutes variants, which only the first synonym of a topic config is).
const NOT_DYNAMIC_LOG_CONFIGS: &[&str] = &[
    "log.message.format.version",
    "log.message.downconversion.enable",
    "log.message.timestamp.difference.max.ms",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
];

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
    if let Some((_, config_type, mode, default)) = DYNAMIC_CONFIGS.iter().find(|(n, ..)| *n == name)
    {
        return Some(DynamicDef {
            config_type: *config_type,
            mode: *mode,
            default: *default,
        });
    }
    if NOT_DYNAMIC_LOG_CONFIGS.contains(&name) {
        return None;
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
        let mode = if CLUSTER_LEVEL_LISTENER_CONFIGS.contains(&base) {
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
        .filter(|k| SECURITY_CONFIGS.contains(k))
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
