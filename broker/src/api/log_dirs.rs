//! DescribeLogDirs: the one data directory and the size of each partition in it.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::topic_name;
use crate::acl::Operation;
use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::error::NONE;

/// Answers DescribeLogDirs for the requested partitions (all, when `topics` is null);
/// partitions that do not exist are left out, as Kafka leaves them out.
pub(crate) fn describe_log_dirs(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
    if !ctx.may_cluster(broker, Operation::Describe) {
        let mut r = DescribeLogDirsResponse::default();
        if version >= 3 {
            r.error_code = ResponseError::ClusterAuthorizationFailed.code();
        }
        return r;
    }
    let dir = &broker.config.log_dir;
    let shown = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_error_code(NONE)
        .with_log_dir(StrBytes::from_string(shown.display().to_string()));
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
    for (name, partitions) in wanted {
        let Some(topic) = broker.storage.topic(&name) else {
            continue;
        };
        let indexes: Vec<i32> =
            partitions.unwrap_or_else(|| (0..topic.record.partitions).collect());
        let parts: Vec<DescribeLogDirsPartition> = indexes
            .into_iter()
            .filter_map(|i| {
                let p = topic.partitions.get(usize::try_from(i).ok()?)?;
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
    res
}
