//! CreatePartitions (growing a topic) and DeleteRecords (moving a partition's log start
//! offset forward).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, DeleteRecordsRequest, DeleteRecordsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::{read_error_code, storage_error_code, NONE};
use crate::session::Session;

answer!(CreatePartitionsResponse: [results => error_code]);
answer!(DeleteRecordsResponse: [topics => partitions => error_code]);

/// The most partitions one topic may have here; a guard against a typo creating millions
/// of directories.
const MAX_PARTITIONS: i32 = 100_000;

/// CreatePartitions: grow each topic to its new count; shrinking or staying the same is
/// INVALID_PARTITIONS, as in Kafka.
pub(crate) async fn create_partitions(
    broker: &Broker,
    session: &Session,
    req: CreatePartitionsRequest,
    _version: i16,
) -> Reply<CreatePartitionsResponse> {
    let mut res = CreatePartitionsResponse::default();
    let duplicates = super::repeated_names(req.topics.iter().map(|t| t.name.as_str()));
    for t in req.topics {
        let name = t.name.to_string();
        let outcome: Result<(), (ResponseError, String)> = (|| {
            if duplicates.contains(&name) {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("topic {name} appears more than once in the request"),
                ));
            }
            if !session.may(broker, Operation::Alter, Resource::Topic, &name) {
                return Err((
                    ResponseError::TopicAuthorizationFailed,
                    format!("not authorized to alter topic {name}"),
                ));
            }
            let current = match &broker.cluster {
                Some(node) => node.partitioning(&name).map(|(count, _)| count),
                None => broker.storage.topic(&name).map(|t| t.record.partitions),
            }
            .ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic {name} does not exist"),
                )
            })?;
            if t.count < current {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!("topic {name} has {current} partitions; the count can only grow, not shrink to {}", t.count),
                ));
            }
            if t.count == current {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!("topic {name} already has {current} partitions"),
                ));
            }
            if t.count > MAX_PARTITIONS {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!("{} partitions is more than this broker allows per topic ({MAX_PARTITIONS})", t.count),
                ));
            }
            if let Some(assignments) = &t.assignments {
                let added = (t.count - current) as usize;
                if assignments.len() != added {
                    return Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "{} assignments given for {added} new partitions",
                            assignments.len()
                        ),
                    ));
                }
                let node = broker.node_id();
                if broker.cluster.is_some() {
                    return Ok(());
                }
                if let Some(a) = assignments
                    .iter()
                    .find(|a| a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>() != [node])
                {
                    let ids: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
                    return Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "replicas {ids:?}: this single-node cluster has only broker {node}"
                        ),
                    ));
                }
            }
            if req.validate_only || broker.cluster.is_some() {
                return Ok(());
            }
            broker
                .storage
                .add_partitions(&name, t.count)
                .map(|_| ())
                .map_err(|e| {
                    tracing::error!(topic = %name, error = %e, "adding partitions failed");
                    (
                        ResponseError::try_from_code(storage_error_code(&e))
                            .unwrap_or(ResponseError::KafkaStorageError),
                        e.to_string(),
                    )
                })
        })();
        // In a cluster the checks above pass the request on to the cluster metadata.
        let outcome = match (&broker.cluster, outcome) {
            (Some(node), Ok(())) => {
                let manual = t.assignments.as_ref().map(|a| {
                    a.iter()
                        .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                        .collect()
                });
                node.create_partitions(&name, t.count, manual, req.validate_only)
                    .await
            }
            (_, outcome) => outcome,
        };
        let mut r = CreatePartitionsTopicResult::default().with_name(t.name);
        match outcome {
            Ok(()) => r.error_code = NONE,
            Err((e, msg)) => {
                r.error_code = e.code();
                r.error_message = Some(StrBytes::from_string(msg));
            }
        }
        res.results.push(r);
    }
    Reply::new(res)
}

/// DeleteRecords: each partition's log start offset moves to the given offset (-1: the
/// high watermark); the answer is the new low watermark.
pub(crate) async fn delete_records(
    broker: &Broker,
    session: &Session,
    req: DeleteRecordsRequest,
    _version: i16,
) -> Reply<DeleteRecordsResponse> {
    let mut res = DeleteRecordsResponse::default();
    for t in req.topics {
        let allowed = session.may(broker, Operation::Delete, Resource::Topic, &t.name);
        let topic = broker.storage.topic(&t.name).filter(|_| allowed);
        let mut tr = DeleteRecordsTopicResult::default().with_name(t.name.clone());
        for p in t.partitions {
            let mut pr = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let partition = topic.as_ref().and_then(|tp| {
                tp.partitions
                    .get(usize::try_from(p.partition_index).ok()?)
                    .cloned()
            });
            match partition {
                None if !allowed => pr.error_code = ResponseError::TopicAuthorizationFailed.code(),
                None => pr.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(partition) => {
                    let moved = tokio::task::spawn_blocking(move || {
                        partition.delete_records_before(p.offset)
                    })
                    .await;
                    match moved {
                        Ok(Ok(low)) => {
                            pr.error_code = NONE;
                            pr.low_watermark = low;
                        }
                        Ok(Err(e)) => pr.error_code = read_error_code(&e),
                        Err(e) => {
                            tracing::error!(error = %e, "delete records task failed");
                            pr.error_code = ResponseError::KafkaStorageError.code();
                        }
                    }
                }
            }
            tr.partitions.push(pr);
        }
        res.topics.push(tr);
    }
    Reply::new(res)
}
