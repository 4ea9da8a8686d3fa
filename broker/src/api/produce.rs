//! Produce: validate each partition's batch, append it, wait for the flush policy, answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_protocol::batch::{read_header, split_batches, Compression};
use sluice_storage::{now_ms, AppendError, Partition, RecordError, StorageError};

use crate::acl::{Operation, Resource};
use crate::api::reply::{Answer, Body, QuotaUse, Reply};
use crate::broker::Broker;
use crate::error::{append_error_code, code, storage_error_code, NONE};
use crate::replication::manager::NotHere;
use crate::replication::txn_verification::Verification;
use crate::replication::ReplicaManager;
use crate::session::Session;
use crate::txn::cluster::verify_in_transaction;
use crate::txn::{ProducerRef, TxnVersion};

fn partition_response(
    index: i32,
    error_code: i16,
    message: Option<String>,
    version: i16,
) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    p.error_code = error_code;
    p.base_offset = -1;
    p.log_append_time_ms = -1;
    // error_message exists from v8; a field outside the version must keep its default.
    if version >= 8 {
        p.error_message = message.map(StrBytes::from_string);
    }
    p
}

fn batch_index_error(e: &RecordError) -> BatchIndexAndErrorMessage {
    let mut out = BatchIndexAndErrorMessage::default();
    out.batch_index = e.batch_index;
    out.batch_index_error_message = Some(StrBytes::from_string(e.message.clone()));
    out
}

/// A client's batch, appended as the leader in `leader_epoch` in a cluster.
fn append_batch(
    partition: &Partition,
    leader_epoch: Option<i32>,
    header: &sluice_protocol::batch::BatchHeader,
    batch: &bytes::Bytes,
) -> Result<sluice_storage::AppendInfo, AppendError> {
    match leader_epoch {
        Some(epoch) => partition.append_as_leader(epoch, *header, batch, now_ms()),
        None => partition.append(*header, batch, now_ms()),
    }
}

/// What a Produce's appends leave to do before it is answered.
struct PendingFlushes {
    acks: i16,
    flushes: Vec<PendingFlush>,
    /// `acks=all` in a cluster: the high watermark must pass each of these.
    replications: Vec<PendingReplication>,
    /// Where replication is waited on (a cluster member only).
    replicas: Option<Arc<ReplicaManager>>,
    /// The request's `timeout_ms`.
    timeout: Duration,
}

/// One partition's replication still to wait for, with its place in the response.
struct PendingReplication {
    topic: usize,
    answer: usize,
    name: String,
    index: i32,
    last_offset: i64,
    min_insync_replicas: i32,
}

/// One partition's fsync still to wait for, with its place in the response.
struct PendingFlush {
    /// Index of the topic in the response.
    topic: usize,
    /// Index of the partition within that topic's answers.
    answer: usize,
    partition: Arc<Partition>,
    /// The offset the fsync must cover.
    last_offset: i64,
}

impl PendingFlushes {
    /// Waits for the fsyncs the flush policy asks for, then gives the answer (`None` for
    /// `acks=0`, which gets no response). One fsync per partition covers every request
    /// appended before it ran: group commit. A failed fsync fails its partition.
    /// The connection counts the wait as the request's remote time.
    async fn finish(self, mut response: ProduceResponse) -> Option<ProduceResponse> {
        for f in self.flushes {
            if let Err(e) = f.partition.flush_to(f.last_offset).await {
                tracing::error!(topic = %f.partition.topic, partition = f.partition.index, error = %e, "flush failed");
                let answer = response
                    .responses
                    .get_mut(f.topic)
                    .and_then(|t| t.partition_responses.get_mut(f.answer));
                if let Some(p) = answer {
                    p.error_code = storage_error_code(&e);
                    p.base_offset = -1;
                }
            }
        }
        if let Some(replicas) = &self.replicas {
            for r in &self.replications {
                let waited = replicas
                    .wait_replicated(
                        &r.name,
                        r.index,
                        r.last_offset,
                        r.min_insync_replicas,
                        self.timeout,
                    )
                    .await;
                if let Err(error_code) = waited {
                    tracing::debug!(topic = %r.name, partition = r.index, error_code, "acks=all not satisfied");
                    let answer = response
                        .responses
                        .get_mut(r.topic)
                        .and_then(|t| t.partition_responses.get_mut(r.answer));
                    if let Some(p) = answer {
                        p.error_code = error_code;
                        p.base_offset = -1;
                    }
                }
            }
        }
        (self.acks != 0).then_some(response)
    }

    fn is_empty(&self) -> bool {
        self.flushes.is_empty() && self.replications.is_empty()
    }
}

/// Answers Produce: the batches are appended now; the answer waits for the fsyncs the
/// flush policy asks for, so the connection may read the next request meanwhile.
pub(crate) async fn handle(
    broker: &Broker,
    session: &Session,
    req: ProduceRequest,
    version: i16,
) -> Reply<ProduceResponse> {
    let verified = verify_transactions(broker, &req, version).await;
    let (response, flushes) = append(broker, session, req, version, &verified);
    let body = match (flushes.is_empty(), flushes.acks) {
        (true, 0) => Body::Silent,
        (true, _) => Body::Inline,
        (false, _) => Body::Later(Box::new(move |r| Box::pin(flushes.finish(r)))),
    };
    Reply {
        body,
        ..Reply::new(response).quota(QuotaUse::RequestBytes)
    }
}

impl Answer for ProduceResponse {
    fn error_codes(&self, note: &mut dyn FnMut(i16)) {
        self.responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .for_each(|p| note(p.error_code));
    }

    fn set_throttle_ms(&mut self, ms: i32, version: i16) {
        if version >= 1 {
            self.throttle_time_ms = ms;
        }
    }
}

/// In a cluster, each partition's transactional batch and what its verification gave.
type Verified = HashMap<(String, i32), Result<Verification, ResponseError>>;

/// Asks the transaction coordinator about every partition whose transactional batch is
/// the producer's first there in its transaction, all at once, before the appends: in a
/// cluster whether the partition is in the transaction (KIP-890 verification), and for a
/// transactions v2 client (Produce v12+) to add it. On a single node the appends verify
/// under the coordinator's lock, so only v2's additions are asked for here.
async fn verify_transactions(broker: &Broker, req: &ProduceRequest, version: i16) -> Verified {
    let txn_version = if version >= 12 {
        TxnVersion::V2
    } else {
        TxnVersion::V1
    };
    let mut verified = Verified::new();
    if broker.cluster.is_none() && txn_version == TxnVersion::V1 {
        return verified;
    }
    let mut asks: Vec<BoxFuture<'_, _>> = Vec::new();
    for topic in &req.topic_data {
        for pd in &topic.partition_data {
            let Some(header) = pd.records.as_ref().and_then(|r| read_header(r).ok()) else {
                continue;
            };
            if !(header.is_transactional() && header.has_producer_id()) {
                continue;
            }
            let name = topic.name.to_string();
            let index = pd.index;
            let producer = ProducerRef {
                producer_id: header.producer_id,
                producer_epoch: header.producer_epoch,
            };
            let id = req.transactional_id.as_ref().map(|i| i.to_string());
            let Some(node) = &broker.cluster else {
                asks.push(Box::pin(async move {
                    let answer = match &id {
                        Some(id) => broker
                            .txns
                            .add_to_transaction(
                                id,
                                producer,
                                &[(name.clone(), index)],
                                None,
                                txn_version,
                            )
                            .await
                            .map(|()| Verification::Known)
                            .map_err(implicit_add_error),
                        None => Err(ResponseError::InvalidTxnState),
                    };
                    ((name, index), answer)
                }));
                continue;
            };
            // Another broker's partition is refused in the appends; nothing to ask.
            if node.replicas.check_leader(&name, index, -1).is_err() {
                continue;
            }
            let v = node.txn_verification.begin(
                &name,
                index,
                header.producer_id,
                header.producer_epoch,
            );
            if v == Verification::Known {
                verified.insert((name, index), Ok(v));
                continue;
            }
            asks.push(Box::pin(async move {
                let answer = match &id {
                    Some(id) => {
                        let tp = (name.as_str(), index);
                        verify_in_transaction(node, &broker.txns, id, producer, tp, txn_version)
                            .await
                    }
                    // A transactional batch in a request that names no transactional id.
                    None => Err(ResponseError::InvalidTxnState),
                };
                if answer.is_err() {
                    node.txn_verification
                        .refused(&name, index, producer.producer_id, v);
                }
                ((name, index), answer.map(|()| v))
            }));
        }
    }
    for (tp, answer) in futures::future::join_all(asks).await {
        verified.insert(tp, answer);
    }
    verified
}

/// What Produce answers when a single node's coordinator refuses to add a partition for
/// a transactions v2 client, as a cluster's `verify_in_transaction` maps them.
fn implicit_add_error(e: ResponseError) -> ResponseError {
    match e {
        ResponseError::TransactionAbortable => ResponseError::InvalidTxnState,
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        // The previous transaction's markers are still being written: retriable.
        ResponseError::ConcurrentTransactions => ResponseError::NotEnoughReplicas,
        e => e,
    }
}

/// Validates and appends a Produce's batches; the answer is ready once the returned
/// flushes are done ([`PendingFlushes::finish`]).
fn append(
    broker: &Broker,
    session: &Session,
    req: ProduceRequest,
    version: i16,
    verified: &Verified,
) -> (ProduceResponse, PendingFlushes) {
    let acks = req.acks;
    let timeout_ms = req.timeout_ms;
    // A transactional producer needs Write on its transactional id; each topic needs Write.
    let txn_denied = req
        .transactional_id
        .as_ref()
        .is_some_and(|id| !session.may(broker, Operation::Write, Resource::TransactionalId, id));
    let mut response = ProduceResponse::default();
    let mut pending_flush = Vec::new();
    let mut pending_replication = Vec::new();
    let replicas = broker.cluster.as_ref().map(|c| c.replicas.clone());
    // Leaders named in NOT_LEADER_OR_FOLLOWER answers, for the KIP-951 endpoints.
    let mut leaders = std::collections::BTreeSet::new();
    for topic in req.topic_data {
        let name = topic.name.to_string();
        let denied = if txn_denied {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        } else if !session.may(broker, Operation::Write, Resource::Topic, &name) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else if crate::internal_topics::is_internal(&name) {
            // Kafka: "Cannot append to internal topic"; only coordinators write there.
            Some(ResponseError::InvalidTopicException)
        } else {
            None
        };
        let found = broker.storage.topic(&name);
        let mut tr = TopicProduceResponse::default();
        tr.name = topic.name.clone();
        for pd in topic.partition_data {
            let index = pd.index;
            if !matches!(acks, -1..=1) {
                tr.partition_responses.push(partition_response(
                    index,
                    code(ResponseError::InvalidRequiredAcks),
                    None,
                    version,
                ));
                continue;
            }
            if let Some(e) = denied {
                tr.partition_responses
                    .push(partition_response(index, code(e), None, version));
                continue;
            }
            let Some(partition) = found.as_ref().and_then(|t| t.partition(index)) else {
                tr.partition_responses.push(partition_response(
                    index,
                    code(ResponseError::UnknownTopicOrPartition),
                    None,
                    version,
                ));
                continue;
            };
            let min_insync_replicas = found.as_ref().map_or(1, |t| t.config.min_insync_replicas);
            // The epoch this broker leads in (a cluster member): the append checks it.
            let mut leader_epoch = None;
            if let Some(replicas) = &replicas {
                let checked = replicas.check_leader(&name, index, -1).and_then(|epoch| {
                    if acks == -1 {
                        replicas
                            .check_min_isr(&name, index, min_insync_replicas)
                            .map_err(|error| NotHere {
                                error,
                                leader: -1,
                                leader_epoch: -1,
                            })?;
                    }
                    Ok(epoch)
                });
                match checked {
                    Ok(epoch) => leader_epoch = Some(epoch),
                    Err(not_here) => {
                        let mut p = partition_response(index, not_here.error, None, version);
                        if version >= 10 && not_here.leader >= 0 {
                            p.current_leader = LeaderIdAndEpoch::default()
                                .with_leader_id(BrokerId(not_here.leader))
                                .with_leader_epoch(not_here.leader_epoch);
                            leaders.insert(not_here.leader);
                        }
                        tr.partition_responses.push(p);
                        continue;
                    }
                }
            }
            let records = pd.records.unwrap_or_default();
            let batches = match split_batches(&records) {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!(topic = %name, partition = index, error = %e, "corrupt batch");
                    tr.partition_responses.push(partition_response(
                        index,
                        code(ResponseError::CorruptMessage),
                        Some(e.to_string()),
                        version,
                    ));
                    continue;
                }
            };
            let [(header, batch)] = batches.as_slice() else {
                let msg = format!(
                    "produce requests must carry exactly one record batch per partition, got {}",
                    batches.len()
                );
                tr.partition_responses.push(partition_response(
                    index,
                    code(ResponseError::InvalidRecord),
                    Some(msg),
                    version,
                ));
                continue;
            };
            if version < 7 && header.compression() == Some(Compression::Zstd) {
                tr.partition_responses.push(partition_response(
                    index,
                    code(ResponseError::UnsupportedCompressionType),
                    None,
                    version,
                ));
                continue;
            }
            // Broker-side schema validation refuses the whole batch, naming each record.
            let refused = found
                .as_ref()
                .filter(|t| crate::schema_registry::validates(&t.config))
                .map(|t| {
                    crate::schema_registry::refused_records(
                        broker.schema_registry.as_deref(),
                        &name,
                        &t.config,
                        batch,
                    )
                })
                .unwrap_or_default();
            let appended = if !refused.is_empty() {
                broker
                    .metrics
                    .schemas
                    .validation_failed(&name, refused.len());
                Ok(Err(AppendError::records(refused, false)))
            } else if header.is_transactional() && header.has_producer_id() {
                // KIP-890 verification: the batch's partition must be in the producer's
                // open transaction, checked atomically with the append.
                let producer = ProducerRef {
                    producer_id: header.producer_id,
                    producer_epoch: header.producer_epoch,
                };
                match &broker.cluster {
                    None => match verified.get(&(name.clone(), index)) {
                        Some(Err(e)) => Err(*e),
                        _ => broker
                            .txns
                            .with_verified_partition(producer, &name, index, || {
                                append_batch(partition, leader_epoch, header, batch)
                            }),
                    },
                    Some(node) => match verified.get(&(name.clone(), index)) {
                        Some(Ok(v)) => node
                            .txn_verification
                            .append_if(
                                &name,
                                index,
                                producer.producer_id,
                                producer.producer_epoch,
                                *v,
                                || append_batch(partition, leader_epoch, header, batch),
                            )
                            // A marker for the producer came while it was verified.
                            .ok_or(ResponseError::InvalidTxnState),
                        Some(Err(e)) => Err(*e),
                        None => Err(ResponseError::InvalidTxnState),
                    },
                }
            } else {
                Ok(append_batch(partition, leader_epoch, header, batch))
            };
            let appended = match appended {
                Ok(a) => a,
                Err(e) => {
                    let e = match e {
                        ResponseError::InvalidTxnState if version >= 11 => {
                            ResponseError::TransactionAbortable
                        }
                        e => e,
                    };
                    tracing::debug!(topic = %name, partition = index, error = ?e, "transactional batch refused");
                    let message = match e {
                        ResponseError::InvalidProducerEpoch => format!(
                            "producer epoch {} of producer {} is not the current one",
                            header.producer_epoch, header.producer_id
                        ),
                        ResponseError::InvalidProducerIdMapping => format!(
                            "producer {} belongs to no transactional id",
                            header.producer_id
                        ),
                        ResponseError::NotEnoughReplicas => format!(
                            "the transaction coordinator of producer {} could not be asked whether {name}-{index} is in its transaction",
                            header.producer_id
                        ),
                        _ => format!(
                            "partition {name}-{index} is not part of producer {}'s ongoing transaction",
                            header.producer_id
                        ),
                    };
                    tr.partition_responses.push(partition_response(
                        index,
                        code(e),
                        Some(message),
                        version,
                    ));
                    continue;
                }
            };
            match appended {
                Ok(info) => {
                    broker
                        .metrics
                        .appended(&name, batch.len(), i64::from(header.records_count));
                    let mut p = partition_response(index, NONE, None, version);
                    p.base_offset = info.base_offset;
                    p.log_append_time_ms = info.log_append_time_ms;
                    if version >= 5 {
                        p.log_start_offset = info.log_start_offset;
                    }
                    if let Some(replicas) = &replicas {
                        replicas.appended(&name, index);
                        // A duplicate (a producer's retry) waits too, for the batch it
                        // repeats: the first attempt may have timed out before the
                        // followers had it, and an answer now would acknowledge a batch
                        // only this leader holds (Kafka's DelayedProduce waits alike).
                        if acks == -1 {
                            pending_replication.push(PendingReplication {
                                topic: response.responses.len(),
                                answer: tr.partition_responses.len(),
                                name: name.clone(),
                                index,
                                last_offset: info.last_offset,
                                min_insync_replicas,
                            });
                        }
                    }
                    if info.flush_due {
                        pending_flush.push(PendingFlush {
                            topic: response.responses.len(),
                            answer: tr.partition_responses.len(),
                            partition: partition.clone(),
                            last_offset: info.last_offset,
                        });
                    }
                    tr.partition_responses.push(p);
                }
                Err(e) => {
                    // An offline data directory was logged once, when it failed.
                    if matches!(&e, AppendError::Storage(s) if !matches!(s, StorageError::LogDirOffline(_)))
                    {
                        tracing::error!(topic = %name, partition = index, error = %e, "append failed");
                    } else {
                        tracing::debug!(topic = %name, partition = index, error = %e, "append refused");
                    }
                    let mut p = partition_response(
                        index,
                        append_error_code(&e),
                        Some(e.to_string()),
                        version,
                    );
                    if let AppendError::RecordErrors { records, .. } = &e {
                        // Kafka answers refused records with the log start offset and, from
                        // v8, each record's index and message.
                        if version >= 5 {
                            p.log_start_offset = partition.log_start_offset();
                        }
                        if version >= 8 {
                            p.record_errors = records.iter().map(batch_index_error).collect();
                        }
                    }
                    tr.partition_responses.push(p);
                }
            }
        }
        response.responses.push(tr);
    }
    if version >= 10 {
        response.node_endpoints = leaders
            .into_iter()
            .filter_map(|id| broker.node_endpoint(id, &session.listener))
            .map(|(id, host, port, rack)| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(id))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port)
                    .with_rack(rack.map(StrBytes::from_string))
            })
            .collect();
    }
    (
        response,
        PendingFlushes {
            acks,
            flushes: pending_flush,
            replications: pending_replication,
            replicas,
            timeout: Duration::from_millis(timeout_ms.max(0) as u64),
        },
    )
}
