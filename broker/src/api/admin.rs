//! Topic administration: CreateTopics, DeleteTopics, DescribeCluster.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeClusterRequest, DescribeClusterResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_config::{describe_topic_configs, validate_topic_config, validate_topic_overrides};
use uuid::Uuid;

use super::{topic_name, validate_topic_name};
use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::{code, storage_error_code, NONE};
use crate::replication::ClusterNode;
use crate::session::Session;

answer!(CreateTopicsResponse: [topics => error_code]);
answer!(DeleteTopicsResponse: [responses => error_code]);
answer!(DescribeClusterResponse: [error_code]);

/// Answers CreateTopics, creating each valid topic (or only checking, if validate-only).
pub(crate) async fn create_topics(
    broker: &Broker,
    session: &Session,
    req: CreateTopicsRequest,
    version: i16,
) -> Reply<CreateTopicsResponse> {
    let mut r = CreateTopicsResponse::default();
    // Create on the cluster covers every topic; otherwise Create on each topic.
    let cluster_create = session.may_cluster(broker, Operation::Create);
    let duplicates = super::repeated_names(req.topics.iter().map(|t| t.name.as_str()));
    for t in req.topics {
        let name = t.name.to_string();
        let mut res = CreatableTopicResult::default();
        res.name = t.name.clone();
        // Kafka leaves the message null unless the topic failed.
        res.error_message = None;
        let fail = |mut res: CreatableTopicResult, e: ResponseError, msg: String| {
            res.error_code = code(e);
            res.error_message = Some(StrBytes::from_string(msg));
            res
        };
        if duplicates.contains(&name) {
            r.topics.push(fail(
                res,
                ResponseError::InvalidRequest,
                format!("topic {name} appears more than once in the request"),
            ));
            continue;
        }
        if !cluster_create && !session.may(broker, Operation::Create, Resource::Topic, &name) {
            r.topics.push(fail(
                res,
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".into(),
            ));
            continue;
        }
        if let Err(msg) = validate_topic_name(&name) {
            r.topics
                .push(fail(res, ResponseError::InvalidTopicException, msg));
            continue;
        }
        let exists = match &broker.cluster {
            Some(node) => node.topic_exists(&name),
            None => broker.storage.topic(&name).is_some(),
        };
        if exists {
            r.topics.push(fail(
                res,
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
            continue;
        }
        if !t.assignments.is_empty() {
            if t.num_partitions != -1 || t.replication_factor != -1 {
                r.topics.push(fail(
                    res,
                    ResponseError::InvalidRequest,
                    "both partition count or replication factor and manual assignments were set"
                        .into(),
                ));
                continue;
            }
            let node = broker.node_id();
            let out_of_order = t
                .assignments
                .iter()
                .enumerate()
                .any(|(i, a)| a.partition_index != i as i32);
            if broker.cluster.is_some() && out_of_order {
                r.topics.push(fail(
                    res,
                    ResponseError::InvalidReplicaAssignment,
                    "replica assignments must list partitions 0..n in order".into(),
                ));
                continue;
            }
            let bad = broker.cluster.is_none()
                && t.assignments.iter().enumerate().any(|(i, a)| {
                    a.partition_index != i as i32
                        || a.broker_ids.len() != 1
                        || a.broker_ids[0].0 != node
                });
            if bad {
                r.topics.push(fail(
                    res,
                    ResponseError::InvalidReplicaAssignment,
                    format!("replica assignments must list partitions 0..n in order, each on broker {node} alone"),
                ));
                continue;
            }
        }
        let partitions = if !t.assignments.is_empty() {
            t.assignments.len() as i32
        } else if t.num_partitions == -1 {
            broker.config.num_partitions
        } else {
            t.num_partitions
        };
        if partitions < 1 {
            r.topics.push(fail(
                res,
                ResponseError::InvalidPartitions,
                "Number of partitions must be larger than 0.".into(),
            ));
            continue;
        }
        let rf = if t.replication_factor == -1 {
            i32::from(broker.config.default_replication_factor)
        } else {
            i32::from(t.replication_factor)
        };
        if rf < 1 {
            r.topics.push(fail(
                res,
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.".into(),
            ));
            continue;
        }
        let placement = match &broker.cluster {
            Some(node) => {
                let manual = (!t.assignments.is_empty()).then(|| {
                    t.assignments
                        .iter()
                        .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                        .collect()
                });
                match node.place(partitions, rf, manual) {
                    Ok(p) => Some(p),
                    Err((e, msg)) => {
                        r.topics.push(fail(res, e, msg));
                        continue;
                    }
                }
            }
            None => None,
        };
        if rf > 1 && placement.is_none() {
            r.topics.push(fail(
                res,
                ResponseError::InvalidReplicationFactor,
                format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered."),
            ));
            continue;
        }
        let mut configs = BTreeMap::new();
        let mut config_error = None;
        for c in &t.configs {
            let key = c.name.to_string();
            let Some(value) = c.value.as_ref().map(|v| v.to_string()) else {
                config_error = Some(format!("Null value not supported for topic configs: {key}"));
                break;
            };
            if let Err(e) = validate_topic_config(&key, &value) {
                config_error = Some(e.to_string());
                break;
            }
            configs.insert(key, value);
        }
        if config_error.is_none() {
            if let Err(e) = validate_topic_overrides(&broker.storage.effective_config(), &configs) {
                config_error = Some(e.to_string());
            }
        }
        if let Some(msg) = config_error {
            r.topics.push(fail(res, ResponseError::InvalidConfig, msg));
            continue;
        }
        // Partition count, replication factor and configs are reported from v5.
        if version >= 5 {
            res.num_partitions = partitions;
            res.replication_factor = placement
                .as_ref()
                .and_then(|p| p.first())
                .map_or(rf, |r| r.len() as i32) as i16;
            res.configs = Some(described_configs(broker, &configs));
        }
        if req.validate_only {
            res.error_code = NONE;
            r.topics.push(res);
            continue;
        }
        if let (Some(node), Some(assignment)) = (&broker.cluster, placement) {
            match node.create_topic(&name, assignment, configs).await {
                Ok(topic_id) => {
                    res.error_code = NONE;
                    if version >= 7 {
                        res.topic_id = topic_id;
                    }
                    r.topics.push(res);
                }
                Err((e, msg)) => {
                    let mut res = fail(res, e, msg);
                    res.num_partitions = -1;
                    res.replication_factor = -1;
                    res.configs = Some(Vec::new());
                    r.topics.push(res);
                }
            }
            continue;
        }
        match broker.storage.create_topic(&name, partitions, configs) {
            Ok(topic) => {
                res.error_code = NONE;
                if version >= 7 {
                    res.topic_id = topic.record.id;
                }
            }
            Err(e) => {
                res.error_code = storage_error_code(&e);
                res.error_message = Some(StrBytes::from_string(e.to_string()));
                res.num_partitions = -1;
                res.replication_factor = -1;
                res.configs = Some(Vec::new());
            }
        }
        r.topics.push(res);
    }
    Reply::new(r)
}

/// The configs a CreateTopics response reports (v5+): every topic config with the value
/// in force and its source, as DescribeConfigs reports them.
fn described_configs(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    describe_topic_configs(
        &broker.storage.effective_config(),
        &broker.storage.broker_layers(),
        overrides,
    )
    .into_iter()
    .map(|c| {
        let mut e = CreatableTopicConfigs::default();
        e.name = StrBytes::from_string(c.name);
        e.value = c.value.map(StrBytes::from_string);
        e.read_only = c.read_only;
        e.config_source = c.source.code();
        e.is_sensitive = false;
        e
    })
    .collect()
}

/// Answers DeleteTopics, by name (all versions) and by topic id (v6+).
pub(crate) async fn delete_topics(
    broker: &Broker,
    session: &Session,
    req: DeleteTopicsRequest,
    version: i16,
) -> Reply<DeleteTopicsResponse> {
    let mut r = DeleteTopicsResponse::default();
    let wanted: Vec<(Option<String>, Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.to_string()), Uuid::nil()))
            .collect()
    };
    for (name, id) in wanted {
        if let Some(node) = &broker.cluster {
            r.responses
                .push(delete_in_cluster(broker, session, node, name, id, version).await);
            continue;
        }
        let mut res = DeletableTopicResult::default();
        res.name = name.as_deref().map(topic_name);
        let topic = match &name {
            Some(n) => broker.storage.topic(n),
            None => broker.storage.topic_by_id(id),
        };
        let denied = match (&topic, &name) {
            (Some(t), _) => {
                !session.may(broker, Operation::Delete, Resource::Topic, &t.record.name)
            }
            (None, Some(n)) => !session.may(broker, Operation::Delete, Resource::Topic, n),
            (None, None) => false,
        };
        if denied {
            if version >= 6 {
                res.topic_id = id;
            }
            res.error_code = code(ResponseError::TopicAuthorizationFailed);
            r.responses.push(res);
            continue;
        }
        let Some(topic) = topic else {
            if version >= 6 {
                res.topic_id = id;
            }
            res.error_code = if name.is_some() {
                code(ResponseError::UnknownTopicOrPartition)
            } else {
                code(ResponseError::UnknownTopicId)
            };
            r.responses.push(res);
            continue;
        };
        res.name = Some(topic_name(&topic.record.name));
        if version >= 6 {
            res.topic_id = topic.record.id;
        }
        let storage = broker.storage.clone();
        let n = topic.record.name.clone();
        let deleted = tokio::task::spawn_blocking(move || storage.delete_topic(&n)).await;
        match deleted {
            Ok(Ok(_)) => {
                broker.groups.on_topic_deleted(&topic.record.name);
                res.error_code = NONE
            }
            Ok(Err(e)) => {
                tracing::error!(topic = %topic.record.name, error = %e, "deleting topic failed");
                res.error_code = storage_error_code(&e);
                if version >= 5 {
                    res.error_message = Some(StrBytes::from_string(e.to_string()));
                }
            }
            Err(e) => {
                tracing::error!(topic = %topic.record.name, error = %e, "delete task failed");
                res.error_code = code(ResponseError::UnknownServerError);
            }
        }
        r.responses.push(res);
    }
    Reply::new(r)
}

/// Deletes one topic of a cluster.
async fn delete_in_cluster(
    broker: &Broker,
    session: &Session,
    node: &ClusterNode,
    name: Option<String>,
    id: Uuid,
    version: i16,
) -> DeletableTopicResult {
    let mut res = DeletableTopicResult::default();
    res.name = name.as_deref().map(topic_name);
    if version >= 6 {
        res.topic_id = id;
    }
    let found = node.find_topic(name.as_deref(), id);
    let check_name = found.as_ref().map(|(n, _)| n.clone()).or(name.clone());
    if check_name
        .as_ref()
        .is_some_and(|n| !session.may(broker, Operation::Delete, Resource::Topic, n))
    {
        res.error_code = code(ResponseError::TopicAuthorizationFailed);
        return res;
    }
    let Some((found_name, found_id)) = found else {
        res.error_code = if name.is_some() {
            code(ResponseError::UnknownTopicOrPartition)
        } else {
            code(ResponseError::UnknownTopicId)
        };
        return res;
    };
    res.name = Some(topic_name(&found_name));
    if version >= 6 {
        res.topic_id = found_id;
    }
    match node.delete_topic(&found_name).await {
        Ok(()) => {
            broker.groups.on_topic_deleted(&found_name);
            res.error_code = NONE;
        }
        Err((e, msg)) => {
            res.error_code = code(e);
            if version >= 5 {
                res.error_message = Some(StrBytes::from_string(msg));
            }
        }
    }
    res
}

/// Answers DescribeCluster: this one node, which is also its controller.
pub(crate) async fn describe_cluster(
    broker: &Broker,
    session: &Session,
    req: DescribeClusterRequest,
    version: i16,
) -> Reply<DescribeClusterResponse> {
    let mut r = DescribeClusterResponse::default();
    r.endpoint_type = 1;
    r.cluster_authorized_operations = i32::MIN;
    if !session.may_cluster(broker, Operation::Describe) {
        r.error_code = code(ResponseError::ClusterAuthorizationFailed);
        return Reply::new(r);
    }
    if version >= 1 && req.endpoint_type != 1 {
        r.error_code = code(ResponseError::UnsupportedEndpointType);
        r.error_message = Some(StrBytes::from_static_str(
            "only broker endpoints are served",
        ));
        r.endpoint_type = req.endpoint_type;
        return Reply::new(r);
    }
    r.cluster_id = StrBytes::from_string(broker.cluster_id());
    if let Some(node) = &broker.cluster {
        let view = node.view.borrow().clone();
        r.controller_id = BrokerId(view.controller.unwrap_or(-1));
        r.brokers = view
            .brokers
            .values()
            .filter_map(|b| {
                let e = b
                    .endpoints
                    .iter()
                    .find(|e| e.listener == session.listener)?;
                let mut out = DescribeClusterBroker::default();
                out.broker_id = BrokerId(b.node_id);
                out.host = StrBytes::from_string(e.host.clone());
                out.port = i32::from(e.port);
                out.rack = b.rack.clone().map(StrBytes::from_string);
                Some(out)
            })
            .collect();
        return Reply::new(r);
    }
    let (host, port) = broker.endpoint_for(&session.listener);
    r.controller_id = BrokerId(broker.node_id());
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(broker.node_id());
    b.host = StrBytes::from_string(host.to_string());
    b.port = port;
    r.brokers = vec![b];
    Reply::new(r)
}
