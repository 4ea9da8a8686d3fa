//! Transactions: AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn, and the
//! markers a coordinator sends to partition leaders in a cluster, or an operator's abort
//! of a hanging transaction (WriteTxnMarkers). The operator views are in `txn_views`.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, ProducerId, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::ResponseError;
use sluice_protocol::batch::ControlType;
use sluice_storage::{now_ms, CommittedOffset, PendingOffset};

use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::NONE;
use crate::internal_topics::GROUP_METADATA_TOPIC;
use crate::session::Session;
use crate::txn::{ProducerRef, TxnVersion};

answer!(AddPartitionsToTxnResponse: [error_code], [results_by_transaction => topic_results => results_by_partition => partition_error_code], [results_by_topic_v3_and_below => results_by_partition => partition_error_code]);
answer!(AddOffsetsToTxnResponse: [error_code]);
answer!(EndTxnResponse: [error_code]);
answer!(TxnOffsetCommitResponse: [topics => partitions => error_code]);
answer!(WriteTxnMarkersResponse: [markers => topics => partitions => error_code]);

/// PRODUCER_FENCED exists from version 2 of AddPartitionsToTxn, AddOffsetsToTxn and
/// EndTxn (4 of InitProducerId); older clients get INVALID_PRODUCER_EPOCH instead.
pub(super) const TXN_AUTH_FAILED: i16 = ResponseError::TransactionalIdAuthorizationFailed.code();

/// Whether the client may do `op` on the transactional id.
pub(crate) fn may_txn(broker: &Broker, session: &Session, op: Operation, id: &str) -> bool {
    session.may(broker, op, Resource::TransactionalId, id)
}

pub(crate) fn fenced_for(e: ResponseError, version: i16, fenced_since: i16) -> i16 {
    if e == ResponseError::ProducerFenced && version < fenced_since {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        e.code()
    }
}

/// The per-partition results of one transaction: `code` for every partition.
fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    mut code: impl FnMut(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(code(&t.name, *p))
                        })
                        .collect(),
                )
        })
        .collect()
}

/// One transaction of an AddPartitionsToTxn request (the client form, or one entry of
/// the batched broker form).
async fn add_partitions_one(
    broker: &Broker,
    id: &str,
    producer: ProducerRef,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    if verify_only {
        return match broker.txns.verify_partitions(id, producer, &partitions) {
            Ok(added) => {
                let mut added = added.into_iter();
                topic_results(topics, |_, _| {
                    if added.next().unwrap_or(false) {
                        NONE
                    } else {
                        ResponseError::TransactionAbortable.code()
                    }
                })
            }
            Err(e) => topic_results(topics, |_, _| e.code()),
        };
    }
    // Kafka adds nothing when any partition is unknown: those get the error, the rest
    // OPERATION_NOT_ATTEMPTED.
    if partitions
        .iter()
        .any(|(t, p)| !broker.topics.partition_exists(t, *p))
    {
        return topic_results(topics, |t, p| {
            if broker.topics.partition_exists(t, p) {
                ResponseError::OperationNotAttempted.code()
            } else {
                ResponseError::UnknownTopicOrPartition.code()
            }
        });
    }
    // A broker adding partitions for a Produce v12+ (v5 of this request) does it for a
    // transactions v2 client.
    let txn_version = if version >= 5 {
        TxnVersion::V2
    } else {
        TxnVersion::V1
    };
    let code = match broker
        .txns
        .add_to_transaction(id, producer, &partitions, None, txn_version)
        .await
    {
        Ok(()) => NONE,
        Err(e) => fenced_for(e, version, 2),
    };
    topic_results(topics, |_, _| code)
}

/// AddPartitionsToTxn: v0-3 from producers, v4+ batched (from brokers, or to verify).
pub(crate) async fn add_partitions_to_txn(
    broker: &Broker,
    session: &Session,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> Reply<AddPartitionsToTxnResponse> {
    let mut res = AddPartitionsToTxnResponse::default();
    if version <= 3 {
        let id = &req.v3_and_below_transactional_id;
        let topics = &req.v3_and_below_topics;
        if !may_txn(broker, session, Operation::Write, id) {
            res.results_by_topic_v3_and_below = topic_results(topics, |_, _| TXN_AUTH_FAILED);
            return Reply::new(res);
        }
        // Kafka adds nothing when a topic may not be written: those get the error, the
        // rest OPERATION_NOT_ATTEMPTED.
        let denied = |t: &str| !session.may(broker, Operation::Write, Resource::Topic, t);
        if topics.iter().any(|t| denied(&t.name)) {
            res.results_by_topic_v3_and_below = topic_results(topics, |t, _| {
                if denied(t) {
                    ResponseError::TopicAuthorizationFailed.code()
                } else {
                    ResponseError::OperationNotAttempted.code()
                }
            });
            return Reply::new(res);
        }
        let producer = ProducerRef {
            producer_id: req.v3_and_below_producer_id.0,
            producer_epoch: req.v3_and_below_producer_epoch,
        };
        res.results_by_topic_v3_and_below = add_partitions_one(
            broker,
            &req.v3_and_below_transactional_id,
            producer,
            &req.v3_and_below_topics,
            false,
            version,
        )
        .await;
        return Reply::new(res);
    }
    // The batched form is for brokers verifying transactions.
    if !session.may_cluster(broker, Operation::ClusterAction) {
        res.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return Reply::new(res);
    }
    res.error_code = NONE;
    for t in &req.transactions {
        let producer = ProducerRef {
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
        };
        let topic_results = add_partitions_one(
            broker,
            &t.transactional_id,
            producer,
            &t.topics,
            t.verify_only,
            version,
        )
        .await;
        res.results_by_transaction.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(topic_results),
        );
    }
    Reply::new(res)
}

/// AddOffsetsToTxn: the group's offsets will be committed with the transaction.
pub(crate) async fn add_offsets_to_txn(
    broker: &Broker,
    session: &Session,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> Reply<AddOffsetsToTxnResponse> {
    let mut res = AddOffsetsToTxnResponse::default();
    if !may_txn(broker, session, Operation::Write, &req.transactional_id) {
        res.error_code = TXN_AUTH_FAILED;
        return Reply::new(res);
    }
    if !session.may(broker, Operation::Read, Resource::Group, &req.group_id) {
        res.error_code = ResponseError::GroupAuthorizationFailed.code();
        return Reply::new(res);
    }
    if req.group_id.is_empty() {
        res.error_code = ResponseError::InvalidGroupId.code();
        return Reply::new(res);
    }
    let producer = ProducerRef {
        producer_id: req.producer_id.0,
        producer_epoch: req.producer_epoch,
    };
    res.error_code = match broker
        .txns
        .add_to_transaction(
            &req.transactional_id,
            producer,
            &[],
            Some(&req.group_id),
            TxnVersion::V1,
        )
        .await
    {
        Ok(()) => NONE,
        Err(e) => fenced_for(e, version, 2),
    };
    Reply::new(res)
}

/// TxnOffsetCommit: offsets that the transaction's end commits or drops.
pub(crate) async fn txn_offset_commit(
    broker: &Broker,
    session: &Session,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> Reply<TxnOffsetCommitResponse> {
    let group = req.group_id.to_string();
    let member = req.member_id.to_string();
    let check = if !may_txn(broker, session, Operation::Write, &req.transactional_id) {
        Err(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !session.may(broker, Operation::Read, Resource::Group, &group) {
        Err(ResponseError::GroupAuthorizationFailed)
    } else if group.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else if let Err(e) = broker.groups.check_coordinator(&group) {
        Err(e)
    } else {
        broker.groups.check_txn_commit(
            &group,
            &member,
            req.group_instance_id.as_deref(),
            req.generation_id,
        )
    };
    let commit_timestamp = now_ms();
    let mut per_partition: Vec<(usize, usize, Option<ResponseError>)> = Vec::new();
    let mut pending = Vec::new();
    let mut res = TxnOffsetCommitResponse::default();
    for (ti, t) in req.topics.iter().enumerate() {
        let mut topic = TxnOffsetCommitResponseTopic::default().with_name(t.name.clone());
        for (pi, p) in t.partitions.iter().enumerate() {
            let metadata = p.committed_metadata.as_deref().unwrap_or_default();
            let error = check.err().or_else(|| {
                if !session.may(broker, Operation::Read, Resource::Topic, &t.name) {
                    return Some(ResponseError::TopicAuthorizationFailed);
                }
                broker
                    .groups
                    .check_commit_entry(&t.name, p.partition_index, metadata)
            });
            if error.is_none() {
                pending.push(PendingOffset {
                    group: group.clone(),
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    committed: CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: metadata.to_string(),
                        commit_timestamp,
                    },
                });
            }
            per_partition.push((ti, pi, error));
            topic.partitions.push(
                TxnOffsetCommitResponsePartition::default().with_partition_index(p.partition_index),
            );
        }
        res.topics.push(topic);
    }
    let producer = ProducerRef {
        producer_id: req.producer_id.0,
        producer_epoch: req.producer_epoch,
    };
    let txn_error = if pending.is_empty() {
        None
    } else {
        let txn_version = if version >= 5 {
            TxnVersion::V2
        } else {
            TxnVersion::V1
        };
        super::txn_offsets::write(
            broker,
            &req.transactional_id,
            producer,
            &group,
            pending,
            txn_version,
        )
        .await
        .err()
    }
    .map(|e| match e {
        // A group not added to the transaction: v4 names it abortable.
        ResponseError::InvalidTxnState if version >= 4 => ResponseError::TransactionAbortable,
        e => e,
    });
    for (ti, pi, error) in per_partition {
        let code = error.or(txn_error).map_or(NONE, |e| e.code());
        res.topics[ti].partitions[pi].error_code = code;
    }
    Reply::new(res)
}

/// EndTxn: commit or abort the producer's transaction; from v5 (transactions v2) with the
/// producer id and epoch the producer goes on with.
pub(crate) async fn end_txn(
    broker: &Broker,
    session: &Session,
    req: EndTxnRequest,
    version: i16,
) -> Reply<EndTxnResponse> {
    let mut res = EndTxnResponse::default();
    if !may_txn(broker, session, Operation::Write, &req.transactional_id) {
        res.error_code = TXN_AUTH_FAILED;
        return Reply::new(res);
    }
    let producer = ProducerRef {
        producer_id: req.producer_id.0,
        producer_epoch: req.producer_epoch,
    };
    let txn_version = if version >= 5 {
        TxnVersion::V2
    } else {
        TxnVersion::V1
    };
    res.producer_id = ProducerId(-1);
    res.producer_epoch = -1;
    match broker
        .txns
        .end_txn(&req.transactional_id, producer, req.committed, txn_version)
        .await
    {
        Ok(next) => {
            res.error_code = NONE;
            if version >= 5 {
                res.producer_id = ProducerId(next.producer_id);
                res.producer_epoch = next.producer_epoch;
            }
        }
        Err(e) => res.error_code = fenced_for(e, version, 2),
    }
    Reply::new(res)
}

/// WriteTxnMarkers, as an operator's admin client sends it to abort a hanging
/// transaction on a partition (KIP-664, `kafka-transactions.sh abort`): an ABORT marker
/// for the producer is written to each named partition. COMMIT markers are the
/// coordinator's alone; a client asking for one is refused.
pub(crate) async fn write_txn_markers(
    broker: &Broker,
    session: &Session,
    req: WriteTxnMarkersRequest,
    _version: i16,
) -> Reply<WriteTxnMarkersResponse> {
    let mut res = WriteTxnMarkersResponse::default();
    let allowed = session.may_cluster(broker, Operation::ClusterAction);
    if let Some(markers) = &broker.txn_markers {
        res.markers = super::txn_cluster::replicated_markers(markers, req, allowed).await;
        return Reply::new(res);
    }
    for marker in req.markers {
        let pid = marker.producer_id.0;
        let mut result = WritableTxnMarkerResult::default().with_producer_id(marker.producer_id);
        for t in marker.topics {
            let topic = broker.storage.topic(&t.name);
            let mut tr = WritableTxnMarkerTopicResult::default().with_name(t.name.clone());
            for index in t.partition_indexes {
                let partition = topic.as_ref().and_then(|tp| tp.partition(index).cloned());
                let code = match partition {
                    _ if !allowed => ResponseError::ClusterAuthorizationFailed.code(),
                    _ if marker.transaction_result => {
                        tracing::warn!(
                            producer_id = pid,
                            topic = t.name.as_str(),
                            partition = index,
                            "refused a COMMIT marker from a client"
                        );
                        ResponseError::ClusterAuthorizationFailed.code()
                    }
                    None => ResponseError::UnknownTopicOrPartition.code(),
                    Some(p) => match p.append_marker(
                        pid,
                        marker.producer_epoch,
                        ControlType::Abort,
                        now_ms(),
                    ) {
                        Ok(info) => {
                            tracing::info!(
                                producer_id = pid,
                                producer_epoch = marker.producer_epoch,
                                topic = t.name.as_str(),
                                partition = index,
                                offset = info.base_offset,
                                "aborted a transaction by operator request"
                            );
                            if t.name.as_str() == GROUP_METADATA_TOPIC {
                                broker.groups.complete_txn_offsets(index, pid, false);
                            }
                            if info.flush_due {
                                match p.flush_to(info.last_offset).await {
                                    Ok(()) => NONE,
                                    Err(e) => crate::error::storage_error_code(&e),
                                }
                            } else {
                                NONE
                            }
                        }
                        Err(e) => crate::error::append_error_code(&e),
                    },
                };
                tr.partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code),
                );
            }
            result.topics.push(tr);
        }
        res.markers.push(result);
    }
    Reply::new(res)
}
