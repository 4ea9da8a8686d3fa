//! The cluster side of the transaction APIs: markers that coordinators send to this
//! broker as a partition leader, and transactional offsets written to the group's
//! replicated partition of `__consumer_offsets`.

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::WriteTxnMarkersRequest;
use kafka_protocol::ResponseError;
use sluice_protocol::batch::ControlType;
use sluice_storage::{Marker, PendingOffset};

use crate::broker::Broker;
use crate::error::NONE;
use crate::internal_topics::GROUP_METADATA_TOPIC;
use crate::replication::coordinator_log::TxnProducer;
use crate::replication::txn_verification::Verification;
use crate::replication::ClusterNode;
use crate::txn::cluster::{verify_in_transaction, ClusterMarkers};
use crate::txn::ProducerRef;

/// WriteTxnMarkers in a cluster, from transaction coordinators (and operators): each
/// marker is appended where this broker leads the partition and answered once on the
/// in-sync replicas; a partition led elsewhere is NOT_LEADER_OR_FOLLOWER.
pub(super) async fn replicated_markers(
    markers: &ClusterMarkers,
    req: WriteTxnMarkersRequest,
    allowed: bool,
) -> Vec<WritableTxnMarkerResult> {
    let mut results = Vec::new();
    for m in req.markers {
        let marker = Marker {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            control: if m.transaction_result {
                ControlType::Commit
            } else {
                ControlType::Abort
            },
            coordinator_epoch: m.coordinator_epoch,
        };
        let mut result = WritableTxnMarkerResult::default().with_producer_id(m.producer_id);
        for t in m.topics {
            let mut tr = WritableTxnMarkerTopicResult::default().with_name(t.name.clone());
            for index in t.partition_indexes {
                let code = if !allowed {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else {
                    match markers.write_local(&t.name, index, marker).await {
                        Ok(()) => NONE,
                        Err(e) => e.code(),
                    }
                };
                tr.partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code),
                );
            }
            result.topics.push(tr);
        }
        results.push(result);
    }
    results
}

/// In a cluster: the transaction's offsets go to the group's partition of
/// `__consumer_offsets` as the producer's transactional batch, once its transaction
/// coordinator confirms that the partition is in the transaction (AddOffsetsToTxn added
/// it), and are answered when on the in-sync replicas.
pub(super) async fn replicated_txn_offsets(
    broker: &Broker,
    node: &ClusterNode,
    id: &str,
    producer: ProducerRef,
    group: &str,
    offsets: Vec<PendingOffset>,
) -> Result<(), ResponseError> {
    let topic = GROUP_METADATA_TOPIC;
    let partition = broker.groups.partition_of(group);
    let pid = producer.producer_id;
    let epoch = producer.producer_epoch;
    let v = node.txn_verification.begin(topic, partition, pid, epoch);
    if v != Verification::Known {
        let verified =
            verify_in_transaction(node, &broker.txns, id, producer, topic, partition).await;
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
                .write_txn_offsets(&node.coordinator_log, group, txn_producer, offsets)
        })
        // The transaction ended while it was verified.
        .unwrap_or(Err(ResponseError::InvalidTxnState))?;
    super::groups::durable(broker, group).await
}
