//! Unit tests of the transaction coordinator on in-memory ports and a manual clock: the
//! markers land in in-memory partitions, timeouts run by moving the clock.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use sluice_config::{GroupConfig, TxnConfig};
use sluice_protocol::batch::ControlType;
use sluice_storage::{CommittedOffset, Marker, PendingOffset, TxnRecord, TxnState};

use super::ports::{MemoryMarkerLog, MemoryTxnStore, TxnStore};
use super::{ProducerRef, TxnCoordinator};
use crate::clock::ManualClock;
use crate::group::ports::{MemoryGroupStore, MemoryTopics};
use crate::group::GroupCoordinator;

const ID: &str = "tx";
const TIMEOUT_MS: i32 = 60_000;

struct Fixture {
    coordinator: TxnCoordinator,
    store: Arc<MemoryTxnStore>,
    log: Arc<MemoryMarkerLog>,
    offsets: Arc<MemoryGroupStore>,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Self {
        Fixture::with_store(MemoryTxnStore::default())
    }

    /// A coordinator started on what `store` already holds, as after a restart.
    fn with_store(store: MemoryTxnStore) -> Self {
        let store = Arc::new(store);
        let log = Arc::new(MemoryMarkerLog::default());
        log.add_topic("t", 2);
        let offsets = Arc::new(MemoryGroupStore::default());
        let topics = Arc::new(MemoryTopics::default());
        topics.add("t", 2);
        let clock = ManualClock::new();
        let groups = Arc::new(
            GroupCoordinator::with_ports(
                offsets.clone(),
                topics,
                clock.clone(),
                GroupConfig::default(),
            )
            .unwrap(),
        );
        let coordinator = TxnCoordinator::with_ports(
            store.clone(),
            log.clone(),
            clock.clone(),
            groups,
            TxnConfig::default(),
        )
        .unwrap();
        Fixture {
            coordinator,
            store,
            log,
            offsets,
            clock,
        }
    }

    async fn init(&self) -> Result<ProducerRef, ResponseError> {
        self.coordinator
            .init_producer_id(ID, TIMEOUT_MS, None)
            .await
    }

    async fn add_both_partitions(&self, p: ProducerRef) -> Result<(), ResponseError> {
        self.coordinator
            .add_to_transaction(ID, p, &[("t".into(), 0), ("t".into(), 1)], None)
            .await
    }

    fn record(&self) -> TxnRecord {
        self.store.txn(ID).expect("stored")
    }

    fn marker(&self, p: ProducerRef, control: ControlType) -> Marker {
        Marker {
            producer_id: p.producer_id,
            producer_epoch: p.producer_epoch,
            control,
            coordinator_epoch: 0,
        }
    }
}

#[tokio::test]
async fn init_producer_id_allocates_an_id_then_bumps_its_epoch() {
    let f = Fixture::new();
    let first = f.init().await.unwrap();
    assert_eq!((first.producer_id, first.producer_epoch), (0, 0));
    let again = f.init().await.unwrap();
    assert_eq!((again.producer_id, again.producer_epoch), (0, 1));
    let r = f.record();
    assert_eq!(r.state, TxnState::Empty);
    assert_eq!((r.producer_id, r.producer_epoch), (0, 1));
    assert_eq!(r.timeout_ms, TIMEOUT_MS);

    let bad = f.coordinator.init_producer_id(ID, 0, None).await;
    assert_eq!(bad.unwrap_err(), ResponseError::InvalidTransactionTimeout);
}

#[tokio::test]
async fn a_commit_writes_commit_markers_to_every_partition_then_completes() {
    let f = Fixture::new();
    let p = f.init().await.unwrap();
    f.add_both_partitions(p).await.unwrap();
    let r = f.record();
    assert_eq!(r.state, TxnState::Ongoing);
    assert_eq!(
        r.partitions,
        vec![("t".to_string(), 0), ("t".to_string(), 1)]
    );
    assert_eq!(r.start_ms, f.clock.now_ms_reading());
    assert_eq!(
        f.coordinator
            .verify_partitions(ID, p, &[("t".into(), 1), ("t".into(), 5)])
            .unwrap(),
        vec![true, false]
    );

    f.coordinator.end_txn(ID, p, true).await.unwrap();
    for partition in [0, 1] {
        assert_eq!(
            f.log.markers("t", partition),
            vec![f.marker(p, ControlType::Commit)]
        );
    }
    let r = f.record();
    assert_eq!(r.state, TxnState::CompleteCommit);
    assert!(r.partitions.is_empty());
    assert_eq!(r.start_ms, -1);
    // A retried EndTxn of a completed commit succeeds and writes nothing more.
    f.coordinator.end_txn(ID, p, true).await.unwrap();
    assert_eq!(f.log.markers("t", 0).len(), 1);
    // Aborting what committed is not a valid transition.
    let e = f.coordinator.end_txn(ID, p, false).await.unwrap_err();
    assert_eq!(e, ResponseError::InvalidTxnState);
}

#[tokio::test]
async fn an_abort_writes_abort_markers_and_drops_pending_offsets() {
    let f = Fixture::new();
    let p = f.init().await.unwrap();
    f.coordinator
        .add_to_transaction(ID, p, &[("t".into(), 1)], Some("g"))
        .await
        .unwrap();
    let offset = PendingOffset {
        group: "g".into(),
        topic: "t".into(),
        partition: 0,
        committed: CommittedOffset {
            offset: 42,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 0,
        },
    };
    f.coordinator
        .commit_offsets(ID, p, "g", vec![offset])
        .await
        .unwrap();
    assert!(f.coordinator.has_pending_offset("g", "t", 0));

    f.coordinator.end_txn(ID, p, false).await.unwrap();
    assert_eq!(f.log.markers("t", 1), vec![f.marker(p, ControlType::Abort)]);
    assert!(f.log.markers("t", 0).is_empty(), "not in the transaction");
    assert_eq!(f.record().state, TxnState::CompleteAbort);
    assert!(!f.coordinator.has_pending_offset("g", "t", 0));
    assert_eq!(f.offsets.offset("g", "t", 0), None);
}

#[tokio::test]
async fn a_committed_transaction_makes_its_offsets_the_groups() {
    let f = Fixture::new();
    let p = f.init().await.unwrap();
    f.coordinator
        .add_to_transaction(ID, p, &[], Some("g"))
        .await
        .unwrap();
    let committed = CommittedOffset {
        offset: 7,
        leader_epoch: -1,
        metadata: "m".into(),
        commit_timestamp: 5,
    };
    let pending = PendingOffset {
        group: "g".into(),
        topic: "t".into(),
        partition: 1,
        committed: committed.clone(),
    };
    f.coordinator
        .commit_offsets(ID, p, "g", vec![pending])
        .await
        .unwrap();
    assert_eq!(f.offsets.offset("g", "t", 1), None, "not before the commit");
    f.coordinator.end_txn(ID, p, true).await.unwrap();
    assert_eq!(f.offsets.offset("g", "t", 1), Some(committed));
}

#[tokio::test]
async fn a_prepared_transaction_left_by_a_crash_is_completed_at_start_up() {
    let store = MemoryTxnStore::default();
    store
        .store_txn(
            ID,
            &TxnRecord {
                producer_id: 9,
                previous_producer_id: -1,
                producer_epoch: 3,
                last_producer_epoch: 2,
                timeout_ms: TIMEOUT_MS,
                state: TxnState::PrepareCommit,
                partitions: vec![("t".into(), 0)],
                groups: Vec::new(),
                pending_offsets: Vec::new(),
                start_ms: 1,
                last_update_ms: 1,
            },
        )
        .unwrap();
    let f = Fixture::with_store(store);
    f.coordinator.complete_prepared().await;
    let p = ProducerRef {
        producer_id: 9,
        producer_epoch: 3,
    };
    assert_eq!(
        f.log.markers("t", 0),
        vec![f.marker(p, ControlType::Commit)]
    );
    assert_eq!(f.record().state, TxnState::CompleteCommit);
}

#[tokio::test]
async fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let f = Fixture::new();
    let p = f.init().await.unwrap();
    f.add_both_partitions(p).await.unwrap();

    f.clock.advance_ms(TIMEOUT_MS as u64);
    let now = f.clock.now_ms_reading();
    assert_eq!(
        f.coordinator.abort_timed_out(now).await,
        0,
        "not past it yet"
    );
    f.clock.advance_ms(1);
    let now = f.clock.now_ms_reading();
    assert_eq!(f.coordinator.abort_timed_out(now).await, 1);

    let bumped = ProducerRef {
        producer_epoch: p.producer_epoch + 1,
        ..p
    };
    for partition in [0, 1] {
        assert_eq!(
            f.log.markers("t", partition),
            vec![f.marker(bumped, ControlType::Abort)]
        );
    }
    let r = f.record();
    assert_eq!(r.state, TxnState::CompleteAbort);
    assert_eq!(r.producer_epoch, 1);
    // The producer learns it was fenced on its next request.
    let e = f.coordinator.end_txn(ID, p, true).await.unwrap_err();
    assert_eq!(e, ResponseError::ProducerFenced);
}

#[tokio::test]
async fn a_new_producer_instance_fences_the_old_one_and_aborts_its_transaction() {
    let f = Fixture::new();
    let old = f.init().await.unwrap();
    f.add_both_partitions(old).await.unwrap();

    let new = f.init().await.unwrap();
    assert_eq!(new.producer_id, old.producer_id);
    assert_eq!(
        new.producer_epoch, 2,
        "one bump to fence, one for the new session"
    );
    let fence = ProducerRef {
        producer_epoch: 1,
        ..old
    };
    assert_eq!(
        f.log.markers("t", 0),
        vec![f.marker(fence, ControlType::Abort)]
    );
    assert_eq!(f.record().state, TxnState::Empty);

    let e = f.add_both_partitions(old).await.unwrap_err();
    assert_eq!(e, ResponseError::ProducerFenced);
    let stranger = ProducerRef {
        producer_id: 77,
        producer_epoch: 2,
    };
    let e = f.add_both_partitions(stranger).await.unwrap_err();
    assert_eq!(e, ResponseError::InvalidProducerIdMapping);
    // A transactional batch of the fenced producer is refused at produce time too.
    let refused = f
        .coordinator
        .with_verified_partition(old, "t", 0, || ())
        .unwrap_err();
    assert_eq!(refused, ResponseError::InvalidProducerEpoch);
}

#[tokio::test]
async fn idle_transactional_ids_expire_after_their_expiration_time() {
    let f = Fixture::new();
    f.init().await.unwrap();
    let expiration = TxnConfig::default().id_expiration_ms;
    f.clock.advance_ms(expiration as u64 - 1);
    let now = f.clock.now_ms_reading();
    assert_eq!(f.coordinator.expire_ids(now).await, 0);
    f.clock.advance_ms(1);
    let now = f.clock.now_ms_reading();
    assert_eq!(f.coordinator.expire_ids(now).await, 1);
    assert!(f.store.txn(ID).is_none());
}
