//! DescribeQuorum for a single Sluice node: one voter, itself, the leader of a metadata
//! quorum that has no log (Sluice keeps its metadata in RocksDB, not `__cluster_metadata`).

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_storage::{now_ms, LEADER_EPOCH};

use crate::acl::Operation;
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::{code, NONE};
use crate::session::Session;

answer!(DescribeQuorumResponse: [error_code], [topics => partitions => error_code]);

/// Kafka's metadata topic, the one partition DescribeQuorum may name.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// Answers DescribeQuorum as Kafka's `KafkaRaftClient.handleDescribeQuorumRequest` on the
/// quorum leader. Offsets are -1, Kafka's value when it knows none: there is no metadata log.
pub(crate) async fn describe_quorum(
    broker: &Broker,
    session: &Session,
    req: DescribeQuorumRequest,
    version: i16,
) -> Reply<DescribeQuorumResponse> {
    let mut res = DescribeQuorumResponse::default();
    if !session.may_cluster(broker, Operation::Describe) {
        res.error_code = code(ResponseError::ClusterAuthorizationFailed);
        return Reply::new(res);
    }
    res.error_code = NONE;
    let valid = match req.topics.as_slice() {
        [t] => {
            t.topic_name.as_str() == METADATA_TOPIC
                && matches!(t.partitions.as_slice(), [p] if p.partition_index == 0)
        }
        _ => false,
    };
    if !valid {
        // Kafka's getPartitionLevelErrorResponse: every partition asked for, refused.
        res.topics = req
            .topics
            .into_iter()
            .map(|t| {
                TopicData::default()
                    .with_topic_name(t.topic_name)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                PartitionData::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code(ResponseError::UnknownTopicOrPartition))
                            })
                            .collect(),
                    )
            })
            .collect();
        return Reply::new(res);
    }
    let node = BrokerId(broker.node_id());
    let now = now_ms();
    // The leader describes itself as fetched and caught up now, as Kafka does.
    let me = ReplicaState::default()
        .with_replica_id(node)
        .with_log_end_offset(-1)
        .with_last_fetch_timestamp(now)
        .with_last_caught_up_timestamp(now);
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_error_code(NONE)
        .with_leader_id(node)
        .with_leader_epoch(LEADER_EPOCH)
        .with_high_watermark(-1)
        .with_current_voters(vec![me])
        .with_observers(Vec::new());
    res.topics = vec![TopicData::default()
        .with_topic_name(crate::api::topic_name(METADATA_TOPIC))
        .with_partitions(vec![partition])];
    if version >= 2 {
        // The voter's endpoints: Sluice has no controller listener, so the ones it
        // advertises.
        let listeners = broker
            .advertised
            .iter()
            .map(|l| {
                let (host, port) = broker.endpoint_for(&l.name);
                Listener::default()
                    .with_name(StrBytes::from_string(l.name.clone()))
                    .with_host(StrBytes::from_string(host.to_string()))
                    .with_port(u16::try_from(port).unwrap_or(0))
            })
            .collect();
        res.nodes = vec![Node::default().with_node_id(node).with_listeners(listeners)];
    }
    Reply::new(res)
}
