//! ElectLeaders, ListPartitionReassignments and AlterPartitionReassignments in a cluster:
//! each partition's change is a compare-and-swap in the cluster metadata, made by the
//! broker that received the request (see `replication/reassignment.rs`). The single-node
//! answers are in `leadership.rs`.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ElectLeadersRequest, ElectLeadersResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::error::NONE;
use crate::replication::reassignment::ElectionType;
use crate::replication::ClusterNode;

fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().map(|id| BrokerId(*id)).collect()
}

fn message(m: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(m))
}

/// ElectLeaders over the cluster's partitions; "all partitions" (null) reports only the
/// elections that were needed, as Kafka does.
pub(super) async fn elect_leaders(
    node: &ClusterNode,
    req: ElectLeadersRequest,
    version: i16,
    mut res: ElectLeadersResponse,
) -> ElectLeadersResponse {
    let election = if version >= 1 && req.election_type == 1 {
        ElectionType::Unclean
    } else {
        ElectionType::Preferred
    };
    let all = req.topic_partitions.is_none();
    let wanted: Vec<(TopicName, Vec<i32>)> = match req.topic_partitions {
        Some(tps) => tps.into_iter().map(|t| (t.topic, t.partitions)).collect(),
        None => {
            let view = node.view.borrow().clone();
            view.topics
                .iter()
                .map(|(name, t)| {
                    (
                        TopicName(StrBytes::from_string(name.clone())),
                        (0..t.assignment.len() as i32).collect(),
                    )
                })
                .collect()
        }
    };
    for (topic, partitions) in wanted {
        let mut tr = ReplicaElectionResult::default().with_topic(topic.clone());
        for index in partitions {
            let mut pr = PartitionResult::default()
                .with_partition_id(index)
                .with_error_message(None);
            match node.elect(&topic, index, election).await {
                Ok(()) => pr.error_code = NONE,
                Err((ResponseError::ElectionNotNeeded, _)) if all => continue,
                Err((e, m)) => {
                    pr.error_code = e.code();
                    pr.error_message = message(m);
                }
            }
            tr.partition_result.push(pr);
        }
        if !tr.partition_result.is_empty() {
            res.replica_election_results.push(tr);
        }
    }
    res
}

/// ListPartitionReassignments: the partitions whose replicas are moving.
pub(super) fn list_partition_reassignments(
    node: &ClusterNode,
    req: ListPartitionReassignmentsRequest,
    mut res: ListPartitionReassignmentsResponse,
) -> ListPartitionReassignmentsResponse {
    let only: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    for r in node.reassignments(only.as_deref()) {
        let partition = OngoingPartitionReassignment::default()
            .with_partition_index(r.partition)
            .with_replicas(ids(&r.replicas))
            .with_adding_replicas(ids(&r.adding))
            .with_removing_replicas(ids(&r.removing));
        match res.topics.last_mut() {
            Some(t) if t.name.as_str() == r.topic => t.partitions.push(partition),
            _ => res.topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(r.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    res
}

/// AlterPartitionReassignments: starts (replicas given) or cancels (null) each move.
pub(super) async fn alter_partition_reassignments(
    node: &ClusterNode,
    req: AlterPartitionReassignmentsRequest,
    mut res: AlterPartitionReassignmentsResponse,
) -> AlterPartitionReassignmentsResponse {
    for t in req.topics {
        let mut tr = ReassignableTopicResponse::default().with_name(t.name.clone());
        for p in t.partitions {
            let target = p.replicas.map(|r| r.iter().map(|b| b.0).collect());
            let mut pr = ReassignablePartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_error_message(None);
            match node.reassign(&t.name, p.partition_index, target).await {
                Ok(()) => pr.error_code = NONE,
                Err((e, m)) => {
                    pr.error_code = e.code();
                    pr.error_message = message(m);
                }
            }
            tr.partitions.push(pr);
        }
        res.responses.push(tr);
    }
    res
}
