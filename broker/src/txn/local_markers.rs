//! Transaction markers on a single node: every partition is this broker's, so a marker is
//! appended here and flushed under the flush policy; a marker in `__consumer_offsets`
//! then completes the transaction's offsets in the group coordinator.

use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use sluice_protocol::batch::ControlType;
use sluice_storage::{now_ms, Storage};

use super::ports::{MarkerLog, TxnMarkers};
use crate::group::GroupCoordinator;
use crate::internal_topics::GROUP_METADATA_TOPIC;

/// Writes markers to this broker's partitions.
pub(crate) struct LocalMarkers {
    storage: Arc<Storage>,
    groups: Arc<GroupCoordinator>,
}

impl LocalMarkers {
    /// Markers in `storage`'s partitions; offsets in `__consumer_offsets` complete in
    /// `groups`.
    pub(crate) fn new(storage: Arc<Storage>, groups: Arc<GroupCoordinator>) -> Self {
        LocalMarkers { storage, groups }
    }
}

impl MarkerLog for LocalMarkers {
    fn write_markers<'a>(
        &'a self,
        markers: TxnMarkers<'a>,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        Box::pin(async move {
            let m = markers.marker;
            let mut written = Vec::new();
            for (topic, index) in markers.partitions {
                // Deleted since it was added: nothing of the transaction is left there.
                let Some(p) = self.storage.partition(topic, *index) else {
                    continue;
                };
                match p.append_marker(m.producer_id, m.producer_epoch, m.control, now_ms()) {
                    Ok(info) => written.push((p, info.last_offset, info.flush_due)),
                    Err(e) => {
                        tracing::error!(topic, partition = index, error = %e, "writing a transaction marker failed");
                        return Err(ResponseError::KafkaStorageError);
                    }
                }
            }
            for (p, offset, flush_due) in written {
                if flush_due {
                    if let Err(e) = p.flush_to(offset).await {
                        tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flushing a transaction marker failed");
                        return Err(ResponseError::KafkaStorageError);
                    }
                }
                if p.topic == GROUP_METADATA_TOPIC {
                    self.groups.complete_txn_offsets(
                        p.index,
                        m.producer_id,
                        m.control == ControlType::Commit,
                    );
                }
            }
            Ok(())
        })
    }
}
