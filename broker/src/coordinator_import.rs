//! A single node's data directory from before the coordinators kept their state in the
//! internal topics: its consumer groups, committed offsets and transactional ids were in
//! the index (RocksDB). At start-up they are written to `__consumer_offsets` and
//! `__transaction_state` as the coordinators write them, flushed, and only then removed
//! from the index. A crash in between imports the same state again, which the partitions'
//! last-value-per-key replay makes harmless.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_config::BrokerConfig;
use sluice_storage::{PendingOffset, Storage, StorageError, TxnState};

use crate::coordinator_log::{CoordinatorLog, TxnProducer};
use crate::group::ports::GroupStore;
use crate::group::GroupCoordinator;
use crate::internal_topics::{placement_for, GROUP_METADATA_TOPIC, TRANSACTION_STATE_TOPIC};
use crate::txn::ports::TxnStore;

/// The stores the state moves into.
pub(crate) struct Targets<'a> {
    /// `__consumer_offsets` and `__transaction_state`.
    pub(crate) log: &'a CoordinatorLog,
    /// Groups and committed offsets.
    pub(crate) groups: &'a dyn GroupStore,
    /// Writes a transaction's pending offsets as the producer's transactional batch.
    pub(crate) group_coordinator: &'a GroupCoordinator,
    /// Transactional ids.
    pub(crate) txns: &'a dyn TxnStore,
}

/// Moves the groups and transactional ids left in the index into the internal topics.
/// Before the coordinators load anything.
pub(crate) async fn import_legacy_state(
    storage: &Arc<Storage>,
    config: &BrokerConfig,
    to: Targets<'_>,
) -> Result<(), StorageError> {
    let groups = storage.load_groups()?;
    let txns = storage.load_txns()?;
    if groups.is_empty() && txns.is_empty() {
        return Ok(());
    }
    tracing::info!(
        groups = groups.len(),
        transactional_ids = txns.len(),
        "moving consumer groups and transactions from the index into {GROUP_METADATA_TOPIC} and {TRANSACTION_STATE_TOPIC}"
    );
    for topic in [GROUP_METADATA_TOPIC, TRANSACTION_STATE_TOPIC] {
        if storage.topic(topic).is_none() {
            let (partitions, _, configs) = placement_for(config, false, topic);
            storage.create_topic(topic, partitions, configs)?;
        }
    }
    for (id, record, offsets) in &groups {
        if let Some(record) = record {
            to.groups.store_group(id, record)?;
        }
        if !offsets.is_empty() {
            to.groups.commit_offsets(id, offsets)?;
        }
    }
    for (id, record) in &txns {
        let mut record = record.clone();
        // The group's partition of `__consumer_offsets` joins the transaction instead of
        // its name, and its pending offsets wait there for the transaction's marker.
        let mut joined: Vec<String> = std::mem::take(&mut record.groups);
        let pending = std::mem::take(&mut record.pending_offsets);
        joined.extend(pending.iter().map(|p| p.group.clone()));
        for group in joined {
            let tp = (
                GROUP_METADATA_TOPIC.to_string(),
                to.group_coordinator.partition_of(&group),
            );
            if !record.partitions.contains(&tp) {
                record.partitions.push(tp);
            }
        }
        if matches!(record.state, TxnState::Ongoing | TxnState::PrepareCommit) {
            let producer = TxnProducer {
                producer_id: record.producer_id,
                producer_epoch: record.producer_epoch,
            };
            let mut by_group: BTreeMap<String, Vec<PendingOffset>> = BTreeMap::new();
            for p in pending {
                by_group.entry(p.group.clone()).or_default().push(p);
            }
            for (group, offsets) in by_group {
                to.group_coordinator
                    .write_txn_offsets(to.log, &group, producer, offsets)
                    .map_err(|e| {
                        StorageError::Corrupt(format!(
                            "offsets of transactional id {id} for group {group}: {e:?}"
                        ))
                    })?;
            }
        }
        to.txns.store_txn(id, &record)?;
    }
    for topic in [GROUP_METADATA_TOPIC, TRANSACTION_STATE_TOPIC] {
        for p in storage
            .topic(topic)
            .map(|t| t.partitions.clone())
            .unwrap_or_default()
        {
            if p.has_unflushed() {
                p.flush_now().await?;
            }
        }
    }
    for (id, _, _) in &groups {
        storage.delete_group(id)?;
    }
    for (id, _) in &txns {
        storage.delete_txn(id)?;
    }
    tracing::info!("consumer groups and transactions now live in the internal topics");
    Ok(())
}
