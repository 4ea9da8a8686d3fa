//! TxnOffsetCommit's offsets, as Kafka's group coordinator writes them: to the group's
//! partition of `__consumer_offsets` as the producer's transactional batch, once its
//! transaction coordinator confirms that the partition is in the transaction
//! (AddOffsetsToTxn added it; for a transactions v2 client, the coordinator adds it
//! now), answered when durable. The transaction's marker later
//! makes them the group's committed offsets or drops them.

use kafka_protocol::ResponseError;
use sluice_storage::PendingOffset;

use crate::broker::Broker;
use crate::coordinator_log::TxnProducer;
use crate::internal_topics::GROUP_METADATA_TOPIC;
use crate::replication::txn_verification::Verification;
use crate::replication::ClusterNode;
use crate::txn::cluster::verify_in_transaction;
use crate::txn::{ProducerRef, TxnVersion};

/// Writes a transaction's offsets for `group`; the error is what TxnOffsetCommit answers.
pub(super) async fn write(
    broker: &Broker,
    id: &str,
    producer: ProducerRef,
    group: &str,
    offsets: Vec<PendingOffset>,
    version: TxnVersion,
) -> Result<(), ResponseError> {
    match &broker.cluster {
        Some(node) => replicated(broker, node, id, producer, group, offsets, version).await,
        None => local(broker, id, producer, group, offsets, version).await,
    }
}

/// On a single node the transaction coordinator is this broker's: it is asked directly,
/// and holds off the transaction's markers while the batch is appended.
async fn local(
    broker: &Broker,
    id: &str,
    producer: ProducerRef,
    group: &str,
    offsets: Vec<PendingOffset>,
    version: TxnVersion,
) -> Result<(), ResponseError> {
    let partition = broker.groups.partition_of(group);
    let tp = [(GROUP_METADATA_TOPIC.to_string(), partition)];
    if version == TxnVersion::V2 {
        broker
            .txns
            .add_to_transaction(id, producer, &tp, None, version)
            .await
            .map_err(implicit_add_error)?;
    }
    // The errors a cluster's verification gives (`verify_in_transaction`).
    let added = broker
        .txns
        .verify_partitions(id, producer, &tp)
        .map_err(|e| match e {
            ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
            ResponseError::ConcurrentTransactions => ResponseError::InvalidTxnState,
            e => e,
        })?;
    if added.first() != Some(&true) {
        return Err(ResponseError::InvalidTxnState);
    }
    let txn_producer = TxnProducer {
        producer_id: producer.producer_id,
        producer_epoch: producer.producer_epoch,
    };
    broker
        .txns
        .with_verified_partition(producer, GROUP_METADATA_TOPIC, partition, || {
            broker
                .groups
                .write_txn_offsets(&broker.coordinator_log, group, txn_producer, offsets)
        })??;
    super::groups::durable(broker, group).await
}

/// In a cluster: the transaction's offsets go to the group's partition of
/// `__consumer_offsets` as the producer's transactional batch, once its transaction
/// coordinator confirms that the partition is in the transaction (AddOffsetsToTxn added
/// it), and are answered when on the in-sync replicas.
async fn replicated(
    broker: &Broker,
    node: &ClusterNode,
    id: &str,
    producer: ProducerRef,
    group: &str,
    offsets: Vec<PendingOffset>,
    version: TxnVersion,
) -> Result<(), ResponseError> {
    let topic = GROUP_METADATA_TOPIC;
    let partition = broker.groups.partition_of(group);
    let pid = producer.producer_id;
    let epoch = producer.producer_epoch;
    let v = node.txn_verification.begin(topic, partition, pid, epoch);
    if v != Verification::Known {
        let verified = verify_in_transaction(
            node,
            &broker.txns,
            id,
            producer,
            (topic, partition),
            version,
        )
        .await;
        if let Err(e) = verified {
            node.txn_verification.refused(topic, partition, pid, v);
            return Err(match e {
                ResponseError::NotEnoughReplicas => ResponseError::CoordinatorNotAvailable,
                e => e,
            });
        }
    }
    let txn_producer = TxnProducer {
        producer_id: pid,
        producer_epoch: epoch,
    };
    node.txn_verification
        .append_if(topic, partition, pid, epoch, v, || {
            broker
                .groups
                .write_txn_offsets(&broker.coordinator_log, group, txn_producer, offsets)
        })
        // The transaction ended while it was verified.
        .unwrap_or(Err(ResponseError::InvalidTxnState))?;
    super::groups::durable(broker, group).await
}

/// What TxnOffsetCommit answers when its transaction coordinator refuses to add the
/// group's partition (the errors a cluster's `verify_in_transaction` gives).
fn implicit_add_error(e: ResponseError) -> ResponseError {
    match e {
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        // The previous transaction's markers are still being written: retriable.
        ResponseError::ConcurrentTransactions => ResponseError::CoordinatorNotAvailable,
        e => e,
    }
}
