//! ReadShareGroupState and WriteShareGroupState (KIP-932): a partition leader reading and
//! writing share-partition state at this broker as its share coordinator. Brokers send
//! them to each other, so they need ClusterAction, as in Kafka.

use kafka_protocol::messages::read_share_group_state_response::{
    PartitionResult as ReadPartition, ReadStateResult, StateBatch as ReadBatch,
};
use kafka_protocol::messages::write_share_group_state_response::{
    PartitionResult as WritePartition, WriteStateResult,
};
use kafka_protocol::messages::{
    ReadShareGroupStateRequest, ReadShareGroupStateResponse, WriteShareGroupStateRequest,
    WriteShareGroupStateResponse,
};
use kafka_protocol::ResponseError;

use crate::acl::Operation;
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::NONE;
use crate::session::Session;
use crate::share::records::{ShareKey, ShareState, StateBatch};

answer!(ReadShareGroupStateResponse: [results => partitions => error_code]);
answer!(WriteShareGroupStateResponse: [results => partitions => error_code]);

/// ReadShareGroupState: the state of each named share-partition (start offset -1 when it
/// has none yet).
pub(crate) async fn read_share_group_state(
    broker: &Broker,
    session: &Session,
    req: ReadShareGroupStateRequest,
    _version: i16,
) -> Reply<ReadShareGroupStateResponse> {
    let allowed = session.may_cluster(broker, Operation::ClusterAction);
    let mut res = ReadShareGroupStateResponse::default();
    for t in &req.topics {
        let mut out = ReadStateResult::default().with_topic_id(t.topic_id);
        for p in &t.partitions {
            let key = ShareKey {
                group: req.group_id.to_string(),
                topic_id: t.topic_id,
                partition: p.partition,
            };
            let mut r = ReadPartition::default()
                .with_partition(p.partition)
                .with_start_offset(-1);
            let read = if allowed {
                broker.share_coordinator.read(&key)
            } else {
                Err(ResponseError::ClusterAuthorizationFailed)
            };
            match read {
                Ok(Some(s)) => {
                    r.state_epoch = s.state_epoch;
                    r.start_offset = s.start_offset;
                    r.state_batches = s
                        .batches
                        .iter()
                        .map(|b| {
                            ReadBatch::default()
                                .with_first_offset(b.first_offset)
                                .with_last_offset(b.last_offset)
                                .with_delivery_state(b.delivery_state)
                                .with_delivery_count(b.delivery_count)
                        })
                        .collect();
                }
                Ok(None) => {}
                Err(e) => r.error_code = e.code(),
            }
            out.partitions.push(r);
        }
        res.results.push(out);
    }
    Reply::new(res)
}

/// WriteShareGroupState: replaces each named share-partition's state, answered once
/// durable.
pub(crate) async fn write_share_group_state(
    broker: &Broker,
    session: &Session,
    req: WriteShareGroupStateRequest,
    _version: i16,
) -> Reply<WriteShareGroupStateResponse> {
    let allowed = session.may_cluster(broker, Operation::ClusterAction);
    let mut res = WriteShareGroupStateResponse::default();
    for t in &req.topics {
        let mut out = WriteStateResult::default().with_topic_id(t.topic_id);
        for p in &t.partitions {
            let key = ShareKey {
                group: req.group_id.to_string(),
                topic_id: t.topic_id,
                partition: p.partition,
            };
            let state = ShareState {
                state_epoch: p.state_epoch,
                leader_epoch: p.leader_epoch,
                start_offset: p.start_offset,
                batches: p
                    .state_batches
                    .iter()
                    .map(|b| StateBatch {
                        first_offset: b.first_offset,
                        last_offset: b.last_offset,
                        delivery_state: b.delivery_state,
                        delivery_count: b.delivery_count,
                    })
                    .collect(),
            };
            let code = if !allowed {
                ResponseError::ClusterAuthorizationFailed.code()
            } else {
                match broker.share_coordinator.write(&key, Some(state)).await {
                    Ok(()) => NONE,
                    Err(e) => e.code(),
                }
            };
            let mut r = WritePartition::default().with_partition(p.partition);
            r.error_code = code;
            out.partitions.push(r);
        }
        res.results.push(out);
    }
    Reply::new(res)
}
