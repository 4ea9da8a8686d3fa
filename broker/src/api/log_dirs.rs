//! DescribeLogDirs: the one data directory and the size of each partition in it (or
//! KAFKA_STORAGE_ERROR once it failed), and with tiered storage a second entry,
//! `remote:<store>`, with each tiered partition's bytes in the remote tier;
//! AlterReplicaLogDirs: moving a replica to the directory it is in already.

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::topic_name;
use crate::acl::Operation;
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::{code, NONE};
use crate::session::Session;

answer!(DescribeLogDirsResponse: [error_code], [results => error_code]);
answer!(AlterReplicaLogDirsResponse: [results => partitions => error_code]);

/// Answers DescribeLogDirs for the requested partitions (all, when `topics` is null);
/// partitions that do not exist are left out, as Kafka leaves them out.
pub(crate) async fn describe_log_dirs(
    broker: &Broker,
    session: &Session,
    req: DescribeLogDirsRequest,
    version: i16,
) -> Reply<DescribeLogDirsResponse> {
    if !session.may_cluster(broker, Operation::Describe) {
        let mut r = DescribeLogDirsResponse::default();
        if version >= 3 {
            r.error_code = ResponseError::ClusterAuthorizationFailed.code();
        }
        return Reply::new(r);
    }
    let dir = &broker.config.log_dir;
    let shown = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_error_code(NONE)
        .with_log_dir(StrBytes::from_string(shown.display().to_string()));
    if broker.storage.log_dir_health().is_offline() {
        // Kafka's answer for an offline log dir: the error and no partitions.
        result.error_code = ResponseError::KafkaStorageError.code();
        let mut res = DescribeLogDirsResponse::default();
        res.results = vec![result];
        return Reply::new(res);
    }
    if version >= 4 {
        // Not measured: Kafka's value for an unknown size.
        result.total_bytes = -1;
        result.usable_bytes = -1;
    }
    let wanted: Vec<(String, Option<Vec<i32>>)> = match &req.topics {
        None => broker
            .storage
            .topic_names()
            .into_iter()
            .map(|n| (n, None))
            .collect(),
        Some(ts) => ts
            .iter()
            .map(|t| (t.topic.to_string(), Some(t.partitions.clone())))
            .collect(),
    };
    let mut remote_result = broker.tier.as_ref().map(|t| {
        let mut r = DescribeLogDirsResult::default()
            .with_error_code(NONE)
            .with_log_dir(StrBytes::from_string(format!(
                "remote:{}",
                t.manager.store().describe()
            )));
        if version >= 4 {
            r.total_bytes = -1;
            r.usable_bytes = -1;
        }
        r
    });
    for (name, partitions) in wanted {
        let Some(topic) = broker.storage.topic(&name) else {
            continue;
        };
        let mut indexes: Vec<i32> =
            partitions.unwrap_or_else(|| (0..topic.record.partitions).collect());
        if let Some(cluster) = &broker.cluster {
            // Only the replicas this broker hosts, as Kafka lists them.
            let view = cluster.view.borrow();
            let me = broker.config.node_id;
            indexes.retain(|i| {
                view.topics
                    .get(&name)
                    .and_then(|t| t.assignment.get(*i as usize))
                    .is_some_and(|replicas| replicas.contains(&me))
            });
        }
        if let Some(remote) = remote_result.as_mut() {
            let parts: Vec<DescribeLogDirsPartition> = indexes
                .iter()
                .filter_map(|i| topic.partition(*i).map(|p| (*i, p)))
                .filter(|(_, p)| p.tiered() || p.remote_size_bytes() > 0)
                .map(|(i, p)| {
                    DescribeLogDirsPartition::default()
                        .with_partition_index(i)
                        .with_partition_size(
                            i64::try_from(p.remote_size_bytes()).unwrap_or(i64::MAX),
                        )
                        .with_offset_lag(0)
                        .with_is_future_key(false)
                })
                .collect();
            if !parts.is_empty() {
                remote.topics.push(
                    DescribeLogDirsTopic::default()
                        .with_name(topic_name(&name))
                        .with_partitions(parts),
                );
            }
        }
        let parts: Vec<DescribeLogDirsPartition> = indexes
            .into_iter()
            .filter_map(|i| {
                let p = topic.partition(i)?;
                Some(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(i)
                        .with_partition_size(i64::try_from(p.size_bytes()).unwrap_or(i64::MAX))
                        .with_offset_lag(0)
                        .with_is_future_key(false),
                )
            })
            .collect();
        if !parts.is_empty() {
            result.topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(topic_name(&name))
                    .with_partitions(parts),
            );
        }
    }
    let mut res = DescribeLogDirsResponse::default();
    res.error_code = NONE;
    res.results = vec![result];
    res.results.extend(remote_result);
    Reply::new(res)
}

/// Kafka's `UnifiedLog.logFutureDirName` is `<topic>-<partition>.<32 hex digits>-future`;
/// a replica whose name would pass 255 bytes cannot be moved (KAFKA-4893).
fn future_dir_name_too_long(topic: &str, partition: i32) -> bool {
    topic.len() + 1 + partition.to_string().len() + 1 + 32 + "-future".len() > 255
}

/// Answers AlterReplicaLogDirs as Kafka's `ReplicaManager.alterReplicaLogDirs`. Sluice has
/// one data directory: moving a replica to it succeeds (it is there already), any other
/// path is LOG_DIR_NOT_FOUND, and a partition that does not exist UNKNOWN_TOPIC_OR_PARTITION.
pub(crate) async fn alter_replica_log_dirs(
    broker: &Broker,
    session: &Session,
    req: AlterReplicaLogDirsRequest,
    _version: i16,
) -> Reply<AlterReplicaLogDirsResponse> {
    let allowed = session.may_cluster(broker, Operation::Alter);
    let dir = &broker.config.log_dir;
    // Kafka compares with the directory's absolute path; DescribeLogDirs here shows the
    // canonical one, so either names it.
    let known: Vec<String> = [
        std::path::absolute(dir).ok(),
        std::fs::canonicalize(dir).ok(),
    ]
    .into_iter()
    .flatten()
    .map(|p| p.display().to_string())
    .collect();
    // Kafka keys the request by partition: a partition named twice keeps its last directory.
    let mut wanted: indexmap::IndexMap<(TopicName, i32), String> = indexmap::IndexMap::new();
    for d in &req.dirs {
        for t in &d.topics {
            for p in &t.partitions {
                wanted.insert((t.name.clone(), *p), d.path.to_string());
            }
        }
    }
    let mut res = AlterReplicaLogDirsResponse::default();
    for ((topic, partition), path) in wanted {
        let error = if !allowed {
            ResponseError::ClusterAuthorizationFailed.code()
        } else if future_dir_name_too_long(&topic, partition) {
            code(ResponseError::InvalidTopicException)
        } else if !known.contains(&path) {
            code(ResponseError::LogDirNotFound)
        } else if broker.storage.partition(&topic, partition).is_none() {
            code(ResponseError::UnknownTopicOrPartition)
        } else {
            NONE
        };
        let result = AlterReplicaLogDirPartitionResult::default()
            .with_partition_index(partition)
            .with_error_code(error);
        match res.results.iter_mut().find(|r| r.topic_name == topic) {
            Some(r) => r.partitions.push(result),
            None => res.results.push(
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(topic)
                    .with_partitions(vec![result]),
            ),
        }
    }
    Reply::new(res)
}
