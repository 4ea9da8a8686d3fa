//! The cluster side of the transaction APIs: markers that coordinators send to this
//! broker as a partition leader.

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::WriteTxnMarkersRequest;
use kafka_protocol::ResponseError;
use sluice_protocol::batch::ControlType;
use sluice_storage::Marker;

use crate::error::NONE;
use crate::txn::cluster::ClusterMarkers;

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
