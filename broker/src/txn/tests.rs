//! Unit tests of the transaction coordinator on in-memory ports and a manual clock: the
//! markers land in in-memory partitions, timeouts run by moving the clock.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use sluice_config::{GroupConfig, TxnConfig};
use sluice_protocol::batch::ControlType;
use sluice_storage::{Marker, TxnRecord, TxnState};

use super::ports::{MemoryMarkerLog, MemoryTxnStore, TxnStore};
use super::{ProducerRef, TxnCoordinator};
use crate::clock::ManualClock;
use crate::group::ports::{MemoryGroupStore, MemoryTopics};
use crate::group::GroupCoordinator;
use crate::internal_topics::GROUP_METADATA_TOPIC;

const ID: &str = "tx";
const TIMEOUT_MS: i32 = 60_000;

struct Fixture {
    coordinator: TxnCoordinator,
    store: Arc<MemoryTxnStore>,
    log: Arc<MemoryMarkerLog>,
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
async fn a_group_joins_a_transaction_as_its_partition_of_consumer_offsets() {
    let f = Fixture::new();
    // "g" lives in partition 3 of 50 (Java's String.hashCode: 103).
    f.log.add_topic(GROUP_METADATA_TOPIC, 50);
    let p = f.init().await.unwrap();
    f.coordinator
        .add_to_transaction(ID, p, &[("t".into(), 1)], Some("g"))
        .await
        .unwrap();
    assert_eq!(
        f.record().partitions,
        vec![(GROUP_METADATA_TOPIC.to_string(), 3), ("t".to_string(), 1)]
    );
    // The group's partition is in the transaction: its offsets may be written there.
    let added = f
        .coordinator
        .verify_partitions(ID, p, &[(GROUP_METADATA_TOPIC.to_string(), 3)])
        .unwrap();
    assert_eq!(added, vec![true]);

    f.coordinator.end_txn(ID, p, false).await.unwrap();
    let abort = vec![f.marker(p, ControlType::Abort)];
    assert_eq!(f.log.markers(GROUP_METADATA_TOPIC, 3), abort);
    assert_eq!(f.log.markers("t", 1), abort);
    assert!(f.log.markers("t", 0).is_empty(), "not in the transaction");
    assert_eq!(f.record().state, TxnState::CompleteAbort);
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
