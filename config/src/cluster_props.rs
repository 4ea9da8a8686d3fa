//! The declarations of the replicated cluster's properties (`cluster.rs`): Sluice's own
//! `metadata.etcd.*` and Kafka's `broker.session.timeout.ms`, `broker.heartbeat.interval.ms`,
//! `broker.rack`.

use std::path::PathBuf;

use crate::cluster::{non_empty, parse_endpoints, parse_prefix};
use crate::def::{BrokerProp, KafkaDefault};
use crate::describe::ConfigType;
use crate::parse_i32;

fn path(b: &Option<PathBuf>) -> String {
    b.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// The replicated cluster's properties.
#[rustfmt::skip]
pub(crate) static CLUSTER_PROPS: &[BrokerProp] = &[
    BrokerProp::parsed("metadata.etcd.endpoints", "etcd client URLs holding the cluster's metadata, comma-separated; empty: a single node (Sluice's own).", |b| b.cluster.etcd_endpoints.join(","),
        |p, k, v| { p.cfg.cluster.etcd_endpoints = parse_endpoints(k, v)?; Ok(()) })
        .of_type(ConfigType::List),
    BrokerProp::parsed("metadata.etcd.prefix", "Key prefix of this cluster in etcd (Sluice's own).", |b| b.cluster.etcd_prefix.clone(),
        |p, k, v| { p.cfg.cluster.etcd_prefix = parse_prefix(k, v)?; Ok(()) })
        .of_type(ConfigType::String),
    BrokerProp::parsed("metadata.etcd.username", "etcd user, when etcd authenticates (Sluice's own).", |b| b.cluster.etcd_username.clone().unwrap_or_default(),
        |p, k, v| { p.cfg.cluster.etcd_username = Some(non_empty(k, v)?); Ok(()) })
        .of_type(ConfigType::String),
    BrokerProp::parsed("metadata.etcd.password", "The etcd user's password (Sluice's own).", |b| b.cluster.etcd_password.clone().unwrap_or_default(),
        |p, _, v| { p.cfg.cluster.etcd_password = Some(v.to_string()); Ok(()) })
        .of_type(ConfigType::Password),
    BrokerProp::parsed("metadata.etcd.ssl.ca.location", "PEM CA certificates that sign etcd's certificate; turns on TLS to etcd (Sluice's own).", |b| path(&b.cluster.etcd_ssl_ca_location),
        |p, k, v| { p.cfg.cluster.etcd_ssl_ca_location = Some(non_empty(k, v)?.into()); Ok(()) })
        .of_type(ConfigType::String),
    BrokerProp::parsed("metadata.etcd.ssl.certificate.location", "PEM client certificate chain for etcd (Sluice's own).", |b| path(&b.cluster.etcd_ssl_certificate_location),
        |p, k, v| { p.cfg.cluster.etcd_ssl_certificate_location = Some(non_empty(k, v)?.into()); Ok(()) })
        .of_type(ConfigType::String),
    BrokerProp::parsed("metadata.etcd.ssl.key.location", "PEM private key of the etcd client certificate (Sluice's own).", |b| path(&b.cluster.etcd_ssl_key_location),
        |p, k, v| { p.cfg.cluster.etcd_ssl_key_location = Some(non_empty(k, v)?.into()); Ok(()) })
        .of_type(ConfigType::String),
    BrokerProp::typed("broker.session.timeout.ms", ConfigType::Int, "A broker without a heartbeat this long leaves the cluster (its etcd lease TTL).",
        |p, k, v| { p.cfg.cluster.session_timeout_ms = parse_i32(k, v, 1)?; Ok(()) },
        |b| b.cluster.session_timeout_ms.to_string())
        .kafka_default(KafkaDefault::Value("9000")),
    BrokerProp::typed("broker.heartbeat.interval.ms", ConfigType::Int, "How often a broker keeps its registration alive.",
        |p, k, v| { p.cfg.cluster.heartbeat_interval_ms = parse_i32(k, v, 1)?; Ok(()) },
        |b| b.cluster.heartbeat_interval_ms.to_string())
        .kafka_default(KafkaDefault::Value("2000")),
    BrokerProp::parsed("broker.rack", "This broker's rack; replicas spread over racks when every broker has one.", |b| b.cluster.rack.clone().unwrap_or_default(),
        |p, k, v| { p.cfg.cluster.rack = Some(non_empty(k, v)?); Ok(()) })
        .of_type(ConfigType::String),
];
