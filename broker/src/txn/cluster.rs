//! Transactions across a cluster: the coordinator's markers go to each partition's leader
//! (appended here when this broker leads it, sent as WriteTxnMarkers otherwise) and are
//! waited for on the in-sync replicas, as Kafka's coordinator writes them with `acks=all`;
//! a partition leader asks the coordinator whether a producer's transaction includes the
//! partition before the producer's first batch there (KIP-890 verification).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_protocol::batch::ControlType;
use sluice_storage::{now_ms, Marker, Storage};

use super::ports::{MarkerLog, TxnMarkers};
use super::{ProducerRef, TxnCoordinator, TxnVersion};
use crate::group::GroupCoordinator;
use crate::internal_topics::{GROUP_METADATA_TOPIC, TRANSACTION_STATE_TOPIC};
use crate::replication::ClusterNode;

/// WriteTxnMarkers v1 (flexible).
const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// AddPartitionsToTxn v4: the batched, verify-only form brokers send.
const VERIFY_VERSION: i16 = 4;
/// AddPartitionsToTxn v5: what brokers send to add partitions for a transactions v2
/// client.
const ADD_VERSION: i16 = 5;

fn add_version(version: TxnVersion) -> i16 {
    match version {
        TxnVersion::V1 => VERIFY_VERSION,
        TxnVersion::V2 => ADD_VERSION,
    }
}
/// How long the coordinator keeps trying to write one transaction's markers before it
/// gives up for now (the transaction stays prepared; the timer tries again).
const MARKER_DEADLINE: Duration = Duration::from_secs(15);
/// How long a marker waits for the in-sync replicas.
const MARKER_REPLICATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between rounds of markers whose leader moved or did not answer.
const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Writes markers where a cluster member's transactions touched partitions.
pub(crate) struct ClusterMarkers {
    storage: Arc<Storage>,
    node: Arc<ClusterNode>,
    groups: Arc<GroupCoordinator>,
}

impl ClusterMarkers {
    /// Markers through `node`'s replicas and connections; offsets in `__consumer_offsets`
    /// complete in `groups`.
    pub(crate) fn new(
        storage: Arc<Storage>,
        node: Arc<ClusterNode>,
        groups: Arc<GroupCoordinator>,
    ) -> Self {
        ClusterMarkers {
            storage,
            node,
            groups,
        }
    }

    /// Appends a marker to a partition this broker leads and waits for the in-sync
    /// replicas; a marker in `__consumer_offsets` then completes the transaction's offsets.
    pub(crate) async fn write_local(
        &self,
        topic: &str,
        partition: i32,
        marker: Marker,
    ) -> Result<(), ResponseError> {
        let replicas = &self.node.replicas;
        let leader_epoch = replicas
            .check_leader(topic, partition, -1)
            .map_err(|n| code_error(n.error))?;
        let Some(p) = self.storage.partition(topic, partition) else {
            return Err(ResponseError::UnknownTopicOrPartition);
        };
        let min_isr = self
            .storage
            .topic(topic)
            .map_or(1, |t| t.config.min_insync_replicas);
        let info = self
            .node
            .txn_verification
            .with_marker(topic, partition, marker.producer_id, || {
                p.append_marker_as_leader(leader_epoch, marker, now_ms())
            })
            .map_err(|e| code_error(crate::error::append_error_code(&e)))?;
        replicas.appended(topic, partition);
        if info.flush_due {
            p.flush_to(info.last_offset)
                .await
                .map_err(|e| code_error(crate::error::storage_error_code(&e)))?;
        }
        replicas
            .wait_replicated(
                topic,
                partition,
                info.last_offset,
                min_isr,
                MARKER_REPLICATION_TIMEOUT,
            )
            .await
            .map_err(code_error)?;
        if topic == GROUP_METADATA_TOPIC {
            self.groups.complete_txn_offsets(
                partition,
                marker.producer_id,
                marker.control == ControlType::Commit,
            );
        }
        tracing::debug!(topic, partition, producer_id = marker.producer_id, control = ?marker.control, "wrote a transaction marker");
        Ok(())
    }

    /// One round: every partition still to do, by its leader; returns those left.
    async fn round(&self, todo: Vec<(String, i32)>, marker: Marker) -> Vec<(String, i32)> {
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        let mut left = Vec::new();
        {
            let view = self.node.view.borrow();
            for (topic, index) in todo {
                if !view.topics.contains_key(&topic) {
                    // Deleted since it was added: nothing of the transaction is left there.
                    continue;
                }
                match view.partitions.get(&(topic.clone(), index)) {
                    Some(state) if state.leader >= 0 => by_leader
                        .entry(state.leader)
                        .or_default()
                        .push((topic, index)),
                    _ => left.push((topic, index)),
                }
            }
        }
        let me = self.node.replicas.node_id();
        // Every leader at once, and this broker's partitions each at once: one slow
        // follower must not hold up the other markers.
        let rounds = by_leader.into_iter().map(|(leader, partitions)| async move {
            if leader != me {
                return self.send(leader, partitions, marker).await;
            }
            let writes = partitions.into_iter().map(|(topic, index)| async move {
                match self.write_local(&topic, index, marker).await {
                    Ok(()) => None,
                    Err(e) => {
                        tracing::debug!(topic, partition = index, error = ?e, "marker not written yet");
                        Some((topic, index))
                    }
                }
            });
            futures::future::join_all(writes)
                .await
                .into_iter()
                .flatten()
                .collect()
        });
        for not_written in futures::future::join_all(rounds).await {
            left.extend(not_written);
        }
        left
    }

    /// Sends WriteTxnMarkers to another leader; returns the partitions not written.
    async fn send(
        &self,
        leader: i32,
        partitions: Vec<(String, i32)>,
        marker: Marker,
    ) -> Vec<(String, i32)> {
        let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
        for (topic, index) in &partitions {
            match topics.last_mut() {
                Some(t) if t.name.as_str() == topic => t.partition_indexes.push(*index),
                _ => topics.push(
                    WritableTxnMarkerTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.clone())))
                        .with_partition_indexes(vec![*index]),
                ),
            }
        }
        let request =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(marker.producer_id))
                .with_producer_epoch(marker.producer_epoch)
                .with_transaction_result(marker.control == ControlType::Commit)
                .with_coordinator_epoch(marker.coordinator_epoch)
                .with_topics(topics)]);
        let response = match self
            .node
            .broker_client
            .send(leader, &request, WRITE_TXN_MARKERS_VERSION)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(leader, error = %e, "sending transaction markers failed; will retry");
                return partitions;
            }
        };
        let mut left = Vec::new();
        for m in response.markers {
            for t in m.topics {
                for p in t.partitions {
                    if p.error_code == 0 {
                        continue;
                    }
                    let error = ResponseError::try_from_code(p.error_code);
                    if error == Some(ResponseError::TransactionCoordinatorFenced) {
                        tracing::warn!(leader, topic = %t.name.as_str(), partition = p.partition_index, "a later coordinator wrote this producer's markers");
                        continue;
                    }
                    tracing::debug!(leader, topic = %t.name.as_str(), partition = p.partition_index, error = p.error_code, "marker not written yet");
                    left.push((t.name.to_string(), p.partition_index));
                }
            }
        }
        left
    }
}

impl MarkerLog for ClusterMarkers {
    fn write_markers<'a>(
        &'a self,
        markers: TxnMarkers<'a>,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + MARKER_DEADLINE;
            let mut todo = markers.partitions.to_vec();
            loop {
                todo = self.round(todo, markers.marker).await;
                if todo.is_empty() {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(producer_id = markers.marker.producer_id, partitions = ?todo, "transaction markers not written within the deadline");
                    return Err(ResponseError::RequestTimedOut);
                }
                tokio::time::sleep(MARKER_RETRY_BACKOFF).await;
            }
        })
    }
}

fn code_error(code: i16) -> ResponseError {
    ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError)
}

/// Asks the coordinator of transactional id `id` whether the producer's open transaction
/// includes the partition (here, or over the network); for a transactions v2 client,
/// asks it to add the partition instead. Errors are what the producer is told:
/// INVALID_TXN_STATE when it does not, the producer errors as they are, and
/// NOT_ENOUGH_REPLICAS (retriable, as Kafka answers) when the coordinator cannot be asked
/// or is still ending the producer's previous transaction.
pub(crate) async fn verify_in_transaction(
    node: &ClusterNode,
    txns: &TxnCoordinator,
    id: &str,
    producer: ProducerRef,
    (topic, partition): (&str, i32),
    version: TxnVersion,
) -> Result<(), ResponseError> {
    let unavailable = ResponseError::NotEnoughReplicas;
    let Some(coordinator) = node.coordinator(TRANSACTION_STATE_TOPIC, id) else {
        return Err(unavailable);
    };
    let tp = [(topic.to_string(), partition)];
    let code = if coordinator == node.replicas.node_id() {
        match version {
            TxnVersion::V1 => match txns.verify_partitions(id, producer, &tp) {
                Ok(added) if added.first() == Some(&true) => 0,
                Ok(_) => ResponseError::TransactionAbortable.code(),
                Err(e) => e.code(),
            },
            TxnVersion::V2 => match txns
                .add_to_transaction(id, producer, &tp, None, version)
                .await
            {
                Ok(()) => 0,
                Err(e) => e.code(),
            },
        }
    } else {
        let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id.to_string())))
                .with_producer_id(ProducerId(producer.producer_id))
                .with_producer_epoch(producer.producer_epoch)
                .with_verify_only(version == TxnVersion::V1)
                .with_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![partition])]),
        ]);
        match node
            .broker_client
            .send(coordinator, &request, add_version(version))
            .await
        {
            Ok(r) if r.error_code != 0 => r.error_code,
            Ok(r) => r
                .results_by_transaction
                .first()
                .and_then(|t| t.topic_results.first())
                .and_then(|t| t.results_by_partition.first())
                .map_or(ResponseError::UnknownServerError.code(), |p| {
                    p.partition_error_code
                }),
            Err(e) => {
                tracing::info!(coordinator, error = %e, "cannot verify a transaction with its coordinator");
                return Err(unavailable);
            }
        }
    };
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(ResponseError::ConcurrentTransactions) if version == TxnVersion::V2 => {
            Err(unavailable)
        }
        Some(ResponseError::TransactionAbortable | ResponseError::ConcurrentTransactions) => {
            Err(ResponseError::InvalidTxnState)
        }
        Some(ResponseError::ProducerFenced) => Err(ResponseError::InvalidProducerEpoch),
        Some(
            e @ (ResponseError::InvalidProducerEpoch
            | ResponseError::InvalidProducerIdMapping
            | ResponseError::InvalidTxnState),
        ) => Err(e),
        Some(_) => Err(unavailable),
    }
}
