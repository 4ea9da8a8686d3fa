//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topic and broker
//! resources. Topic overrides are stored in the catalog and in force at once; broker
//! configs Kafka marks dynamic (KIP-226) are stored per broker or as the cluster default
//! (see `broker_configs`), the rest are static (read-only until a restart).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_config::{
    describe_broker_configs, describe_topic_configs, topic_config_type, validate_topic_change,
    validate_topic_config, validate_topic_overrides, ConfigType, DescribedConfig,
};

use super::broker_configs::{self, BrokerOp};
use super::group_configs;

use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::NONE;
use crate::session::Session;

answer!(DescribeConfigsResponse: [results => error_code]);
answer!(AlterConfigsResponse: [responses => error_code]);
answer!(IncrementalAlterConfigsResponse: [responses => error_code]);

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Kafka's `ConfigResource.Type.GROUP`.
const RESOURCE_GROUP: i8 = 32;

pub(super) const OP_SET: i8 = 0;
pub(super) const OP_DELETE: i8 = 1;
pub(super) const OP_APPEND: i8 = 2;
pub(super) const OP_SUBTRACT: i8 = 3;

/// Why a resource's configs cannot be described or changed: an error code and a message
/// that names the problem.
pub(super) type Refusal = (ResponseError, String);

fn described(
    configs: Vec<DescribedConfig>,
    keys: Option<&[StrBytes]>,
    synonyms: bool,
    documentation: bool,
    version: i16,
) -> Vec<DescribeConfigsResourceResult> {
    configs
        .into_iter()
        .filter(|c| keys.is_none_or(|k| k.iter().any(|k| k.as_str() == c.name.as_str())))
        .map(|c| {
            let mut r = DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_string(c.name))
                .with_value(c.value.map(StrBytes::from_string))
                .with_read_only(c.read_only)
                .with_config_source(c.source.code())
                .with_is_sensitive(c.sensitive);
            if synonyms {
                r.synonyms = c
                    .synonyms
                    .into_iter()
                    .map(|s| {
                        DescribeConfigsSynonym::default()
                            .with_name(StrBytes::from_string(s.name))
                            .with_value(s.value.map(StrBytes::from_string))
                            .with_source(s.source.code())
                    })
                    .collect();
            }
            if version >= 3 {
                r.config_type = c.config_type.code();
                // Null unless asked for, as Kafka answers.
                r.documentation = documentation.then(|| StrBytes::from_static_str(c.doc));
            }
            r
        })
        .collect()
}

/// Whether the client may do a config operation (DescribeConfigs or AlterConfigs on the
/// topic, or on the cluster for broker configs); the refusal when not.
fn config_allowed(
    broker: &Broker,
    session: &Session,
    resource_type: i8,
    name: &str,
    op: Operation,
) -> Result<(), (ResponseError, String)> {
    match resource_type {
        RESOURCE_TOPIC if !session.may(broker, op, Resource::Topic, name) => Err((
            ResponseError::TopicAuthorizationFailed,
            format!("not authorized to {op:?} topic {name}"),
        )),
        RESOURCE_BROKER if !session.may_cluster(broker, op) => Err((
            ResponseError::ClusterAuthorizationFailed,
            format!("not authorized to {op:?} the cluster"),
        )),
        RESOURCE_GROUP if !session.may(broker, op, Resource::Group, name) => Err((
            ResponseError::GroupAuthorizationFailed,
            format!("not authorized to {op:?} group {name}"),
        )),
        _ => Ok(()),
    }
}

/// DescribeConfigs.
pub(crate) async fn describe_configs(
    broker: &Broker,
    session: &Session,
    req: DescribeConfigsRequest,
    version: i16,
) -> Reply<DescribeConfigsResponse> {
    let mut res = DescribeConfigsResponse::default();
    for r in req.resources {
        let mut out = DescribeConfigsResult::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        let configs = config_allowed(
            broker,
            session,
            r.resource_type,
            &r.resource_name,
            Operation::DescribeConfigs,
        )
        .and_then(|()| match r.resource_type {
            // In a cluster, from its metadata: this broker may host no replica of the topic.
            RESOURCE_TOPIC => match topic_overrides(broker, &r.resource_name) {
                Some(overrides) => Ok(describe_topic_configs(
                    &broker.storage.effective_config(),
                    &broker.storage.broker_layers(),
                    &overrides,
                )),
                None => Err((
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic {} does not exist", r.resource_name.as_str()),
                )),
            },
            RESOURCE_GROUP => Ok(super::group_configs::describe(broker, &r.resource_name)),
            RESOURCE_BROKER => {
                broker_configs::describe_target(broker, &r.resource_name).map(|per_broker| {
                    describe_broker_configs(
                        &broker.storage.effective_config(),
                        &broker.storage.broker_layers(),
                        per_broker,
                    )
                })
            }
            other => Err((
                ResponseError::InvalidRequest,
                format!("resource type {other} has no configs on this broker"),
            )),
        });
        match configs {
            Ok(c) => {
                out.error_code = NONE;
                out.error_message = None;
                out.configs = described(
                    c,
                    r.configuration_keys.as_deref(),
                    req.include_synonyms,
                    req.include_documentation,
                    version,
                );
            }
            Err((e, msg)) => {
                out.error_code = e.code();
                out.error_message = Some(StrBytes::from_string(msg));
            }
        }
        res.results.push(out);
    }
    Reply::new(res)
}

/// The new overrides of a topic, each checked; `Err` names the first bad entry.
fn validated(broker: &Broker, configs: &BTreeMap<String, String>) -> Result<(), Refusal> {
    let invalid = |e: sluice_config::ConfigError| (ResponseError::InvalidConfig, e.to_string());
    for (k, v) in configs {
        validate_topic_config(k, v).map_err(invalid)?;
    }
    validate_topic_overrides(&broker.storage.effective_config(), configs).map_err(invalid)
}

/// What a cluster member must still write to the cluster metadata (every broker then
/// applies it from its view): a topic's new overrides, or new default broker configs.
enum Pending {
    TopicConfigs(String, BTreeMap<String, String>),
    BrokerDefaults(BTreeMap<String, String>),
    /// A group's new configs (on a single node too: the group configs write them).
    GroupConfigs(String, BTreeMap<String, String>),
}

type ClusterWrite = Option<Pending>;

/// Applies new overrides to a topic, or only checks them when `validate_only`. In a
/// cluster the overrides come from, and go to, the cluster metadata: they are returned
/// for the caller to write.
fn alter_topic(
    broker: &Broker,
    name: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), Refusal>,
    validate_only: bool,
) -> Result<ClusterWrite, Refusal> {
    let unknown = || {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("topic {name} does not exist"),
        )
    };
    let mut configs = topic_overrides(broker, name).ok_or_else(unknown)?;
    let before = configs.clone();
    change(&mut configs)?;
    validated(broker, &configs)?;
    validate_topic_change(&broker.storage.effective_config(), &before, &configs)
        .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
    if broker.cluster.is_some() {
        return Ok((!validate_only).then(|| Pending::TopicConfigs(name.to_string(), configs)));
    }
    if validate_only {
        return Ok(None);
    }
    broker
        .storage
        .alter_topic_config(name, configs)
        .map(|_| None)
        .map_err(|e| {
            tracing::error!(topic = name, error = %e, "storing topic configs failed");
            (ResponseError::KafkaStorageError, e.to_string())
        })
}

/// A topic's config overrides: from the cluster metadata in a cluster, else from storage.
fn topic_overrides(broker: &Broker, name: &str) -> Option<BTreeMap<String, String>> {
    match &broker.cluster {
        Some(node) => node.topic_configs(name),
        None => broker.storage.topic(name).map(|t| t.record.configs.clone()),
    }
}

/// Writes topic overrides a cluster member changed to the cluster metadata and waits
/// until this broker's view has them.
async fn write_to_cluster(
    broker: &Broker,
    outcome: Result<ClusterWrite, Refusal>,
) -> Result<(), Refusal> {
    match (outcome?, &broker.cluster) {
        (Some(Pending::TopicConfigs(name, configs)), Some(node)) => {
            node.set_topic_configs(&name, configs).await
        }
        (Some(Pending::BrokerDefaults(configs)), Some(node)) => {
            node.set_broker_defaults(configs).await
        }
        (Some(Pending::GroupConfigs(group, configs)), _) => broker
            .group_configs
            .set(&group, configs)
            .await
            .map_err(|e| {
                let code = e.code();
                let error =
                    ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError);
                (error, e.to_string())
            }),
        _ => Ok(()),
    }
}

/// The error code and message a resource's outcome is answered with.
fn answer(outcome: Result<(), Refusal>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (NONE, None),
        Err((e, msg)) => (e.code(), Some(StrBytes::from_string(msg))),
    }
}

fn other_resource_refusal(resource_type: i8) -> Refusal {
    (
        ResponseError::InvalidRequest,
        format!("resource type {resource_type} has no configs on this broker"),
    )
}

/// AlterConfigs: the given configs replace every override of the resource.
pub(crate) async fn alter_configs(
    broker: &Broker,
    session: &Session,
    req: AlterConfigsRequest,
    _version: i16,
) -> Reply<AlterConfigsResponse> {
    let mut res = AlterConfigsResponse::default();
    for r in req.resources {
        let outcome = config_allowed(
            broker,
            session,
            r.resource_type,
            &r.resource_name,
            Operation::AlterConfigs,
        )
        .and_then(|()| match r.resource_type {
            RESOURCE_TOPIC => {
                let mut wanted = BTreeMap::new();
                let mut null = None;
                for c in &r.configs {
                    match &c.value {
                        Some(v) => {
                            wanted.insert(c.name.to_string(), v.to_string());
                        }
                        None => null = Some(c.name.to_string()),
                    }
                }
                match null {
                    Some(k) => Err((
                        ResponseError::InvalidRequest,
                        format!("null value not supported for {k}"),
                    )),
                    None => alter_topic(
                        broker,
                        &r.resource_name,
                        |configs| {
                            *configs = wanted;
                            Ok(())
                        },
                        req.validate_only,
                    ),
                }
            }
            RESOURCE_BROKER => broker_configs::alter(
                broker,
                &r.resource_name,
                true,
                r.configs
                    .iter()
                    .map(|c| BrokerOp {
                        name: c.name.to_string(),
                        op: OP_SET,
                        value: c.value.as_ref().map(|v| v.to_string()),
                    })
                    .collect(),
                req.validate_only,
            )
            .map(|defaults| defaults.map(Pending::BrokerDefaults)),
            RESOURCE_GROUP => group_configs::altered(
                broker,
                &r.resource_name,
                r.configs
                    .iter()
                    .map(|c| group_configs::GroupOp {
                        name: c.name.to_string(),
                        op: OP_SET,
                        value: c.value.as_ref().map(|v| v.to_string()),
                    })
                    .collect(),
                true,
            )
            .map(|c| {
                (!req.validate_only).then(|| Pending::GroupConfigs(r.resource_name.to_string(), c))
            }),
            other => Err(other_resource_refusal(other)),
        });
        let outcome = write_to_cluster(broker, outcome).await;
        let (error_code, error_message) = answer(outcome);
        res.responses.push(
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(error_code)
                .with_error_message(error_message),
        );
    }
    Reply::new(res)
}

/// One IncrementalAlterConfigs operation on a topic's overrides.
fn apply_op(
    configs: &mut BTreeMap<String, String>,
    broker: &Broker,
    name: &str,
    op: i8,
    value: Option<&str>,
) -> Result<(), Refusal> {
    let invalid = |msg: String| Err((ResponseError::InvalidConfig, msg));
    let Some(is_list) = topic_config_type(name).map(|t| t == ConfigType::List) else {
        return invalid(format!("unknown topic config {name}"));
    };
    match op {
        OP_SET => match value {
            Some(v) => {
                configs.insert(name.to_string(), v.to_string());
                Ok(())
            }
            None => invalid(format!("SET of {name} needs a value")),
        },
        OP_DELETE => {
            configs.remove(name);
            Ok(())
        }
        OP_APPEND | OP_SUBTRACT if !is_list => invalid(format!(
            "{} is allowed only for list configs, and {name} is not a list",
            if op == OP_APPEND {
                "APPEND"
            } else {
                "SUBTRACT"
            }
        )),
        OP_APPEND | OP_SUBTRACT => {
            let current = match configs.get(name) {
                Some(v) => v.clone(),
                None => describe_topic_configs(
                    &broker.storage.effective_config(),
                    &broker.storage.broker_layers(),
                    configs,
                )
                .into_iter()
                .find(|c| c.name == name)
                .and_then(|c| c.value)
                .unwrap_or_default(),
            };
            let mut items: Vec<String> = current
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            let given = value
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty());
            if op == OP_APPEND {
                for g in given {
                    if !items.iter().any(|i| i == g) {
                        items.push(g.to_string());
                    }
                }
            } else {
                let remove: Vec<&str> = given.collect();
                items.retain(|i| !remove.contains(&i.as_str()));
            }
            configs.insert(name.to_string(), items.join(","));
            Ok(())
        }
        other => Err((
            ResponseError::InvalidRequest,
            format!("unknown config operation {other} for {name}"),
        )),
    }
}

/// IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on individual configs; a
/// resource is changed only if every operation on it is valid.
pub(crate) async fn incremental_alter_configs(
    broker: &Broker,
    session: &Session,
    req: IncrementalAlterConfigsRequest,
    _version: i16,
) -> Reply<IncrementalAlterConfigsResponse> {
    let mut res = IncrementalAlterConfigsResponse::default();
    for r in req.resources {
        let outcome = config_allowed(
            broker,
            session,
            r.resource_type,
            &r.resource_name,
            Operation::AlterConfigs,
        )
        .and_then(|()| match r.resource_type {
            RESOURCE_TOPIC => {
                let mut seen = std::collections::HashSet::new();
                let duplicate = r.configs.iter().find(|c| !seen.insert(c.name.as_str()));
                match duplicate {
                    Some(c) => Err((
                        ResponseError::InvalidRequest,
                        format!("config {} appears more than once", c.name.as_str()),
                    )),
                    None => alter_topic(
                        broker,
                        &r.resource_name,
                        |configs| {
                            for c in &r.configs {
                                apply_op(
                                    configs,
                                    broker,
                                    &c.name,
                                    c.config_operation,
                                    c.value.as_deref(),
                                )?;
                            }
                            Ok(())
                        },
                        req.validate_only,
                    ),
                }
            }
            RESOURCE_BROKER => broker_configs::alter(
                broker,
                &r.resource_name,
                false,
                r.configs
                    .iter()
                    .map(|c| BrokerOp {
                        name: c.name.to_string(),
                        op: c.config_operation,
                        value: c.value.as_ref().map(|v| v.to_string()),
                    })
                    .collect(),
                req.validate_only,
            )
            .map(|defaults| defaults.map(Pending::BrokerDefaults)),
            RESOURCE_GROUP => group_configs::altered(
                broker,
                &r.resource_name,
                r.configs
                    .iter()
                    .map(|c| group_configs::GroupOp {
                        name: c.name.to_string(),
                        op: c.config_operation,
                        value: c.value.as_ref().map(|v| v.to_string()),
                    })
                    .collect(),
                false,
            )
            .map(|c| {
                (!req.validate_only).then(|| Pending::GroupConfigs(r.resource_name.to_string(), c))
            }),
            other => Err(other_resource_refusal(other)),
        });
        let outcome = write_to_cluster(broker, outcome).await;
        let (error_code, error_message) = answer(outcome);
        res.responses.push(
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(error_code)
                .with_error_message(error_message),
        );
    }
    Reply::new(res)
}
