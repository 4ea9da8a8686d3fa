//! The transaction coordinator: transactional ids, producer epochs and fencing, the
//! partitions and offsets of each transaction, and the markers that end it.
//!
//! State per transactional id lives in memory behind one lock and is made durable on every
//! change before a client is answered, in `__transaction_state` as Kafka keeps it: the
//! coordinator of an id is the leader of its partition (this broker for every id on a
//! single node) and loads it when it becomes leader ([`TxnCoordinator::load_partition`]).
//! Ending a transaction is two durable steps, as in Kafka: PrepareCommit/PrepareAbort, then
//! markers in every partition (the group's partition of `__consumer_offsets` included,
//! which decides the transaction's offsets), then CompleteCommit/CompleteAbort. A new
//! coordinator, after a load, finishes whatever was prepared but not completed.
//!
//! Operations on one transactional id run one at a time (a per-id async lock), so a slow
//! marker flush of one transaction never holds up another.

pub(crate) mod cluster;
mod end_v2;
mod loading;
pub(crate) mod local_markers;
pub(crate) mod log_store;
pub(crate) mod ports;
mod records;
#[cfg(test)]
mod tests;
mod timers;
mod version;
mod views;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kafka_protocol::ResponseError;
use sluice_config::TxnConfig;
use sluice_protocol::batch::ControlType;
use sluice_storage::{Marker, StorageError, TxnRecord, TxnState, COORDINATOR_EPOCH};

use crate::clock::{Clock, SystemClock};
use crate::coordinator_ownership::Ownership;
use crate::group::GroupCoordinator;
use crate::internal_topics::GROUP_METADATA_TOPIC;
use ports::{MarkerLog, TxnMarkers, TxnStore};

pub(crate) use version::TxnVersion;
pub(crate) use views::ListFilter;

/// Epochs at or above this are exhausted: the next bump moves to a new producer id, so
/// that `i16::MAX` stays free for one last fence.
const EPOCH_EXHAUSTED: i16 = i16::MAX - 1;

/// A test hook: `SLUICE_CRASH_POINT=end-txn-after-prepare` makes the process abort right
/// after a PrepareCommit/PrepareAbort is durable and before any marker is written, so
/// tests can prove that start-up completes such a transaction.
const CRASH_AFTER_PREPARE: &str = "end-txn-after-prepare";

#[derive(Default)]
struct Txns {
    by_id: HashMap<String, TxnRecord>,
    /// Current producer id → transactional id, for produce-time verification.
    by_producer: HashMap<i64, String>,
}

impl Txns {
    fn insert(&mut self, id: &str, record: TxnRecord) {
        if let Some(old) = self.by_id.get(id) {
            if old.producer_id != record.producer_id {
                self.by_producer.remove(&old.producer_id);
            }
        }
        self.by_producer.insert(record.producer_id, id.to_string());
        self.by_id.insert(id.to_string(), record);
    }
}

/// A transaction's producer, as a request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerRef {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
}

impl ProducerRef {
    /// The producer id and epoch a record holds now.
    fn of(record: &TxnRecord) -> Self {
        ProducerRef {
            producer_id: record.producer_id,
            producer_epoch: record.producer_epoch,
        }
    }
}

/// The broker's transaction coordinator: for every transactional id on a single node, for
/// the ids of the `__transaction_state` partitions it leads in a cluster.
pub(crate) struct TxnCoordinator {
    /// Transaction records and producer ids.
    store: Arc<dyn TxnStore>,
    /// The partitions' logs the markers go to.
    log: Arc<dyn MarkerLog>,
    /// The time source of timeouts and timestamps.
    clock: Arc<dyn Clock>,
    groups: Arc<GroupCoordinator>,
    config: TxnConfig,
    /// Read-locked by produce while it verifies and appends a transactional batch, so
    /// that no batch of a transaction can land after the transaction's markers.
    txns: RwLock<Txns>,
    /// One async lock per transactional id: operations on one id run one at a time.
    id_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    crash_after_prepare: bool,
    /// Which transactional ids this coordinator answers for.
    ownership: Ownership,
    /// The coordinator epoch (the leader epoch it was loaded in) of each owned partition,
    /// written into markers so that partitions refuse a deposed one's.
    coordinator_epochs: Mutex<HashMap<i32, i32>>,
}

impl TxnCoordinator {
    /// A coordinator that answers for no transactional id until a partition of
    /// `__transaction_state` is loaded ([`TxnCoordinator::load_partition`]). A group joins
    /// a transaction as its partition of `__consumer_offsets`, as in Kafka.
    pub(crate) fn new(
        store: Arc<dyn TxnStore>,
        log: Arc<dyn MarkerLog>,
        groups: Arc<GroupCoordinator>,
        config: TxnConfig,
    ) -> Self {
        let ownership = Ownership::nothing(config.state_log_num_partitions);
        TxnCoordinator {
            store,
            log,
            clock: Arc::new(SystemClock),
            groups,
            config,
            txns: RwLock::new(Txns::default()),
            id_locks: Mutex::new(HashMap::new()),
            crash_after_prepare: crash_after_prepare(),
            ownership,
            coordinator_epochs: Mutex::new(HashMap::new()),
        }
    }

    /// For unit tests: a coordinator of every transactional id in `store`, with markers
    /// in `log` and time from `clock`.
    #[cfg(test)]
    pub(crate) fn with_ports(
        store: Arc<dyn TxnStore>,
        log: Arc<dyn MarkerLog>,
        clock: Arc<dyn Clock>,
        groups: Arc<GroupCoordinator>,
        config: TxnConfig,
    ) -> Result<Self, StorageError> {
        let mut txns = Txns::default();
        let partitions = config.state_log_num_partitions;
        for p in 0..partitions {
            for (id, record) in store.load_partition(p, partitions)? {
                txns.insert(&id, record);
            }
        }
        Ok(TxnCoordinator {
            store,
            log,
            clock,
            groups,
            ownership: Ownership::everything(config.state_log_num_partitions),
            config,
            txns: RwLock::new(txns),
            id_locks: Mutex::new(HashMap::new()),
            crash_after_prepare: crash_after_prepare(),
            coordinator_epochs: Mutex::new(HashMap::new()),
        })
    }

    /// Whether this coordinator answers for the transactional id now: NOT_COORDINATOR when
    /// another broker does, COORDINATOR_LOAD_IN_PROGRESS while its state is being loaded.
    pub(crate) fn check_coordinator(&self, id: &str) -> Result<(), ResponseError> {
        self.ownership.check(id)
    }

    /// See [`Ownership::set_leader_hint`].
    pub(crate) fn set_leader_hint(&self, hint: crate::coordinator_ownership::LeaderHint) {
        self.ownership.set_leader_hint(hint);
    }

    /// The coordinator epoch markers of `id`'s transactions carry.
    fn coordinator_epoch(&self, id: &str) -> i32 {
        let partition = self.ownership.partition_of(id);
        self.coordinator_epochs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&partition)
            .copied()
            .unwrap_or(COORDINATOR_EPOCH)
    }

    fn read(&self) -> RwLockReadGuard<'_, Txns> {
        self.txns.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Txns> {
        self.txns.write().unwrap_or_else(|p| p.into_inner())
    }

    async fn lock_id(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .id_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    fn get(&self, id: &str) -> Option<TxnRecord> {
        self.read().by_id.get(id).cloned()
    }

    /// Writes a record durably, then makes it the one in force.
    async fn store(&self, id: &str, mut record: TxnRecord) -> Result<TxnRecord, ResponseError> {
        record.last_update_ms = self.clock.now_ms();
        self.store.store_txn(id, &record).map_err(|e| match e {
            StorageError::NotLeader(_) => ResponseError::NotCoordinator,
            e => {
                tracing::error!(transactional_id = id, error = %e, "storing transaction state failed");
                ResponseError::CoordinatorNotAvailable
            }
        })?;
        // Kafka's transaction coordinator answers a write that did not reach the in-sync
        // replicas in time with COORDINATOR_NOT_AVAILABLE, which producers retry.
        self.store
            .wait_durable(self.ownership.partition_of(id))
            .await
            .map_err(|e| match e {
                ResponseError::RequestTimedOut => ResponseError::CoordinatorNotAvailable,
                e => e,
            })?;
        self.write().insert(id, record.clone());
        Ok(record)
    }

    /// InitProducerId with a transactional id: a new producer id, or the next epoch of
    /// the current one, fencing any earlier producer and aborting its open transaction.
    pub(crate) async fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        expected: Option<ProducerRef>,
    ) -> Result<ProducerRef, ResponseError> {
        if id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        self.check_coordinator(id)?;
        let _guard = self.lock_id(id).await;
        let mut record = match self.get(id) {
            Some(r) => r,
            None => TxnRecord {
                producer_id: self.allocate_producer_id()?,
                previous_producer_id: -1,
                producer_epoch: -1,
                last_producer_epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: Vec::new(),
                groups: Vec::new(),
                pending_offsets: Vec::new(),
                start_ms: -1,
                last_update_ms: self.clock.now_ms(),
                next_producer_id: -1,
                client_transaction_version: 0,
            },
        };
        if let Some(exp) = expected {
            // KIP-360: a producer re-initialising names the id and epoch it had.
            let valid = record.producer_epoch == -1
                || exp.producer_id == record.producer_id
                || (exp.producer_id == record.previous_producer_id
                    && exp.producer_epoch >= EPOCH_EXHAUSTED);
            if !valid {
                return Err(ResponseError::ProducerFenced);
            }
        }
        match record.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Ongoing => {
                // Fence the producer of the open transaction with a bumped epoch and abort
                // its transaction with that epoch, as Kafka does before answering.
                record.producer_epoch += 1;
                record.last_producer_epoch = -1;
                tracing::info!(
                    transactional_id = id,
                    producer_id = record.producer_id,
                    producer_epoch = record.producer_epoch,
                    "fencing the previous producer and aborting its transaction"
                );
                record = self.end_transaction(id, record, false).await?;
                if record.state == TxnState::PrepareAbort {
                    // Its markers are not all written yet: the producer asks again.
                    return Err(ResponseError::ConcurrentTransactions);
                }
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {}
        }

        let expected_epoch = expected.map(|e| e.producer_epoch);
        if record.producer_epoch >= EPOCH_EXHAUSTED
            && expected_epoch.is_none_or(|e| e == record.producer_epoch)
        {
            record.previous_producer_id = record.producer_id;
            record.last_producer_epoch = if expected.is_some() {
                record.producer_epoch
            } else {
                -1
            };
            record.producer_id = self.allocate_producer_id()?;
            record.producer_epoch = 0;
        } else {
            match expected_epoch {
                None => {
                    record.last_producer_epoch = -1;
                    record.producer_epoch += 1;
                }
                Some(e) if record.producer_epoch == -1 || e == record.producer_epoch => {
                    record.last_producer_epoch = record.producer_epoch;
                    record.producer_epoch += 1;
                }
                // A retry of a bump that succeeded: answer with the epoch it got.
                Some(e) if e == record.last_producer_epoch => {}
                Some(_) => return Err(ResponseError::ProducerFenced),
            }
        }
        record.timeout_ms = timeout_ms;
        record.state = TxnState::Empty;
        record.partitions.clear();
        record.start_ms = -1;
        let record = self.store(id, record).await?;
        tracing::debug!(
            transactional_id = id,
            producer_id = record.producer_id,
            producer_epoch = record.producer_epoch,
            "initialised transactional producer"
        );
        Ok(ProducerRef {
            producer_id: record.producer_id,
            producer_epoch: record.producer_epoch,
        })
    }

    fn allocate_producer_id(&self) -> Result<i64, ResponseError> {
        self.store.allocate_producer_id().map_err(|e| {
            tracing::error!(error = %e, "cannot allocate a producer id");
            ResponseError::CoordinatorNotAvailable
        })
    }

    /// The checks every request of a transaction's producer passes first.
    fn check_producer(&self, id: &str, producer: ProducerRef) -> Result<TxnRecord, ResponseError> {
        if id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        self.check_coordinator(id)?;
        let record = self
            .get(id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if record.producer_id != producer.producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if record.producer_epoch != producer.producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        Ok(record)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, which adds a group): the transaction is
    /// Ongoing from here. The partitions must exist; the handler checks that.
    pub(crate) async fn add_to_transaction(
        &self,
        id: &str,
        producer: ProducerRef,
        partitions: &[(String, i32)],
        group: Option<&str>,
        version: TxnVersion,
    ) -> Result<(), ResponseError> {
        let _guard = self.lock_id(id).await;
        let mut record = self.check_producer(id, producer)?;
        if matches!(
            record.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort
        ) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        let mut set: BTreeSet<(String, i32)> = record.partitions.iter().cloned().collect();
        let before = set.len();
        set.extend(partitions.iter().cloned());
        if let Some(g) = group {
            set.insert((
                GROUP_METADATA_TOPIC.to_string(),
                self.groups.partition_of(g),
            ));
        }
        let upgraded =
            version == TxnVersion::V2 && record.client_transaction_version != version.record_code();
        if record.state == TxnState::Ongoing && before == set.len() && !upgraded {
            return Ok(());
        }
        if record.state != TxnState::Ongoing {
            record.start_ms = self.clock.now_ms();
            record.state = TxnState::Ongoing;
            record.client_transaction_version = version.record_code();
        } else if upgraded {
            record.client_transaction_version = version.record_code();
        }
        record.partitions = set.into_iter().collect();
        self.store(id, record).await?;
        Ok(())
    }

    /// The verify-only form of AddPartitionsToTxn (v4+): whether each partition is in the
    /// producer's open transaction.
    pub(crate) fn verify_partitions(
        &self,
        id: &str,
        producer: ProducerRef,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, ResponseError> {
        let record = self.check_producer(id, producer)?;
        if matches!(
            record.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort
        ) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .map(|p| record.state == TxnState::Ongoing && record.partitions.contains(p))
            .collect())
    }

    /// Runs `append` for a transactional batch only if its producer's open transaction
    /// includes the partition; markers cannot be written while `append` runs.
    pub(crate) fn with_verified_partition<T>(
        &self,
        producer: ProducerRef,
        topic: &str,
        partition: i32,
        append: impl FnOnce() -> T,
    ) -> Result<T, ResponseError> {
        let txns = self.read();
        let record = txns
            .by_producer
            .get(&producer.producer_id)
            .and_then(|id| txns.by_id.get(id))
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if record.producer_epoch != producer.producer_epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        let added = record.state == TxnState::Ongoing
            && record
                .partitions
                .iter()
                .any(|(t, p)| t == topic && *p == partition);
        if !added {
            return Err(ResponseError::InvalidTxnState);
        }
        Ok(append())
    }

    /// EndTxn from the producer; the producer id and epoch it goes on with (transactions
    /// v2 bump the epoch at every end).
    pub(crate) async fn end_txn(
        &self,
        id: &str,
        producer: ProducerRef,
        commit: bool,
        version: TxnVersion,
    ) -> Result<ProducerRef, ResponseError> {
        let _guard = self.lock_id(id).await;
        if version == TxnVersion::V2 {
            return self.end_txn_v2(id, producer, commit).await;
        }
        let record = self.check_producer(id, producer)?;
        match (record.state, commit) {
            (TxnState::Ongoing, _) => {
                let done = self.end_transaction(id, record, commit).await?;
                Ok(ProducerRef::of(&done))
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            // A retry of an EndTxn that completed.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                Ok(ProducerRef::of(&record))
            }
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Ends the open transaction of `record`: Prepare, markers and offsets, Complete.
    /// The caller holds the id's lock. An error means the decision was not recorded; once
    /// it is, the transaction ends as decided whatever happens next (Kafka answers EndTxn
    /// then too), so markers that cannot all be written yet leave the record returned in
    /// its Prepare state, for the timer to complete.
    async fn end_transaction(
        &self,
        id: &str,
        mut record: TxnRecord,
        commit: bool,
    ) -> Result<TxnRecord, ResponseError> {
        record.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        let record = self.store(id, record).await?;
        if self.crash_after_prepare {
            tracing::error!(
                transactional_id = id,
                "SLUICE_CRASH_POINT={CRASH_AFTER_PREPARE}: aborting the process"
            );
            std::process::abort();
        }
        match self.complete(id, record.clone()).await {
            Ok(done) => Ok(done),
            Err(e) => {
                tracing::warn!(transactional_id = id, error = ?e, state = record.state.name(), "the transaction's outcome is recorded; its markers will be retried");
                Ok(record)
            }
        }
    }

    /// Writes the markers of a prepared transaction and records it complete.
    async fn complete(&self, id: &str, mut record: TxnRecord) -> Result<TxnRecord, ResponseError> {
        let commit = record.state == TxnState::PrepareCommit;
        let control = if commit {
            ControlType::Commit
        } else {
            ControlType::Abort
        };
        let markers = TxnMarkers {
            partitions: &record.partitions,
            marker: Marker {
                producer_id: record.producer_id,
                producer_epoch: record.producer_epoch,
                control,
                coordinator_epoch: self.coordinator_epoch(id),
            },
        };
        if let Err(e) = self.log.write_markers(markers).await {
            tracing::warn!(transactional_id = id, error = ?e, "writing the transaction's markers failed; will retry");
            return Err(e);
        }
        record.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        record.partitions.clear();
        record.start_ms = -1;
        if record.next_producer_id >= 0 {
            // Transactions v2 at an exhausted epoch: the markers carried the last epoch
            // of this producer id, and the producer goes on with the next one.
            record.previous_producer_id = record.producer_id;
            record.producer_id = record.next_producer_id;
            record.next_producer_id = -1;
            record.producer_epoch = 0;
            record.last_producer_epoch = -1;
        }
        let record = self.store(id, record).await?;
        tracing::debug!(transactional_id = id, commit, "transaction completed");
        Ok(record)
    }
}

/// Whether the crash test hook is set.
fn crash_after_prepare() -> bool {
    let set = std::env::var("SLUICE_CRASH_POINT").is_ok_and(|v| v == CRASH_AFTER_PREPARE);
    if set {
        tracing::warn!("SLUICE_CRASH_POINT={CRASH_AFTER_PREPARE}: the broker will abort after the next prepared EndTxn");
    }
    set
}
