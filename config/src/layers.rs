//! The KIP-226 layers of broker properties (this broker's dynamic configs, the cluster
//! default's, `server.properties`) and how they combine into the configuration in force.

use std::collections::BTreeMap;

use crate::def::broker_prop;
use crate::topic_props::TOPIC_PROPS;
use crate::{BrokerConfig, ConfigError};

/// `listener.name.{listener}.{config}` → `config`.
pub(crate) fn listener_base(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("listener.name.")?;
    let (listener, base) = rest.split_once('.')?;
    (!listener.is_empty()).then_some(base)
}

/// Kafka's `brokerConfigSynonyms`: the names that set the same broker config, in
/// precedence order: a property's declared synonyms, the units of a topic config's
/// default (`log.retention.ms`, `.minutes`, `.hours`), or the base of a listener-prefixed
/// name.
pub(crate) fn broker_synonyms(name: &str) -> Vec<&str> {
    if let Some(p) = broker_prop(name).filter(|p| !p.synonyms.is_empty()) {
        return p.synonyms.to_vec();
    }
    if let Some(t) = TOPIC_PROPS
        .iter()
        .find(|t| t.synonyms.len() > 1 && t.synonyms.contains(&name))
    {
        return t.synonyms.to_vec();
    }
    if let Some(base) = listener_base(name) {
        return vec![name, base];
    }
    vec![name]
}

/// The broker's properties by where they are set, KIP-226's layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerLayers {
    /// `server.properties` and `--override` values, as given at start-up.
    pub static_props: BTreeMap<String, String>,
    /// Dynamic configs of the cluster default (the empty resource name).
    pub cluster_default: BTreeMap<String, String>,
    /// Dynamic configs of this node id.
    pub per_broker: BTreeMap<String, String>,
}

impl BrokerLayers {
    /// Layers with only the static properties of `config`.
    pub fn from_static(config: &BrokerConfig) -> Self {
        BrokerLayers {
            static_props: config.set_properties.clone(),
            ..Default::default()
        }
    }

    /// The properties in force: static, then the cluster default, then this broker's,
    /// each removing the synonyms of what it sets (Kafka's `overrideProps`: a dynamic
    /// `log.retention.hours` beats a static `log.retention.ms`).
    pub fn merged(&self) -> BTreeMap<String, String> {
        let mut props = self.static_props.clone();
        for layer in [&self.cluster_default, &self.per_broker] {
            for (k, v) in layer {
                for s in broker_synonyms(k) {
                    props.remove(s);
                }
                props.insert(k.clone(), v.clone());
            }
        }
        props
    }

    /// The typed configuration in force. Dynamic configs Sluice stores without
    /// implementing are left out of it (its parser does not know them).
    pub fn effective(&self) -> Result<BrokerConfig, ConfigError> {
        let mut props = self.merged();
        loop {
            let attempt =
                BrokerConfig::from_properties(props.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            match attempt {
                Err(ConfigError::Unknown(k))
                    if !self.static_props.contains_key(&k) && props.remove(&k).is_some() => {}
                other => {
                    return other.map(|mut c| {
                        // What was given at start-up, as before.
                        c.set_properties = self.static_props.clone();
                        c
                    });
                }
            }
        }
    }
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
    fn layers_override_with_synonyms_removed() {
        let layers = BrokerLayers {
            static_props: props(&[("log.retention.ms", "1000"), ("log.dirs", "/tmp/x")]),
            cluster_default: props(&[("log.retention.hours", "2"), ("log.segment.bytes", "4096")]),
            per_broker: props(&[("log.segment.bytes", "8192")]),
        };
        let merged = layers.merged();
        assert_eq!(merged.get("log.retention.ms"), None);
        assert_eq!(
            merged.get("log.segment.bytes").map(String::as_str),
            Some("8192")
        );
        let c = layers.effective().expect("effective");
        assert_eq!(c.log_retention_ms, 7_200_000);
        assert_eq!(c.log_segment_bytes, 8192);
        assert_eq!(c.set_properties, layers.static_props);
    }
}
