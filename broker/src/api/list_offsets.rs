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
                Some(partition) => match lookup(partition, p.timestamp, read_committed) {
                    Ok(found) => {
                        pr.error_code = NONE;
                        if let Some(f) = found {
                            pr.offset = f.offset;
                            pr.timestamp = f.timestamp;
                            // Nothing is tiered: Kafka answers -5 with offset and epoch -1.
                            if version >= 4 && p.timestamp != LATEST_TIERED {
                                pr.leader_epoch = partition.leader_epoch();
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "offset lookup failed");
                        pr.error_code = storage_error_code(&e);
                    }
                },
            }
            tr.partitions.push(pr);
        }
        r.topics.push(tr);
    }
    Reply::new(r)
}

/// One lookup; a read-committed client sees the log only up to the last stable offset.
fn lookup(
    p: &Partition,
    timestamp: i64,
    read_committed: bool,
) -> Result<Option<TimestampOffset>, StorageError> {
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
    Ok(match timestamp {
        LATEST => at(fetchable),
        EARLIEST | EARLIEST_LOCAL => at(p.log_start_offset()),
        // Nothing is tiered: Kafka answers -1.
        LATEST_TIERED => at(-1),
        MAX_TIMESTAMP => below_fetchable(p.max_timestamp_offset()?),
        t if t >= 0 => below_fetchable(p.offset_for_timestamp(t)?),
        // Refused as unsupported before the lookup.
        _ => None,
    })
}
