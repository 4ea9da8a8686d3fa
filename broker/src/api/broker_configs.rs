//! BROKER resources of DescribeConfigs, AlterConfigs and IncrementalAlterConfigs: dynamic
//! broker configs (KIP-226) for this node id or the cluster default (the empty name),
//! checked as Kafka's `ConfigAdminManager` and `DynamicBrokerConfig` check them, with
//! their messages, then stored and put in force.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use sluice_config::{
    dynamic_def, is_static_broker_property, validate_dynamic_configs, BrokerLayers, ConfigError,
    ConfigType,
};

use super::configs::{Refusal, OP_APPEND, OP_DELETE, OP_SET, OP_SUBTRACT};
use crate::broker::Broker;

/// One operation on a broker config; legacy AlterConfigs sends SETs of every value.
pub(crate) struct BrokerOp {
    pub(crate) name: String,
    pub(crate) op: i8,
    pub(crate) value: Option<String>,
}

fn invalid_request(msg: String) -> Refusal {
    (ResponseError::InvalidRequest, msg)
}

/// Kafka's `validateResourceNameIsCurrentNodeId`.
fn check_node_id(broker: &Broker, name: &str) -> Result<(), Refusal> {
    let id: i32 = name
        .parse()
        .map_err(|_| invalid_request(format!("Node id must be an integer, but it is: {name}")))?;
    if id != broker.node_id() {
        return Err(invalid_request(format!(
            "Unexpected broker id, expected {}, but received {name}",
            broker.node_id()
        )));
    }
    Ok(())
}

/// Which broker resource DescribeConfigs asks for: `Ok(true)` for this node id (every
/// config), `Ok(false)` for the cluster default.
pub(crate) fn describe_target(broker: &Broker, name: &str) -> Result<bool, Refusal> {
    if name.is_empty() {
        return Ok(false);
    }
    let id: i32 = name
        .parse()
        .map_err(|_| invalid_request(format!("Broker id must be an integer, but it is: {name}")))?;
    if id != broker.node_id() {
        return Err(invalid_request(format!(
            "Unexpected broker id, expected {} or empty string, but received {name}",
            broker.node_id()
        )));
    }
    Ok(true)
}

/// Kafka's `prepareIncrementalConfigs` on the stored configs of the resource.
fn apply(props: &mut BTreeMap<String, String>, op: &BrokerOp) -> Result<(), Refusal> {
    let invalid_config = |msg: String| Err((ResponseError::InvalidConfig, msg));
    let is_list = || dynamic_def(&op.name).map(|d| d.config_type == ConfigType::List);
    let value = op.value.clone().unwrap_or_default();
    match op.op {
        OP_SET => {
            props.insert(op.name.clone(), value);
        }
        OP_DELETE => {
            props.remove(&op.name);
        }
        OP_APPEND | OP_SUBTRACT => {
            let verb = if op.op == OP_APPEND {
                "append"
            } else {
                "subtract"
            };
            match is_list() {
                None => return invalid_config(format!("Unknown config name: {}", op.name)),
                Some(false) => {
                    return invalid_config(format!(
                        "Config value {verb} is not allowed for config key: {}",
                        op.name
                    ))
                }
                Some(true) => {}
            }
            let old: Vec<String> = props
                .get(&op.name)
                .cloned()
                .or_else(|| dynamic_def(&op.name).and_then(|d| d.default.map(String::from)))
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            let given: Vec<&str> = value.split(',').collect();
            let new: Vec<String> = if op.op == OP_APPEND {
                let mut items = old.clone();
                items.extend(
                    given
                        .iter()
                        .filter(|g| !old.iter().any(|o| o == *g))
                        .map(|g| g.to_string()),
                );
                items
            } else {
                old.into_iter()
                    .filter(|o| !given.contains(&o.as_str()))
                    .collect()
            };
            props.insert(op.name.clone(), new.join(","));
        }
        other => return Err(invalid_request(format!("Unknown operations type {other}"))),
    }
    Ok(())
}

/// Changes the dynamic configs of a BROKER resource: `legacy` (AlterConfigs) replaces all
/// of them, otherwise the operations apply to what is stored. Nothing changes when
/// `validate_only` or when any check fails. In a cluster, new cluster-wide defaults are
/// returned for the caller to write to the cluster metadata, which every broker follows.
pub(crate) fn alter(
    broker: &Broker,
    name: &str,
    legacy: bool,
    ops: Vec<BrokerOp>,
    validate_only: bool,
) -> Result<Option<BTreeMap<String, String>>, Refusal> {
    let nulls: Vec<&str> = ops
        .iter()
        .filter(|o| o.value.is_none() && (legacy || o.op != OP_DELETE))
        .map(|o| o.name.as_str())
        .collect();
    // Kafka's order: legacy AlterConfigs checks the node id (it takes no cluster default)
    // before the nulls; the incremental form, the nulls before a non-empty node id.
    if legacy {
        check_node_id(broker, name)?;
    }
    if !nulls.is_empty() {
        return Err(invalid_request(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    if !legacy && !name.is_empty() {
        check_node_id(broker, name)?;
    }
    let per_broker = !name.is_empty();
    let mut layers: BrokerLayers = broker.storage.broker_layers();
    let stored = if per_broker {
        &mut layers.per_broker
    } else {
        &mut layers.cluster_default
    };
    let mut props = if legacy {
        BTreeMap::new()
    } else {
        stored.clone()
    };
    for op in &ops {
        apply(&mut props, op)?;
    }
    validate_dynamic_configs(&props, per_broker, &is_static_broker_property)
        .map_err(invalid_request)?;
    *stored = props.clone();
    // Sluice's own checks of the values it enforces (ranges, listener syntax).
    if let Err(e) = layers.effective() {
        return Err(invalid_request(match e {
            ConfigError::Invalid { key, value, reason } => {
                format!("Invalid value {value} for configuration {key}: {reason}")
            }
            other => other.to_string(),
        }));
    }
    if validate_only {
        return Ok(None);
    }
    if !per_broker && broker.cluster.is_some() {
        return Ok(Some(props));
    }
    let entity = if per_broker { name } else { "" };
    broker
        .storage
        .set_dynamic_broker_configs(entity, props)
        .map(|()| None)
        .map_err(|e| {
            tracing::error!(entity, error = %e, "storing dynamic broker configs failed");
            (ResponseError::KafkaStorageError, e.to_string())
        })
}
