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
        broker
            .topics
            .list_topic_names()
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
        let Some((topic_id, partition_count)) = broker.topics.topic_partitions(&name) else {
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
    let p = super::cluster_metadata::partition(&view, topic, index, &replicas);
    described
        .with_error_code(p.error_code)
        .with_leader_id(p.leader)
        .with_leader_epoch(p.leader_epoch)
        .with_replica_nodes(p.replicas)
        .with_isr_nodes(p.isr)
        .with_offline_replicas(p.offline)
}
