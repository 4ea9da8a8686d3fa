//! The built-in Schema Registry's settings: Confluent's registry names under a
//! `schema.registry.` prefix (`listeners`, `kafkastore.topic`, `authentication.method`).

use std::collections::BTreeMap;

use crate::tls::TlsConfig;
use crate::ConfigError;

/// One listener of the registry's REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryListener {
    /// `host:port` to bind.
    pub address: String,
    /// For `https://`: the broker's `ssl.*` settings, or `listener.name.registry.ssl.*`.
    pub tls: Option<TlsConfig>,
}

/// How the registry's clients prove who they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RegistryAuthentication {
    /// Anyone may call.
    #[default]
    None,
    /// HTTP basic auth, checked against the broker's SASL/SCRAM users.
    Basic,
}

/// The built-in Schema Registry; off unless `schema.registry.listeners` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRegistryConfig {
    /// `schema.registry.listeners`: where the REST API is served; empty is off.
    pub listeners: Vec<RegistryListener>,
    /// `schema.registry.kafkastore.topic`: the compacted topic the registry lives in.
    pub topic: String,
    /// `schema.registry.authentication.method`: `NONE` or `BASIC`.
    pub authentication: RegistryAuthentication,
    /// `schema.registry.max.request.bytes`: the largest request body accepted.
    pub max_request_bytes: usize,
}

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        SchemaRegistryConfig {
            listeners: Vec::new(),
            topic: "_schemas".into(),
            authentication: RegistryAuthentication::None,
            max_request_bytes: 16 << 20,
        }
    }
}

/// The listener name whose `listener.name.<name>.ssl.*` settings an https registry
/// listener reads before the broker's `ssl.*`.
pub const REGISTRY_LISTENER_NAME: &str = "registry";

/// Reads `schema.registry.listeners`: a comma-separated list of `http://host:port` and
/// `https://host:port`. Without `props` (while the properties are still being read) an
/// https listener's TLS settings are left for the second reading.
pub(crate) fn parse_listeners(
    key: &str,
    value: &str,
    props: Option<&BTreeMap<String, String>>,
) -> Result<Vec<RegistryListener>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (tls, address) = if let Some(a) = item.strip_prefix("https://") {
            (true, a)
        } else if let Some(a) = item.strip_prefix("http://") {
            (false, a)
        } else {
            return Err(ConfigError::invalid(
                key,
                value,
                format!("`{item}` must start with http:// or https://"),
            ));
        };
        let address = address.trim_end_matches('/');
        let port_ok = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(ConfigError::invalid(
                key,
                value,
                format!("`{item}` needs a host and a port"),
            ));
        }
        let tls = match (tls, props) {
            (true, Some(props)) => Some(crate::tls::tls_config(REGISTRY_LISTENER_NAME, props)?),
            _ => None,
        };
        out.push(RegistryListener {
            address: address.to_string(),
            tls,
        });
    }
    Ok(out)
}

/// Reads `schema.registry.authentication.method`.
pub(crate) fn parse_authentication(
    key: &str,
    value: &str,
) -> Result<RegistryAuthentication, ConfigError> {
    match value.to_ascii_uppercase().as_str() {
        "NONE" => Ok(RegistryAuthentication::None),
        "BASIC" => Ok(RegistryAuthentication::Basic),
        _ => Err(ConfigError::invalid(key, value, "expected NONE or BASIC")),
    }
}

#[cfg(test)]
mod tests {
    use crate::{BrokerConfig, ConfigError, RegistryAuthentication};

    #[test]
    fn listeners_and_authentication_are_read_and_bad_values_named() {
        let cfg = BrokerConfig::from_properties([
            ("schema.registry.listeners", "http://127.0.0.1:8081"),
            ("schema.registry.authentication.method", "basic"),
        ])
        .unwrap();
        assert_eq!(cfg.schema_registry.listeners.len(), 1);
        assert_eq!(cfg.schema_registry.listeners[0].address, "127.0.0.1:8081");
        assert_eq!(cfg.schema_registry.listeners[0].tls, None);
        assert_eq!(
            cfg.schema_registry.authentication,
            RegistryAuthentication::Basic
        );
        for (key, value) in [
            ("schema.registry.listeners", "127.0.0.1:8081"),
            ("schema.registry.listeners", "http://127.0.0.1"),
            ("schema.registry.listeners", "https://127.0.0.1:8081"),
            ("schema.registry.authentication.method", "DIGEST"),
            ("schema.registry.kafkastore.topic", ""),
        ] {
            match BrokerConfig::from_properties([(key, value)]) {
                Err(ConfigError::Invalid { key: named, .. }) => {
                    assert!(named == key || named == "ssl.keystore.location", "{named}")
                }
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_https_listener_takes_its_own_ssl_settings_before_the_brokers() {
        let cfg = BrokerConfig::from_properties([
            ("schema.registry.listeners", "https://127.0.0.1:8081"),
            ("ssl.keystore.location", "/etc/broker.pem"),
            (
                "listener.name.registry.ssl.keystore.location",
                "/etc/registry.pem",
            ),
        ])
        .unwrap();
        let tls = cfg.schema_registry.listeners[0].tls.clone().unwrap();
        assert_eq!(
            tls.keystore_location,
            std::path::PathBuf::from("/etc/registry.pem")
        );
        let cfg = BrokerConfig::from_properties([
            ("schema.registry.listeners", "https://127.0.0.1:8081"),
            ("ssl.keystore.location", "/etc/broker.pem"),
        ])
        .unwrap();
        let tls = cfg.schema_registry.listeners[0].tls.clone().unwrap();
        assert_eq!(
            tls.keystore_location,
            std::path::PathBuf::from("/etc/broker.pem")
        );
    }

    #[test]
    fn a_cluster_member_refuses_the_registry_naming_the_setting() {
        let refused = BrokerConfig::from_properties([
            ("metadata.etcd.endpoints", "http://127.0.0.1:2379"),
            ("schema.registry.listeners", "http://127.0.0.1:8081"),
        ]);
        match refused {
            Err(ConfigError::Invalid { key, reason, .. }) => {
                assert_eq!(key, "schema.registry.listeners");
                assert!(reason.contains("single node"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
