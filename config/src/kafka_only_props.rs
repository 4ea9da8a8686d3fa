//! The declarations of Kafka's broker properties that Sluice does not parse into its
//! configuration: topic defaults (checked with the topic config's rules and kept as
//! such), properties that mean nothing on one node (accepted and logged), and Kafka's
//! dynamic configs that Sluice stores and describes without acting on them. Dynamic ones
//! are from `DynamicBrokerConfig.AllDynamicConfigs` of Kafka 4.2 (listener, socket
//! server, log cleaner, thread pools, metric reporters, the producer state manager,
//! config providers); the remote-storage and coordinator ones are
//! not declared, so they pass as Kafka passes any name it has no definition for.

use crate::def::{BrokerProp, KafkaDefault, UnderListener};
use crate::describe::{ConfigType, MAX_LONG};
use crate::dynamic::DynamicMode::{self, ClusterWide, PerBroker};
use UnderListener::Required;

/// A property only Kafka's dynamic configs know.
const fn stored(
    name: &'static str,
    t: ConfigType,
    mode: DynamicMode,
    default: Option<&'static str>,
) -> BrokerProp {
    BrokerProp::stored(name, t, mode, default)
}

/// A property accepted without effect that Kafka also updates dynamically.
const fn ignored_dynamic(
    name: &'static str,
    t: ConfigType,
    mode: DynamicMode,
    default: &'static str,
) -> BrokerProp {
    BrokerProp::ignored(name)
        .of_type(t)
        .dynamic(mode)
        .kafka_default(KafkaDefault::Value(default))
}

/// Kafka's broker properties Sluice accepts or stores without parsing them.
#[rustfmt::skip]
pub(crate) static KAFKA_ONLY_PROPS: &[BrokerProp] = &[
    BrokerProp::topic_default("log.cleanup.policy", "cleanup.policy"),
    BrokerProp::topic_default("min.insync.replicas", "min.insync.replicas"),
    BrokerProp::topic_default("unclean.leader.election.enable", "unclean.leader.election.enable"),
    BrokerProp::topic_default("compression.type", "compression.type"),
    BrokerProp::topic_default("log.message.timestamp.type", "message.timestamp.type"),
    BrokerProp::topic_default("log.message.timestamp.before.max.ms", "message.timestamp.before.max.ms"),
    BrokerProp::topic_default("log.message.timestamp.after.max.ms", "message.timestamp.after.max.ms"),
    BrokerProp::topic_default("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    BrokerProp::topic_default("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
    BrokerProp::topic_default("log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms"),
    BrokerProp::topic_default("log.cleaner.min.cleanable.ratio", "min.cleanable.dirty.ratio"),
    BrokerProp::ignored("process.roles"),
    BrokerProp::ignored("controller.quorum.voters"),
    BrokerProp::ignored("controller.quorum.bootstrap.servers"),
    BrokerProp::ignored("controller.listener.names"),
    ignored_dynamic("num.network.threads", ConfigType::Int, ClusterWide, "3").under_listener(UnderListener::ClusterWide),
    ignored_dynamic("num.io.threads", ConfigType::Int, ClusterWide, "8"),
    BrokerProp::ignored("socket.send.buffer.bytes"),
    BrokerProp::ignored("socket.receive.buffer.bytes"),
    BrokerProp::ignored("share.coordinator.state.topic.replication.factor"),
    BrokerProp::ignored("share.coordinator.state.topic.min.isr"),
    BrokerProp::ignored("zookeeper.connect"),
    BrokerProp::ignored("zookeeper.connection.timeout.ms"),
    BrokerProp::ignored("log.flush.scheduler.interval.ms"),
    ignored_dynamic("log.cleaner.threads", ConfigType::Int, ClusterWide, "1"),
    ignored_dynamic("log.cleaner.io.buffer.size", ConfigType::Int, ClusterWide, "524288"),
    ignored_dynamic("log.cleaner.io.buffer.load.factor", ConfigType::Double, ClusterWide, "0.9"),
    ignored_dynamic("log.cleaner.io.max.bytes.per.second", ConfigType::Double, ClusterWide, "1.7976931348623157E308"),
    BrokerProp::ignored("log.segment.delete.delay.ms"),
    BrokerProp::ignored("log.message.timestamp.difference.max.ms"),
    BrokerProp::ignored("sasl.mechanism.controller.protocol"),
    stored("background.threads", ConfigType::Int, ClusterWide, Some("10")),
    stored("config.providers", ConfigType::List, ClusterWide, Some("")),
    stored("max.connection.creation.rate", ConfigType::Int, ClusterWide, Some("2147483647")).under_listener(UnderListener::ClusterWide),
    stored("metric.reporters", ConfigType::List, ClusterWide, Some("")),
    stored("num.replica.fetchers", ConfigType::Int, ClusterWide, Some("1")),
    stored("principal.builder.class", ConfigType::Class, PerBroker, Some("org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder")),
    stored("replica.alter.log.dirs.io.max.bytes.per.second", ConfigType::Long, ClusterWide, Some(MAX_LONG)),
    stored("sasl.jaas.config", ConfigType::Password, PerBroker, None),
    stored("sasl.kerberos.kinit.cmd", ConfigType::String, PerBroker, Some("/usr/bin/kinit")),
    stored("sasl.kerberos.min.time.before.relogin", ConfigType::Long, PerBroker, Some("60000")),
    stored("sasl.kerberos.principal.to.local.rules", ConfigType::List, PerBroker, Some("DEFAULT")),
    stored("sasl.kerberos.service.name", ConfigType::String, PerBroker, None),
    stored("sasl.kerberos.ticket.renew.jitter", ConfigType::Double, PerBroker, Some("0.05")),
    stored("sasl.kerberos.ticket.renew.window.factor", ConfigType::Double, PerBroker, Some("0.8")),
    stored("sasl.login.refresh.buffer.seconds", ConfigType::Short, PerBroker, Some("300")),
    stored("sasl.login.refresh.min.period.seconds", ConfigType::Short, PerBroker, Some("60")),
    stored("sasl.login.refresh.window.factor", ConfigType::Double, PerBroker, Some("0.8")),
    stored("sasl.login.refresh.window.jitter", ConfigType::Double, PerBroker, Some("0.05")),
    stored("ssl.engine.factory.class", ConfigType::Class, PerBroker, None),
    stored("ssl.keymanager.algorithm", ConfigType::String, PerBroker, Some("SunX509")),
    stored("ssl.keystore.certificate.chain", ConfigType::Password, PerBroker, None).under_listener(Required),
    stored("ssl.keystore.key", ConfigType::Password, PerBroker, None).under_listener(Required),
    stored("ssl.provider", ConfigType::String, PerBroker, None),
    stored("ssl.secure.random.implementation", ConfigType::String, PerBroker, None),
    stored("ssl.trustmanager.algorithm", ConfigType::String, PerBroker, Some("PKIX")),
    stored("ssl.truststore.certificates", ConfigType::Password, PerBroker, None).under_listener(Required),
    stored("transaction.partition.verification.enable", ConfigType::Boolean, ClusterWide, Some("true")),
];
