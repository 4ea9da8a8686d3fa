//! Leadership and replica placement. In a cluster the requests go to
//! `reassignments.rs`; a single node answers as a one-node cluster truthfully can:
//! OffsetForLeaderEpoch (clients' truncation check), ElectLeaders (the leader is always the
//! preferred one), ListPartitionReassignments (none ever runs) and
//! AlterPartitionReassignments (only this broker can hold a replica).

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ElectLeadersRequest,
    ElectLeadersResponse, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_storage::Partition;

use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::NONE;
use crate::session::Session;

answer!(OffsetForLeaderEpochResponse: [topics => partitions => error_code]);
answer!(ElectLeadersResponse: [error_code], [replica_election_results => partition_result => error_code]);
answer!(ListPartitionReassignmentsResponse: [error_code]);
answer!(AlterPartitionReassignmentsResponse: [error_code], [responses => partitions => error_code]);

fn partition(broker: &Broker, topic: &str, index: i32) -> Option<std::sync::Arc<Partition>> {
    broker
        .storage
        .topic(topic)?
        .partitions
        .get(usize::try_from(index).ok()?)
        .cloned()
}

/// OffsetForLeaderEpoch: the end offset of the requested epoch from the partition's
/// leader-epoch cache (a consumer's truncation check, KIP-320). Answered by the leader.
pub(crate) async fn offset_for_leader_epoch(
    broker: &Broker,
    session: &Session,
    req: OffsetForLeaderEpochRequest,
    _version: i16,
) -> Reply<OffsetForLeaderEpochResponse> {
    let mut res = OffsetForLeaderEpochResponse::default();
    for t in req.topics {
        let allowed = session.may(broker, Operation::Describe, Resource::Topic, &t.topic);
        let mut tr = OffsetForLeaderTopicResult::default().with_topic(t.topic.clone());
        for p in t.partitions {
            let mut e = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            let found = partition(broker, &t.topic, p.partition);
            let not_here = match (&broker.cluster, &found) {
                (Some(c), Some(_)) => c
                    .replicas
                    .check_leader(&t.topic, p.partition, p.current_leader_epoch)
                    .err()
                    .map(|n| n.error),
                _ => None,
            };
            match found {
                _ if !allowed => e.error_code = ResponseError::TopicAuthorizationFailed.code(),
                None => e.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(_) if not_here.is_some() => e.error_code = not_here.unwrap_or(NONE),
                Some(part) => {
                    let current = part.leader_epoch();
                    // -1 means the client knows no epoch; any other is checked against ours.
                    e.error_code = match p.current_leader_epoch {
                        c if c >= 0 && c > current => ResponseError::UnknownLeaderEpoch.code(),
                        c if c >= 0 && c < current => ResponseError::FencedLeaderEpoch.code(),
                        _ => NONE,
                    };
                    if e.error_code == NONE {
                        let (epoch, end_offset) = part.end_offset_for_epoch(p.leader_epoch);
                        e.leader_epoch = epoch;
                        e.end_offset = end_offset;
                    }
                }
            }
            tr.partitions.push(e);
        }
        res.topics.push(tr);
    }
    Reply::new(res)
}

/// ElectLeaders: this broker leads every partition and is its preferred replica, so an
/// election is never needed. For "all partitions" Kafka lists only the elections it
/// attempted: none.
pub(crate) async fn elect_leaders(
    broker: &Broker,
    session: &Session,
    req: ElectLeadersRequest,
    version: i16,
) -> Reply<ElectLeadersResponse> {
    let mut res = ElectLeadersResponse::default();
    if !session.may_cluster(broker, Operation::Alter) {
        res.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return Reply::new(res);
    }
    if version >= 1 {
        res.error_code = NONE;
    }
    if let Some(node) = &broker.cluster {
        return Reply::new(super::reassignments::elect_leaders(node, req, version, res).await);
    }
    for t in req.topic_partitions.unwrap_or_default() {
        let mut tr = ReplicaElectionResult::default().with_topic(t.topic.clone());
        for index in t.partitions {
            let (code, msg) = match partition(broker, &t.topic, index) {
                None => (
                    ResponseError::UnknownTopicOrPartition,
                    "the partition does not exist",
                ),
                Some(_) => (
                    ResponseError::ElectionNotNeeded,
                    "the preferred replica is already the leader",
                ),
            };
            tr.partition_result.push(
                PartitionResult::default()
                    .with_partition_id(index)
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_static_str(msg))),
            );
        }
        res.replica_election_results.push(tr);
    }
    Reply::new(res)
}

/// ListPartitionReassignments: on a single node no reassignment is ever in progress.
pub(crate) async fn list_partition_reassignments(
    broker: &Broker,
    session: &Session,
    req: ListPartitionReassignmentsRequest,
    _version: i16,
) -> Reply<ListPartitionReassignmentsResponse> {
    let mut res = ListPartitionReassignmentsResponse::default().with_error_message(None);
    if !session.may_cluster(broker, Operation::Describe) {
        res.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return Reply::new(res);
    }
    res.error_code = NONE;
    if let Some(node) = &broker.cluster {
        return Reply::new(super::reassignments::list_partition_reassignments(
            node, req, res,
        ));
    }
    Reply::new(res)
}

/// AlterPartitionReassignments: the only placement possible is this broker, which every
/// partition already has; cancelling finds nothing in progress.
pub(crate) async fn alter_partition_reassignments(
    broker: &Broker,
    session: &Session,
    req: AlterPartitionReassignmentsRequest,
    _version: i16,
) -> Reply<AlterPartitionReassignmentsResponse> {
    let mut res = AlterPartitionReassignmentsResponse::default().with_error_message(None);
    if !session.may_cluster(broker, Operation::Alter) {
        res.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return Reply::new(res);
    }
    res.error_code = NONE;
    if let Some(cluster) = &broker.cluster {
        return Reply::new(
            super::reassignments::alter_partition_reassignments(cluster, req, res).await,
        );
    }
    let node = broker.node_id();
    for t in req.topics {
        let mut tr = ReassignableTopicResponse::default().with_name(t.name.clone());
        for p in t.partitions {
            let outcome = match (partition(broker, &t.name, p.partition_index), &p.replicas) {
                (None, _) => Err((
                    ResponseError::UnknownTopicOrPartition,
                    "the partition does not exist".to_string(),
                )),
                (Some(_), None) => Err((
                    ResponseError::NoReassignmentInProgress,
                    "no reassignment is in progress".to_string(),
                )),
                // Already placed as asked: nothing to move.
                (Some(_), Some(replicas)) if replicas.iter().map(|b| b.0).eq([node]) => Ok(()),
                (Some(_), Some(replicas)) => Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "replicas {:?}: this single-node cluster has only broker {node}",
                        replicas.iter().map(|b| b.0).collect::<Vec<_>>()
                    ),
                )),
            };
            let mut pr = ReassignablePartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_error_message(None);
            match outcome {
                Ok(()) => pr.error_code = NONE,
                Err((e, m)) => {
                    pr.error_code = e.code();
                    pr.error_message = Some(StrBytes::from_string(m));
                }
            }
            tr.partitions.push(pr);
        }
        res.responses.push(tr);
    }
    Reply::new(res)
}
