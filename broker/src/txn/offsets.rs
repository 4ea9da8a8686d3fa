//! Offsets sent to a transaction on a single node: the coordinator holds them with the
//! transaction and hands them to the group coordinator when it commits. (In a cluster they
//! wait in `__consumer_offsets` for the transaction's marker instead.)

use kafka_protocol::ResponseError;
use sluice_storage::{PendingOffset, TxnState};

use super::{ProducerRef, TxnCoordinator};

impl TxnCoordinator {
    /// TxnOffsetCommit: offsets stored with the transaction, made the group's committed
    /// offsets when it commits. The group must have been added by AddOffsetsToTxn.
    pub(crate) async fn commit_offsets(
        &self,
        id: &str,
        producer: ProducerRef,
        group: &str,
        offsets: Vec<PendingOffset>,
    ) -> Result<(), ResponseError> {
        let _guard = self.lock_id(id).await;
        let mut record = self.check_producer(id, producer).map_err(|e| match e {
            ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
            e => e,
        })?;
        if record.state != TxnState::Ongoing || !record.groups.iter().any(|g| g == group) {
            return Err(ResponseError::InvalidTxnState);
        }
        for o in offsets {
            match record
                .pending_offsets
                .iter_mut()
                .find(|p| p.group == o.group && p.topic == o.topic && p.partition == o.partition)
            {
                Some(existing) => *existing = o,
                None => record.pending_offsets.push(o),
            }
        }
        self.store(id, record).await?;
        Ok(())
    }

    /// True when an open transaction holds an offset for the partition, not yet
    /// committed: OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT.
    pub(crate) fn has_pending_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.read().by_id.values().any(|r| {
            r.pending_offsets
                .iter()
                .any(|p| p.group == group && p.topic == topic && p.partition == partition)
        })
    }
}
