//! How a broker property is declared, as Kafka's `ConfigDef` declares it: once, with its
//! name, Kafka's type and default, whether it is dynamic, a line of documentation, and
//! what Sluice does with it. Start-up parsing, DescribeConfigs, the dynamic-config checks
//! and the README's table are all read from the declarations (`broker_props`).

use std::collections::BTreeMap;

use crate::describe::ConfigType;
use crate::dynamic::DynamicMode;
use crate::{BrokerConfig, ConfigError};

/// Sets a parsed property on the configuration being built; the error names the key.
pub(crate) type Setter = fn(&mut Parsing, &str, &str) -> Result<(), ConfigError>;
/// The value in force of a property, as DescribeConfigs shows it.
pub(crate) type Getter = fn(&BrokerConfig) -> String;

/// A broker configuration being built from properties, with what some properties need
/// to resolve only once all are read (unit precedence, the protocol map).
#[derive(Default)]
pub(crate) struct Parsing {
    /// The configuration so far.
    pub(crate) cfg: BrokerConfig,
    /// `advertised.listeners` was given (otherwise it follows `listeners`).
    pub(crate) advertised_set: bool,
    /// `listener.security.protocol.map`, once given.
    pub(crate) protocol_map: Option<BTreeMap<String, String>>,
    /// `log.retention.ms`, `.minutes`, `.hours`: Kafka gives the finest unit precedence.
    pub(crate) retention: [Option<i64>; 3],
    /// `log.roll.ms`, `log.roll.hours`.
    pub(crate) roll: [Option<i64>; 2],
}

/// Kafka's default of a property, as DescribeConfigs reports its DEFAULT_CONFIG synonym.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KafkaDefault {
    /// A value.
    Value(&'static str),
    /// Null: a coarser unit of the same setting has the default.
    Null,
    /// Sluice's own default (the value in force of `BrokerConfig::default()`).
    Sluice,
    /// The default of the topic config this property is the broker default of.
    Topic,
}

/// What Sluice does with a property.
#[derive(Clone, Copy)]
pub(crate) enum Role {
    /// Parsed into the typed configuration.
    Parsed {
        /// Parses and sets the value.
        set: Setter,
        /// The value in force.
        value: Getter,
        /// DescribeConfigs lists it even when unset (the others only when set).
        listed: bool,
    },
    /// The broker default of a topic config: checked with that config's rules.
    TopicDefault {
        /// The topic config's name.
        topic: &'static str,
    },
    /// Read by a listener's TLS or SASL settings.
    Security,
    /// Accepted at start-up without effect on one node, and logged.
    Ignored,
    /// Kafka's dynamic config: stored and described when altered; unknown at start-up.
    StoredOnly,
}

/// What a property is under a `listener.name.<listener>.` prefix, for Kafka's dynamic
/// configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnderListener {
    /// Per broker, as Kafka's listener configs are.
    PerBroker,
    /// Cluster-wide still (Kafka's cluster-level listener configs: `max.connections`, ...).
    ClusterWide,
    /// Dynamic only under a prefix (Kafka's `SslConfigs.RECONFIGURABLE_CONFIGS`).
    Required,
}

/// One broker property.
#[derive(Clone, Copy)]
pub(crate) struct BrokerProp {
    /// Kafka's name.
    pub(crate) name: &'static str,
    /// Kafka's type; `None` where DescribeConfigs knows none (or the topic config's type).
    pub(crate) config_type: Option<ConfigType>,
    /// Kafka's default.
    pub(crate) default: KafkaDefault,
    /// Where AlterConfigs may change it at run time; `None` is read-only.
    pub(crate) dynamic: Option<DynamicMode>,
    /// One line of documentation.
    pub(crate) doc: &'static str,
    /// What Sluice does with it.
    pub(crate) role: Role,
    /// Kafka's `brokerConfigSynonyms` beyond a topic config's units, highest precedence
    /// first; empty when none.
    pub(crate) synonyms: &'static [&'static str],
    /// What it is under a listener prefix.
    pub(crate) under_listener: UnderListener,
}

impl BrokerProp {
    /// A property Sluice parses and DescribeConfigs lists with its value in force.
    pub(crate) const fn typed(
        name: &'static str,
        config_type: ConfigType,
        doc: &'static str,
        set: Setter,
        value: Getter,
    ) -> Self {
        BrokerProp {
            name,
            config_type: Some(config_type),
            default: KafkaDefault::Sluice,
            dynamic: None,
            doc,
            role: Role::Parsed {
                set,
                value,
                listed: true,
            },
            synonyms: &[],
            under_listener: UnderListener::PerBroker,
        }
    }

    /// A property Sluice parses that DescribeConfigs lists only when set.
    pub(crate) const fn parsed(
        name: &'static str,
        doc: &'static str,
        value: Getter,
        set: Setter,
    ) -> Self {
        BrokerProp {
            name,
            config_type: None,
            default: KafkaDefault::Sluice,
            dynamic: None,
            doc,
            role: Role::Parsed {
                set,
                value,
                listed: false,
            },
            synonyms: &[],
            under_listener: UnderListener::PerBroker,
        }
    }

    /// Kafka's dynamic config that Sluice only stores.
    pub(crate) const fn stored(
        name: &'static str,
        config_type: ConfigType,
        dynamic: DynamicMode,
        default: Option<&'static str>,
    ) -> Self {
        BrokerProp {
            name,
            config_type: Some(config_type),
            default: match default {
                Some(v) => KafkaDefault::Value(v),
                None => KafkaDefault::Null,
            },
            dynamic: Some(dynamic),
            doc: STORED_ONLY_DOC,
            role: Role::StoredOnly,
            synonyms: &[],
            under_listener: UnderListener::PerBroker,
        }
    }

    /// Kafka's property that means nothing on one node: accepted and logged.
    pub(crate) const fn ignored(name: &'static str) -> Self {
        BrokerProp {
            name,
            config_type: None,
            default: KafkaDefault::Sluice,
            dynamic: None,
            doc: STATIC_ONLY_DOC,
            role: Role::Ignored,
            synonyms: &[],
            under_listener: UnderListener::PerBroker,
        }
    }

    /// The broker default of a topic config, checked with its rules.
    pub(crate) const fn topic_default(name: &'static str, topic: &'static str) -> Self {
        BrokerProp {
            name,
            config_type: None,
            default: KafkaDefault::Topic,
            dynamic: None,
            doc: TOPIC_DEFAULT_DOC,
            role: Role::TopicDefault { topic },
            synonyms: &[],
            under_listener: UnderListener::PerBroker,
        }
    }

    /// The same property, dynamic in `mode`.
    pub(crate) const fn dynamic(mut self, mode: DynamicMode) -> Self {
        self.dynamic = Some(mode);
        self
    }

    /// The same property with Kafka's default.
    pub(crate) const fn kafka_default(mut self, default: KafkaDefault) -> Self {
        self.default = default;
        self
    }

    /// The same property with Kafka's broker synonyms (itself included).
    pub(crate) const fn synonyms(mut self, synonyms: &'static [&'static str]) -> Self {
        self.synonyms = synonyms;
        self
    }

    /// The same property, with what it is under a listener prefix.
    pub(crate) const fn under_listener(mut self, scope: UnderListener) -> Self {
        self.under_listener = scope;
        self
    }

    /// The same property with a type known to Kafka's DescribeConfigs.
    pub(crate) const fn of_type(mut self, config_type: ConfigType) -> Self {
        self.config_type = Some(config_type);
        self
    }

    /// The value in force, for a property DescribeConfigs lists with it.
    pub(crate) fn value(&self) -> Option<Getter> {
        match self.role {
            Role::Parsed {
                value,
                listed: true,
                ..
            } => Some(value),
            _ => None,
        }
    }

    /// The value in force, for any property Sluice parses.
    pub(crate) fn value_in_force(&self) -> Option<Getter> {
        match self.role {
            Role::Parsed { value, .. } => Some(value),
            _ => None,
        }
    }
}

/// Documentation of configs Sluice keeps without acting on them.
pub(crate) const STORED_ONLY_DOC: &str =
    "Kafka's dynamic broker config: stored and described; Sluice does not act on it.";
/// Documentation of configs accepted at start-up without effect.
pub(crate) const STATIC_ONLY_DOC: &str = "Accepted at start-up; Sluice does not act on it.";
/// Documentation of the broker default of a topic config.
pub(crate) const TOPIC_DEFAULT_DOC: &str = "Default of the topic config it is a synonym of.";

/// Every declared broker property.
pub(crate) fn broker_props() -> impl Iterator<Item = &'static BrokerProp> {
    crate::broker_props::BROKER_PROPS
        .iter()
        .chain(crate::coordinator_props::COORDINATOR_PROPS)
        .chain(crate::security_props::SECURITY_PROPS)
        .chain(crate::cluster_props::CLUSTER_PROPS)
        .chain(crate::replication_props::REPLICATION_PROPS)
        .chain(crate::remote_props::REMOTE_PROPS)
        .chain(crate::registry_props::REGISTRY_PROPS)
        .chain(crate::kafka_only_props::KAFKA_ONLY_PROPS)
}

/// The declaration of a broker property.
pub(crate) fn broker_prop(name: &str) -> Option<&'static BrokerProp> {
    broker_props().find(|p| p.name == name)
}
