//! The declarations of the replication properties (`replication.rs`).

use crate::def::{BrokerProp, KafkaDefault};
use crate::describe::ConfigType;
use crate::{parse_i32, parse_i64, ConfigError};

/// Kafka's replica selector that sends consumers to a replica in their rack.
const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";
/// Kafka's replica selector that keeps consumers on leaders.
const LEADER_SELECTOR: &str = "org.apache.kafka.common.replica.LeaderSelector";

/// Kafka's replication properties that a cluster member uses.
#[rustfmt::skip]
pub(crate) static REPLICATION_PROPS: &[BrokerProp] = &[
    BrokerProp::typed("replica.lag.time.max.ms", ConfigType::Long, "A follower not caught up with the leader for this long leaves the ISR.",
        |p, k, v| { p.cfg.replication.lag_time_max_ms = parse_i64(k, v, 1)?; Ok(()) },
        |b| b.replication.lag_time_max_ms.to_string())
        .kafka_default(KafkaDefault::Value("30000")),
    BrokerProp::typed("replica.fetch.wait.max.ms", ConfigType::Int, "Longest wait of a follower's fetch for new data.",
        |p, k, v| { p.cfg.replication.fetch_wait_max_ms = parse_i32(k, v, 0)?; Ok(()) },
        |b| b.replication.fetch_wait_max_ms.to_string())
        .kafka_default(KafkaDefault::Value("500")),
    BrokerProp::typed("replica.fetch.max.bytes", ConfigType::Int, "Bytes per partition a follower asks for in one fetch.",
        |p, k, v| { p.cfg.replication.fetch_max_bytes = parse_i32(k, v, 1)?; Ok(()) },
        |b| b.replication.fetch_max_bytes.to_string())
        .kafka_default(KafkaDefault::Value("1048576")),
    BrokerProp::typed("replica.fetch.response.max.bytes", ConfigType::Int, "Bytes a follower asks for in one fetch answer.",
        |p, k, v| { p.cfg.replication.fetch_response_max_bytes = parse_i32(k, v, 1)?; Ok(()) },
        |b| b.replication.fetch_response_max_bytes.to_string())
        .kafka_default(KafkaDefault::Value("10485760")),
    BrokerProp::typed("replica.fetch.backoff.ms", ConfigType::Int, "Pause of a follower after a failed fetch.",
        |p, k, v| { p.cfg.replication.fetch_backoff_ms = parse_i32(k, v, 0)?; Ok(()) },
        |b| b.replication.fetch_backoff_ms.to_string())
        .kafka_default(KafkaDefault::Value("1000")),
    BrokerProp::parsed("inter.broker.listener.name", "The listener brokers reach each other through (followers' fetches, transaction markers), with its TLS and SASL settings; unset: the first PLAINTEXT listener.",
        |b| b.replication.inter_broker_listener.clone().unwrap_or_default(),
        |p, k, v| {
            if v.trim().is_empty() {
                return Err(ConfigError::invalid(k, v, "expected a listener name"));
            }
            p.cfg.replication.inter_broker_listener = Some(v.trim().to_string());
            Ok(())
        })
        .of_type(ConfigType::String),
    BrokerProp::parsed("replica.selector.class", "org.apache.kafka.common.replica.RackAwareReplicaSelector: a consumer that gives its client.rack is sent to read from an in-sync replica in its rack (KIP-392); unset or LeaderSelector: consumers read from leaders.",
        |b| if b.replication.rack_aware_replica_selector { RACK_AWARE_SELECTOR.to_string() } else { String::new() },
        |p, k, v| {
            p.cfg.replication.rack_aware_replica_selector = match v.trim() {
                "" | LEADER_SELECTOR => false,
                RACK_AWARE_SELECTOR => true,
                other => return Err(ConfigError::invalid(k, other, format!("expected {RACK_AWARE_SELECTOR} or {LEADER_SELECTOR}"))),
            };
            Ok(())
        })
        .of_type(ConfigType::Class),
    BrokerProp::typed("sasl.mechanism.inter.broker.protocol", ConfigType::String, "The SASL mechanism brokers log in to each other with on a SASL inter-broker listener (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), with the username and password of that listener's JAAS configuration for the mechanism.",
        |p, _, v| { p.cfg.replication.inter_broker_sasl_mechanism = v.trim().to_ascii_uppercase(); Ok(()) },
        |b| b.replication.inter_broker_sasl_mechanism.clone())
        .kafka_default(KafkaDefault::Value("GSSAPI")),
];
