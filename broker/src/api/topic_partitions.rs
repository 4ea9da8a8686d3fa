//! DescribeTopicPartitions (KIP-966): topics and their partitions, paginated by a cursor
//! and a partition limit, for admin clients that describe many partitions. In a cluster
//! it answers from the cluster metadata, as Metadata does.

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
};
use kafka_protocol::ResponseError;
use sluice_storage::LEADER_EPOCH;
use uuid::Uuid;

use super::topic_name;
use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::NONE;
use crate::session::Session;

answer!(DescribeTopicPartitionsResponse: [topics => error_code], [topics => partitions => error_code]);

/// Kafka's `max.request.partition.size.limit` default: the most partitions one response
/// holds, whatever the client asks.
const PARTITION_LIMIT: i32 = 2000;

/// Every operation on a topic (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS): without an authorizer all are allowed.
const TOPIC_OPERATIONS_ALL: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);

/// Answers DescribeTopicPartitions: the requested topics (every topic, if none are
/// named) by name, from the cursor on, at most the partition limit.
pub(crate) async fn handle(
    broker: &Broker,
    session: &Session,
    req: DescribeTopicPartitionsRequest,
    _version: i16,
) -> Reply<DescribeTopicPartitionsResponse> {
    let mut res = DescribeTopicPartitionsResponse::default();
    let may_describe = |name: &str| session.may(broker, Operation::Describe, Resource::Topic, name);
    let mut names: Vec<String> = if req.topics.is_empty() {
        // Every topic the client may describe; the others stay hidden.
        topic_names(broker)
            .into_iter()
            .filter(|n| may_describe(n))
            .collect()
    } else {
        req.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (first_topic, first_partition) = match &req.cursor {
        Some(c) => (Some(c.topic_name.to_string()), c.partition_index.max(0)),
        None => (None, 0),
    };
    let mut budget = req.response_partition_limit.clamp(1, PARTITION_LIMIT);
    for name in names {
        if first_topic.as_ref().is_some_and(|f| name < *f) {
            continue;
        }
        let start = if first_topic.as_deref() == Some(name.as_str()) {
            first_partition
        } else {
            0
        };
        if !may_describe(&name) {
            res.topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_name(Some(topic_name(&name))),
            );
            continue;
        }
        let Some((topic_id, partition_count)) = topic_info(broker, &name) else {
            res.topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    .with_name(Some(topic_name(&name))),
            );
            continue;
        };
        if budget == 0 {
            res.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(topic_name(&name))
                    .with_partition_index(start),
            );
            break;
        }
        let mut t = DescribeTopicPartitionsResponseTopic::default()
            .with_error_code(NONE)
            .with_name(Some(topic_name(&name)))
            .with_topic_id(topic_id)
            .with_is_internal(crate::internal_topics::is_internal(&name))
            .with_topic_authorized_operations(TOPIC_OPERATIONS_ALL);
        let mut index = start;
        while index < partition_count {
            if budget == 0 {
                res.next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(topic_name(&name))
                        .with_partition_index(index),
                );
                break;
            }
            t.partitions.push(describe_partition(broker, &name, index));
            budget -= 1;
            index += 1;
        }
        res.topics.push(t);
        if res.next_cursor.is_some() {
            break;
        }
    }
    Reply::new(res)
}

/// Every topic: the cluster's in a cluster (this broker may host no replica of some),
/// else this broker's.
fn topic_names(broker: &Broker) -> Vec<String> {
    match &broker.cluster {
        Some(node) => node.view.borrow().topics.keys().cloned().collect(),
        None => broker.storage.topic_names(),
    }
}

/// A topic's id and partition count.
fn topic_info(broker: &Broker, name: &str) -> Option<(Uuid, i32)> {
    match &broker.cluster {
        Some(node) => node
            .view
            .borrow()
            .topics
            .get(name)
            .map(|t| (t.topic_id, t.assignment.len() as i32)),
        None => broker
            .storage
            .topic(name)
            .map(|t| (t.record.id, t.record.partitions)),
    }
}

/// One partition: on a single node this broker leads it alone; in a cluster its replicas,
/// leader, leader epoch and ISR come from the cluster metadata, as Metadata answers them.
fn describe_partition(
    broker: &Broker,
    topic: &str,
    index: i32,
) -> DescribeTopicPartitionsResponsePartition {
    let described = DescribeTopicPartitionsResponsePartition::default()
        .with_partition_index(index)
        .with_eligible_leader_replicas(Some(Vec::new()))
        .with_last_known_elr(Some(Vec::new()));
    let Some(node) = &broker.cluster else {
        let me = BrokerId(broker.node_id());
        return described
            .with_error_code(NONE)
            .with_leader_id(me)
            .with_leader_epoch(LEADER_EPOCH)
            .with_replica_nodes(vec![me])
            .with_isr_nodes(vec![me])
            .with_offline_replicas(Vec::new());
    };
    let view = node.view.borrow();
    let replicas: Vec<i32> = view
        .topics
        .get(topic)
        .and_then(|t| t.assignment.get(index as usize).cloned())
        .unwrap_or_default();
    let ids = |ids: &[i32]| ids.iter().map(|r| BrokerId(*r)).collect::<Vec<_>>();
    let offline: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|r| !view.is_serving(*r))
        .collect();
    let described = described
        .with_replica_nodes(ids(&replicas))
        .with_offline_replicas(ids(&offline));
    match view.partitions.get(&(topic.to_string(), index)) {
        Some(state) => {
            let led = state.leader >= 0 && view.is_serving(state.leader);
            described
                .with_error_code(if led {
                    NONE
                } else {
                    ResponseError::LeaderNotAvailable.code()
                })
                .with_leader_id(BrokerId(if led { state.leader } else { -1 }))
                .with_leader_epoch(state.leader_epoch)
                .with_isr_nodes(ids(&state.isr))
        }
        None => described
            .with_error_code(ResponseError::LeaderNotAvailable.code())
            .with_leader_id(BrokerId(-1))
            .with_leader_epoch(-1),
    }
}
