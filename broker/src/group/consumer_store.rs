//! Writing a KIP-848 group's records to the group store and taking them back after a load
//! (the records themselves are [`super::consumer_records`]).

use super::consumer::ConsumerGroupState;
use super::consumer_records;
use super::state::Group;
use super::GroupCoordinator;

impl GroupCoordinator {
    /// Writes what changed in a consumer group's records since they were last written.
    /// When only `member` can have changed (the group's epochs and member count are those
    /// last written), only its records are compared, so that a steady group's heartbeats
    /// cost one member's encoding each. A failed write is logged; the next change writes
    /// the difference again.
    pub(super) fn persist_consumer(&self, group: &mut Group, member: Option<&str>) {
        let shape = group
            .consumer
            .as_ref()
            .map(|cg| (cg.group_epoch, cg.assignment_epoch, cg.members.len()));
        let (before, now) = match (&group.consumer, member) {
            (Some(cg), Some(id)) if shape == group.consumer_shape => {
                let keys = consumer_records::member_keys(&group.group_id, id);
                let before = keys
                    .iter()
                    .filter_map(|k| {
                        group
                            .consumer_records
                            .get(k)
                            .map(|v| (k.clone(), v.clone()))
                    })
                    .collect();
                (
                    before,
                    consumer_records::encode_member(&group.group_id, cg, id),
                )
            }
            (Some(cg), _) => (
                group.consumer_records.clone(),
                consumer_records::encode(&group.group_id, cg),
            ),
            (None, _) => (group.consumer_records.clone(), Default::default()),
        };
        let writes = consumer_records::diff(&before, &now);
        if writes.is_empty() {
            return;
        }
        match self.store.store_records(&group.group_id, writes.clone()) {
            Ok(()) => {
                for (k, v) in writes {
                    match v {
                        Some(v) => group.consumer_records.insert(k, v),
                        None => group.consumer_records.remove(&k),
                    };
                }
                group.consumer_shape = shape;
            }
            Err(e) => {
                tracing::error!(group = %group.group_id, error = %e, "storing the consumer group failed")
            }
        }
    }

    /// Tombstones for every consumer-protocol record of a group that is going away.
    pub(super) fn forget_consumer_records(
        &self,
        group: &mut Group,
    ) -> Result<(), sluice_storage::StorageError> {
        let writes = consumer_records::diff(&group.consumer_records, &Default::default());
        if writes.is_empty() {
            return Ok(());
        }
        self.store.store_records(&group.group_id, writes)?;
        group.consumer_records.clear();
        group.consumer_shape = None;
        Ok(())
    }

    /// After a load: the subscribed topics' partition counts the target was computed from
    /// are today's, so that a heartbeat bumps the group epoch only when they change.
    pub(super) fn restore_subscription_metadata(&self, cg: &mut ConsumerGroupState) {
        cg.subscription_metadata = self.subscription_metadata(cg);
        cg.resolved_topic_names = cg
            .subscription_metadata
            .keys()
            .filter_map(|id| self.topics.topic_name_by_id(*id))
            .collect();
    }
}
