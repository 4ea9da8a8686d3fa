//! Fetch from a follower (a replica id of 0 or more): the leader reports a diverging
//! epoch when the follower's log split from its own, or else records the follower's
//! progress (which may move the high watermark and grow the ISR), and serves batches up to the log end
//! offset, long-polling on appends. Followers fetch without fetch sessions.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use sluice_storage::{FileRegion, Isolation, Partition};

use super::MAX_WAIT_CAP;
use crate::acl::Operation;
use crate::api::reply::{Body, PartitionRecords, QuotaUse, Reply};
use crate::api::topic_name;
use crate::broker::Broker;
use crate::error::{code, read_error_code, NONE};
use crate::replication::epochs::FollowerFetch;
use crate::replication::throttle::{self, ReplicationQuota, LEADER_REPLICAS, UNLIMITED};
use crate::replication::ReplicaManager;
use crate::session::Session;

/// One partition a follower asked for.
struct Wanted {
    topic: String,
    index: i32,
    fetch_offset: i64,
    max_bytes: usize,
    partition: Option<Arc<Partition>>,
    /// Set when the partition is answered without records.
    answer: Option<PartitionData>,
    /// A replica the leader's replication quota applies to.
    throttled: bool,
}

/// Answers a follower's Fetch.
pub(super) async fn handle(
    broker: &Broker,
    session: &Session,
    replicas: &ReplicaManager,
    req: FetchRequest,
    replica_id: i32,
) -> Reply<FetchResponse> {
    let allowed = session.may_cluster(broker, Operation::ClusterAction);
    let limit = broker
        .storage
        .effective_config()
        .replication_throttle
        .leader;
    let mut wanted = Vec::new();
    for topic in &req.topics {
        let name = topic.topic.to_string();
        for p in &topic.partitions {
            let mut w = Wanted {
                topic: name.clone(),
                index: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
                partition: None,
                answer: None,
                throttled: false,
            };
            w.answer = if !allowed {
                Some(error_data(
                    p.partition,
                    code(ResponseError::TopicAuthorizationFailed),
                ))
            } else {
                match broker.storage.partition(&name, p.partition) {
                    None => Some(error_data(
                        p.partition,
                        code(ResponseError::UnknownTopicOrPartition),
                    )),
                    Some(partition) => {
                        let checked = replicas.follower_fetched(
                            &name,
                            p.partition,
                            FollowerFetch {
                                replica_id,
                                fetch_offset: p.fetch_offset,
                                last_fetched_epoch: p.last_fetched_epoch,
                                current_leader_epoch: p.current_leader_epoch,
                            },
                        );
                        let answer = match checked {
                            Err(not_here) => {
                                let mut d = error_data(p.partition, not_here.error);
                                d.current_leader = LeaderIdAndEpoch::default()
                                    .with_leader_id(BrokerId(not_here.leader))
                                    .with_leader_epoch(not_here.leader_epoch);
                                Some(d)
                            }
                            Ok(Some(diverged)) => {
                                Some(diverging(&partition, p.partition, diverged))
                            }
                            Ok(None) => None,
                        };
                        w.partition = Some(partition);
                        w.throttled = limit < UNLIMITED
                            && answer.is_none()
                            && throttle::throttled(
                                &broker.storage,
                                LEADER_REPLICAS,
                                &name,
                                p.partition,
                                broker.node_id(),
                            )
                            && !replicas
                                .leader_isr(&name, p.partition)
                                .is_some_and(|isr| isr.contains(&replica_id));
                        answer
                    }
                }
            };
            wanted.push(w);
        }
    }

    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = tokio::time::Instant::now() + max_wait;
    let max_bytes = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    let min_bytes = req.min_bytes.max(1) as usize;
    let waiters: Vec<_> = wanted
        .iter()
        .filter(|w| w.answer.is_none())
        .filter_map(|w| w.partition.as_ref().map(|p| p.subscribe_log_end()))
        .collect();
    let answered = wanted.iter().any(|w| w.answer.is_some());
    let quota = (&replicas.leader_quota, limit);
    let (reads, waited) = super::long_poll::long_poll(
        deadline,
        waiters,
        || read_all(&wanted, max_bytes, quota),
        |reads| {
            let bytes: usize = reads
                .iter()
                .map(|(_, r)| r.as_ref().map_or(0, FileRegion::len))
                .sum();
            bytes >= min_bytes || answered
        },
    )
    .await;

    let throttled_bytes: usize = wanted
        .iter()
        .zip(&reads)
        .filter(|(w, _)| w.throttled)
        .map(|(_, (_, r))| r.as_ref().map_or(0, FileRegion::len))
        .sum();
    replicas.leader_quota.record(throttled_bytes as u64);
    let mut response = FetchResponse::default();
    let mut records = Vec::new();
    for (w, (data, region)) in wanted.into_iter().zip(reads) {
        if response
            .responses
            .last()
            .is_none_or(|t| t.topic.as_str() != w.topic)
        {
            response
                .responses
                .push(FetchableTopicResponse::default().with_topic(topic_name(&w.topic)));
        }
        let topic_index = response.responses.len() - 1;
        let Some(topic) = response.responses.last_mut() else {
            continue;
        };
        if let Some(region) = region {
            records.push(PartitionRecords {
                topic: topic_index,
                partition: topic.partitions.len(),
                region,
            });
        }
        topic.partitions.push(data);
    }
    Reply {
        body: Body::Records(records),
        ..Reply::new(response).quota(QuotaUse::Exempt).waited(waited)
    }
}

/// The answer to a follower whose log diverged: where its last fetched epoch ends here.
fn diverging(p: &Partition, index: i32, (epoch, end_offset): (i32, i64)) -> PartitionData {
    let mut d = error_data(index, NONE);
    d.high_watermark = p.high_watermark();
    d.log_start_offset = p.log_start_offset();
    d.last_stable_offset = p.last_stable_offset();
    d.diverging_epoch = EpochEndOffset::default()
        .with_epoch(epoch)
        .with_end_offset(end_offset);
    d.records = Some(Bytes::new());
    d
}

fn error_data(index: i32, error_code: i16) -> PartitionData {
    let mut d = PartitionData::default();
    d.partition_index = index;
    d.error_code = error_code;
    d.high_watermark = -1;
    d.last_stable_offset = -1;
    d.log_start_offset = -1;
    d.records = Some(Bytes::new());
    d
}

/// Reads each partition up to its log end offset within the response budget (KIP-74:
/// only the first partition with data may exceed it, by its first batch). A throttled
/// partition is answered without records while the leader's quota is exceeded.
fn read_all(
    wanted: &[Wanted],
    max_bytes: usize,
    (quota, limit): (&ReplicationQuota, u64),
) -> Vec<(PartitionData, Option<FileRegion>)> {
    let mut used = 0usize;
    wanted
        .iter()
        .map(|w| {
            if let Some(answer) = &w.answer {
                return (answer.clone(), None);
            }
            let Some(p) = &w.partition else {
                return (
                    error_data(w.index, code(ResponseError::UnknownTopicOrPartition)),
                    None,
                );
            };
            if w.throttled && quota.exceeded(limit) {
                let mut d = error_data(w.index, NONE);
                d.high_watermark = p.high_watermark();
                d.last_stable_offset = p.last_stable_offset();
                d.log_start_offset = p.log_start_offset();
                return (d, None);
            }
            let budget = w.max_bytes.min(max_bytes.saturating_sub(used));
            match p.read_region(w.fetch_offset, budget, Isolation::LogEnd) {
                Ok(data) => {
                    let mut region = data.records.filter(|r| !r.is_empty());
                    let len = region.as_ref().map_or(0, FileRegion::len);
                    if used > 0 && len > budget {
                        region = None;
                    } else {
                        used += len;
                    }
                    let mut d = error_data(w.index, NONE);
                    d.high_watermark = p.high_watermark();
                    d.last_stable_offset = data.last_stable_offset;
                    d.log_start_offset = data.log_start_offset;
                    d.records = region.is_none().then(Bytes::new);
                    (d, region)
                }
                Err(e) => {
                    let mut d = error_data(w.index, read_error_code(&e));
                    d.high_watermark = p.high_watermark();
                    d.log_start_offset = p.log_start_offset();
                    (d, None)
                }
            }
        })
        .collect()
}
