//! ListOffsets: earliest, latest, by timestamp, and max-timestamp lookups.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;
use sluice_storage::{Partition, StorageError, TimestampOffset};

use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::{code, storage_error_code, NONE};
use crate::session::Session;

answer!(ListOffsetsResponse: [topics => partitions => error_code]);

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Kafka's `timestampMinSupportedVersion`: the first ListOffsets version that may carry each
/// special timestamp; any other negative timestamp is unsupported at every version.
fn min_version(timestamp: i64) -> Option<i16> {
    match timestamp {
        EARLIEST | LATEST => Some(1),
        MAX_TIMESTAMP => Some(7),
        EARLIEST_LOCAL => Some(8),
        LATEST_TIERED => Some(9),
        _ => None,
    }
}

/// Kafka's `isListOffsetsTimestampUnsupported`, answered UNSUPPORTED_VERSION per partition.
fn unsupported(timestamp: i64, version: i16) -> bool {
    timestamp < 0 && min_version(timestamp).is_none_or(|min| version < min)
}

/// Answers ListOffsets.
pub(crate) async fn handle(
    broker: &Broker,
    session: &Session,
    req: ListOffsetsRequest,
    version: i16,
) -> Reply<ListOffsetsResponse> {
    let mut r = ListOffsetsResponse::default();
    let read_committed = req.isolation_level == 1;
    for topic in req.topics {
        let allowed = session.may(
            broker,
            Operation::Describe,
            Resource::Topic,
            topic.name.as_str(),
        );
        let found = broker.storage.topic(topic.name.as_str());
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = topic.name.clone();
        for p in topic.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            let partition = found.as_ref().and_then(|t| t.partition(p.partition_index));
            // In a cluster only the leader answers (KIP-320 checks the client's epoch).
            let not_here = match (&broker.cluster, partition) {
                (Some(c), Some(_)) => c
                    .replicas
                    .check_leader(
                        topic.name.as_str(),
                        p.partition_index,
                        p.current_leader_epoch,
                    )
                    .err()
                    .map(|n| n.error),
                _ => None,
            };
            match partition {
                _ if !allowed => pr.error_code = code(ResponseError::TopicAuthorizationFailed),
                Some(_) if not_here.is_some() => pr.error_code = not_here.unwrap_or(NONE),
                // Kafka checks the timestamp before it looks the partition up.
                _ if unsupported(p.timestamp, version) => {
                    pr.error_code = code(ResponseError::UnsupportedVersion)
                }
                None => pr.error_code = code(ResponseError::UnknownTopicOrPartition),
                Some(partition) => {
                    match lookup(broker, partition, p.timestamp, read_committed).await {
                        Ok(found) => {
                            pr.error_code = NONE;
                            if let Some(f) = found {
                                pr.offset = f.offset;
                                pr.timestamp = f.timestamp;
                                // Nothing is tiered: Kafka answers -5 with offset and epoch -1.
                                if version >= 4 && (p.timestamp != LATEST_TIERED || f.offset >= 0) {
                                    pr.leader_epoch = partition.leader_epoch();
                                }
                            }
                        }
                        Err(LookupError::Local(e)) => {
                            tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "offset lookup failed");
                            pr.error_code = storage_error_code(&e);
                        }
                        Err(LookupError::Remote(e)) => {
                            tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "offset lookup in the remote tier failed");
                            pr.error_code = code(ResponseError::KafkaStorageError);
                        }
                    }
                }
            }
            tr.partitions.push(pr);
        }
        r.topics.push(tr);
    }
    Reply::new(r)
}

/// Why a lookup failed: the local log, or the remote tier.
enum LookupError {
    Local(StorageError),
    Remote(sluice_tier::TierError),
}

impl From<StorageError> for LookupError {
    fn from(e: StorageError) -> Self {
        LookupError::Local(e)
    }
}

/// One lookup; a read-committed client sees the log only up to the last stable offset.
/// Timestamps below the local log start are looked up in the remote tier.
async fn lookup(
    broker: &Broker,
    p: &Partition,
    timestamp: i64,
    read_committed: bool,
) -> Result<Option<TimestampOffset>, LookupError> {
    let at = |offset| {
        Some(TimestampOffset {
            offset,
            timestamp: -1,
        })
    };
    let fetchable = if read_committed {
        p.last_stable_offset()
    } else {
        p.high_watermark()
    };
    let below_fetchable = |found: Option<TimestampOffset>| found.filter(|f| f.offset < fetchable);
    // Remote segments wholly below the local log: what only the remote tier holds.
    let local_start = p.local_log_start_offset();
    let remote: Vec<_> = match &broker.tier {
        Some(_) => p
            .remote_segments()
            .into_iter()
            .filter(|s| s.base_offset < local_start)
            .collect(),
        None => Vec::new(),
    };
    Ok(match timestamp {
        LATEST => at(fetchable),
        EARLIEST => at(p.log_start_offset()),
        EARLIEST_LOCAL => at(local_start),
        // Nothing tiered: Kafka answers -1.
        LATEST_TIERED => at(p.highest_remote_offset().unwrap_or(-1)),
        MAX_TIMESTAMP => {
            let local = p.max_timestamp_offset()?;
            let remote_max = remote.iter().max_by_key(|s| s.max_timestamp);
            match (&broker.tier, remote_max) {
                (Some(tier), Some(seg))
                    if local.is_none_or(|l| seg.max_timestamp > l.timestamp) =>
                {
                    below_fetchable(
                        tier.reader
                            .max_timestamp_offset(seg, p.log_start_offset())
                            .await
                            .map_err(LookupError::Remote)?,
                    )
                }
                _ => below_fetchable(local),
            }
        }
        t if t >= 0 => {
            let in_remote = match &broker.tier {
                Some(tier) if remote.iter().any(|s| s.max_timestamp >= t) => tier
                    .reader
                    .offset_for_timestamp(&remote, t, p.log_start_offset())
                    .await
                    .map_err(LookupError::Remote)?,
                _ => None,
            };
            match in_remote {
                Some(found) => below_fetchable(Some(found)),
                None => below_fetchable(p.offset_for_timestamp(t)?),
            }
        }
        // Refused as unsupported before the lookup.
        _ => None,
    })
}
