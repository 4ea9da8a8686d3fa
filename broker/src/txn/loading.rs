//! Taking up and giving up partitions of `__transaction_state` (Kafka's
//! `onElection`/`onResignation`): a new leader loads the transactional ids of the partition
//! before it answers for them, then finishes what its predecessor prepared; a former
//! leader forgets them.

use super::TxnCoordinator;

impl TxnCoordinator {
    /// Loads the transactional ids of `partition`, led in `leader_epoch` (the coordinator
    /// epoch of its markers); until done their requests get COORDINATOR_LOAD_IN_PROGRESS.
    /// Blocking: reads the partition. False when the load failed and the partition is not
    /// owned.
    pub(crate) fn load_partition(&self, partition: i32, leader_epoch: i32) -> bool {
        if !self.ownership.start_loading(partition) {
            return false;
        }
        let started = std::time::Instant::now();
        let loaded = match self
            .store
            .load_partition(partition, self.config.state_log_num_partitions)
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(partition, error = %e, "loading transaction state failed");
                self.ownership.release(partition);
                return false;
            }
        };
        let count = loaded.len();
        {
            let mut txns = self.write();
            self.forget(&mut txns, partition);
            for (id, record) in loaded {
                txns.insert(&id, record);
            }
        }
        self.coordinator_epochs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(partition, leader_epoch);
        if !self.ownership.loaded(partition) {
            // Given up while loading.
            self.unload_partition(partition);
            return false;
        }
        let took_ms = started.elapsed().as_millis() as u64;
        if count > 0 {
            tracing::info!(
                partition,
                leader_epoch,
                transactional_ids = count,
                took_ms,
                "loaded transaction state of a led partition"
            );
        } else {
            tracing::debug!(
                partition,
                leader_epoch,
                took_ms,
                "loaded an empty partition of transaction state"
            );
        }
        true
    }

    /// Gives `partition` up: its transactional ids are forgotten here.
    pub(crate) fn unload_partition(&self, partition: i32) {
        self.ownership.release(partition);
        self.coordinator_epochs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&partition);
        let removed = self.forget(&mut self.write(), partition);
        if removed > 0 {
            tracing::info!(
                partition,
                transactional_ids = removed,
                "gave up transaction state"
            );
        }
    }

    /// Removes the ids of `partition` from memory; returns how many.
    fn forget(&self, txns: &mut super::Txns, partition: i32) -> usize {
        let ids: Vec<String> = txns
            .by_id
            .keys()
            .filter(|id| self.ownership.partition_of(id) == partition)
            .cloned()
            .collect();
        for id in &ids {
            if let Some(r) = txns.by_id.remove(id) {
                txns.by_producer.remove(&r.producer_id);
            }
        }
        ids.len()
    }
}
