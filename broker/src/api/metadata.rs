//! Metadata: brokers, cluster id, topics with their partitions; auto-creation.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_storage::{StorageError, Topic};
use uuid::Uuid;

use super::{cluster_metadata, topic_name, validate_topic_name};
use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::{code, storage_error_code, NONE};
use crate::internal_topics;
use crate::session::Session;

answer!(MetadataResponse: [topics => error_code], [topics => partitions => error_code], [error_code]);

/// Kafka's "authorized operations not requested" value.
const OPS_NOT_REQUESTED: i32 = i32::MIN;

/// Answers Metadata, creating requested unknown topics when auto-creation is allowed.
pub(crate) async fn handle(
    broker: &Broker,
    session: &Session,
    req: MetadataRequest,
    version: i16,
) -> Reply<MetadataResponse> {
    let mut r = MetadataResponse::default();
    let view = broker.cluster.as_ref().map(|c| c.view.borrow().clone());
    match &view {
        Some(view) => r.brokers = cluster_metadata::brokers(view, &session.listener, version),
        None => {
            let (host, port) = broker.endpoint_for(&session.listener);
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(broker.node_id());
            b.host = StrBytes::from_string(host.to_string());
            b.port = port;
            r.brokers = vec![b];
        }
    }
    // A field outside the request's version must keep its default or encoding fails.
    if version >= 2 {
        r.cluster_id = Some(StrBytes::from_string(broker.cluster_id()));
    }
    if version >= 1 {
        r.controller_id = match &view {
            Some(view) => BrokerId(view.controller.unwrap_or(-1)),
            None => BrokerId(broker.node_id()),
        };
    }
    r.cluster_authorized_operations = OPS_NOT_REQUESTED;
    if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        r.cluster_authorized_operations = authorized_operations(
            broker,
            session,
            Resource::Cluster,
            crate::acl::CLUSTER_NAME,
            CLUSTER_OPERATIONS,
        );
    }
    let topic_ops = version >= 8 && req.include_topic_authorized_operations;
    let finish = |mut t: MetadataResponseTopic| {
        if topic_ops && t.error_code == NONE {
            if let Some(name) = &t.name {
                t.topic_authorized_operations = authorized_operations(
                    broker,
                    session,
                    Resource::Topic,
                    name.as_str(),
                    TOPIC_OPERATIONS,
                );
            }
        }
        t
    };

    // v0 asks for every topic with an empty list; later versions with null.
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    if let (true, Some(view)) = (all, &view) {
        r.topics = view
            .topics
            .values()
            .filter(|t| session.may(broker, Operation::Describe, Resource::Topic, &t.name))
            .map(|t| finish(cluster_metadata::topic(view, t, version)))
            .collect();
        return Reply::new(r);
    }
    if all {
        // Topics the client may not describe are left out, as if they did not exist.
        r.topics = broker
            .storage
            .topics()
            .iter()
            .filter(|t| session.may(broker, Operation::Describe, Resource::Topic, &t.record.name))
            .map(|t| finish(topic_metadata(broker, t, version)))
            .collect();
        return Reply::new(r);
    }
    // Clients before v4 cannot say; Kafka lets them auto-create.
    let allow_auto = version < 4 || req.allow_auto_topic_creation;
    for t in req.topics.unwrap_or_default() {
        let entry = match (&t.name, &view) {
            (Some(name), Some(_)) => {
                cluster_by_name(broker, session, name.as_str(), allow_auto, version).await
            }
            (Some(name), None) => by_name(broker, session, name.as_str(), allow_auto, version),
            (None, Some(view)) => match cluster_metadata::by_id(view, t.topic_id) {
                Some(topic)
                    if session.may(broker, Operation::Describe, Resource::Topic, &topic.name) =>
                {
                    cluster_metadata::topic(view, topic, version)
                }
                found => topic_error(
                    None,
                    if version >= 10 {
                        t.topic_id
                    } else {
                        Uuid::nil()
                    },
                    code(if found.is_some() {
                        ResponseError::TopicAuthorizationFailed
                    } else {
                        ResponseError::UnknownTopicId
                    }),
                ),
            },
            (None, None) => by_id(broker, session, t.topic_id, version),
        };
        r.topics.push(finish(entry));
    }
    Reply::new(r)
}

/// Operations a Metadata response reports for topics and the cluster (KIP-430).
const TOPIC_OPERATIONS: &[Operation] = &[
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];
const CLUSTER_OPERATIONS: &[Operation] = &[
    Operation::Create,
    Operation::Alter,
    Operation::Describe,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
];

/// The bit set (1 << operation code) of the operations the client may do.
fn authorized_operations(
    broker: &Broker,
    session: &Session,
    resource: Resource,
    name: &str,
    ops: &[Operation],
) -> i32 {
    ops.iter()
        .filter(|op| session.may(broker, **op, resource, name))
        .fold(0, |bits, op| bits | (1 << (*op as i8)))
}

fn by_name(
    broker: &Broker,
    session: &Session,
    name: &str,
    allow_auto: bool,
    version: i16,
) -> MetadataResponseTopic {
    if !session.may(broker, Operation::Describe, Resource::Topic, name) {
        return topic_error(
            Some(name),
            Uuid::nil(),
            code(ResponseError::TopicAuthorizationFailed),
        );
    }
    if let Some(t) = broker.storage.topic(name) {
        return topic_metadata(broker, &t, version);
    }
    if let Some(refused) = creation_refused(broker, session, name, allow_auto) {
        return refused;
    }
    if internal_topics::is_internal(name) {
        return match internal_topics::ensure(broker, name) {
            Ok(t) => topic_metadata(broker, &t, version),
            Err(e) => topic_error(Some(name), Uuid::nil(), storage_error_code(&e)),
        };
    }
    match broker
        .storage
        .create_topic(name, broker.config.num_partitions, BTreeMap::new())
    {
        Ok(t) => topic_metadata(broker, &t, version),
        // Another request created it first.
        Err(StorageError::TopicExists(_)) => match broker.storage.topic(name) {
            Some(t) => topic_metadata(broker, &t, version),
            None => topic_error(
                Some(name),
                Uuid::nil(),
                code(ResponseError::UnknownTopicOrPartition),
            ),
        },
        Err(e) => {
            tracing::error!(topic = name, error = %e, "auto-creating topic failed");
            topic_error(Some(name), Uuid::nil(), storage_error_code(&e))
        }
    }
}

/// Why a topic that does not exist is not created by this Metadata request: an invalid
/// name, auto-creation off (Kafka creates an internal topic whenever a request may create
/// topics at all), or no Create permission (not needed for internal topics).
fn creation_refused(
    broker: &Broker,
    session: &Session,
    name: &str,
    allow_auto: bool,
) -> Option<MetadataResponseTopic> {
    let refuse = |e: ResponseError| Some(topic_error(Some(name), Uuid::nil(), code(e)));
    if let Err(reason) = validate_topic_name(name) {
        tracing::debug!(topic = name, %reason, "metadata for an invalid topic name");
        return refuse(ResponseError::InvalidTopicException);
    }
    let internal = internal_topics::is_internal(name);
    if !allow_auto || !(internal || broker.config.auto_create_topics) {
        return refuse(ResponseError::UnknownTopicOrPartition);
    }
    let may_create = session.may_cluster(broker, Operation::Create)
        || session.may(broker, Operation::Create, Resource::Topic, name);
    if !internal && !may_create {
        return refuse(ResponseError::TopicAuthorizationFailed);
    }
    None
}

/// A topic by name in a cluster; an unknown one is created across the cluster when
/// auto-creation allows it.
async fn cluster_by_name(
    broker: &Broker,
    session: &Session,
    name: &str,
    allow_auto: bool,
    version: i16,
) -> MetadataResponseTopic {
    let Some(node) = &broker.cluster else {
        return topic_error(
            Some(name),
            Uuid::nil(),
            code(ResponseError::UnknownTopicOrPartition),
        );
    };
    if !session.may(broker, Operation::Describe, Resource::Topic, name) {
        return topic_error(
            Some(name),
            Uuid::nil(),
            code(ResponseError::TopicAuthorizationFailed),
        );
    }
    let found = {
        let view = node.view.borrow().clone();
        cluster_metadata::by_name(&view, name).map(|t| cluster_metadata::topic(&view, t, version))
    };
    if let Some(t) = found {
        return t;
    }
    if let Some(refused) = creation_refused(broker, session, name, allow_auto) {
        return refused;
    }
    let (partitions, rf, configs) = if internal_topics::is_internal(name) {
        internal_topics::placement(broker, name)
    } else {
        (
            broker.config.num_partitions,
            i32::from(broker.config.default_replication_factor),
            BTreeMap::new(),
        )
    };
    let created = match node.place(partitions, rf, None) {
        Ok(assignment) => node.create_topic(name, assignment, configs).await,
        Err(e) => Err(e),
    };
    match created {
        // Kafka answers a topic it just created with LEADER_NOT_AVAILABLE; the client asks again.
        Ok(_) | Err((ResponseError::TopicAlreadyExists, _)) => {
            let view = node.view.borrow().clone();
            match cluster_metadata::by_name(&view, name) {
                Some(t) => cluster_metadata::topic(&view, t, version),
                None => topic_error(
                    Some(name),
                    Uuid::nil(),
                    code(ResponseError::LeaderNotAvailable),
                ),
            }
        }
        Err((e, msg)) => {
            tracing::warn!(topic = name, error = %msg, "auto-creating topic failed");
            topic_error(Some(name), Uuid::nil(), code(e))
        }
    }
}

fn by_id(broker: &Broker, session: &Session, id: Uuid, version: i16) -> MetadataResponseTopic {
    match broker.storage.topic_by_id(id) {
        Some(t) if !session.may(broker, Operation::Describe, Resource::Topic, &t.record.name) => {
            topic_error(
                None,
                if version >= 10 { id } else { Uuid::nil() },
                code(ResponseError::TopicAuthorizationFailed),
            )
        }
        Some(t) => topic_metadata(broker, &t, version),
        None => topic_error(
            None,
            if version >= 10 { id } else { Uuid::nil() },
            code(ResponseError::UnknownTopicId),
        ),
    }
}

fn topic_error(name: Option<&str>, id: Uuid, error_code: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.error_code = error_code;
    t.name = name.map(topic_name);
    t.topic_id = id;
    t.topic_authorized_operations = OPS_NOT_REQUESTED;
    t
}

/// The metadata of one topic hosted here: this node leads every partition at epoch 0.
pub(crate) fn topic_metadata(
    broker: &Broker,
    topic: &Arc<Topic>,
    version: i16,
) -> MetadataResponseTopic {
    let node = BrokerId(broker.node_id());
    let id = if version >= 10 {
        topic.record.id
    } else {
        Uuid::nil()
    };
    let mut t = topic_error(Some(&topic.record.name), id, NONE);
    t.is_internal = internal_topics::is_internal(&topic.record.name);
    t.partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let mut m = MetadataResponsePartition::default();
            m.error_code = NONE;
            m.partition_index = p.index;
            m.leader_id = node;
            if version >= 7 {
                m.leader_epoch = p.leader_epoch();
            }
            m.replica_nodes = vec![node];
            m.isr_nodes = vec![node];
            m
        })
        .collect();
    t
}
