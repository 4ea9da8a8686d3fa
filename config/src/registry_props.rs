//! The declarations of the built-in Schema Registry's properties (`schema_registry.rs`).

use crate::cluster::non_empty;
use crate::def::BrokerProp;
use crate::describe::ConfigType;
use crate::parse_i64;
use crate::schema_registry::{parse_authentication, parse_listeners};

/// Schema Registry properties.
#[rustfmt::skip]
pub(crate) static REGISTRY_PROPS: &[BrokerProp] = &[
    BrokerProp::parsed("schema.registry.listeners",
        "Comma-separated http:// or https:// URLs the built-in Schema Registry serves its REST API on; unset is off (Confluent's listeners).",
        |b| b.schema_registry.listeners.iter()
            .map(|l| format!("{}://{}", if l.tls.is_some() { "https" } else { "http" }, l.address))
            .collect::<Vec<_>>().join(","),
        |p, k, v| { p.cfg.schema_registry.listeners = parse_listeners(k, v, None)?; Ok(()) })
        .of_type(ConfigType::List),
    BrokerProp::typed("schema.registry.kafkastore.topic", ConfigType::String,
        "The compacted topic the Schema Registry keeps its schemas in (Confluent's kafkastore.topic).",
        |p, k, v| { p.cfg.schema_registry.topic = non_empty(k, v)?; Ok(()) },
        |b| b.schema_registry.topic.clone()),
    BrokerProp::typed("schema.registry.authentication.method", ConfigType::String,
        "NONE, or BASIC: HTTP basic auth against the broker's SASL/SCRAM users (Confluent's authentication.method).",
        |p, k, v| { p.cfg.schema_registry.authentication = parse_authentication(k, v)?; Ok(()) },
        |b| format!("{:?}", b.schema_registry.authentication).to_ascii_uppercase()),
    BrokerProp::typed("schema.registry.max.request.bytes", ConfigType::Int,
        "The largest request body the Schema Registry reads; larger ones get 413 (Sluice's own).",
        |p, k, v| { p.cfg.schema_registry.max_request_bytes = parse_i64(k, v, 1)? as usize; Ok(()) },
        |b| b.schema_registry.max_request_bytes.to_string()),
];
