//! Unit tests of the transaction coordinator on in-memory ports and a manual clock: the
//! markers land in in-memory partitions, timeouts run by moving the clock.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use sluice_config::{GroupConfig, TxnConfig};
use sluice_protocol::batch::ControlType;
use sluice_storage::{Marker, TxnRecord, TxnState};

use super::ports::{MemoryMarkerLog, MemoryTxnStore, TxnStore};
use super::{ProducerRef, TxnCoordinator, TxnVersion};
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
            .add_to_transaction(
                ID,
                p,
                &[("t".into(), 0), ("t".into(), 1)],
                None,
                TxnVersion::V1,
            )
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

    f.coordinator
        .end_txn(ID, p, true, TxnVersion::V1)
        .await
        .unwrap();
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
    f.coordinator
        .end_txn(ID, p, true, TxnVersion::V1)
        .await
        .unwrap();
    assert_eq!(f.log.markers("t", 0).len(), 1);
    // Aborting what committed is not a valid transition.
    let e = f
        .coordinator
        .end_txn(ID, p, false, TxnVersion::V1)
        .await
        .unwrap_err();
    assert_eq!(e, ResponseError::InvalidTxnState);
}

#[tokio::test]
async fn a_group_joins_a_transaction_as_its_partition_of_consumer_offsets() {
    let f = Fixture::new();
    // "g" lives in partition 3 of 50 (Java's String.hashCode: 103).
    f.log.add_topic(GROUP_METADATA_TOPIC, 50);
    let p = f.init().await.unwrap();
    f.coordinator
        .add_to_transaction(ID, p, &[("t".into(), 1)], Some("g"), TxnVersion::V1)
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

    f.coordinator
        .end_txn(ID, p, false, TxnVersion::V1)
        .await
        .unwrap();
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
                next_producer_id: -1,
                client_transaction_version: 0,
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
    let e = f
        .coordinator
        .end_txn(ID, p, true, TxnVersion::V1)
        .await
        .unwrap_err();
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

async fn add_v2(f: &Fixture, p: ProducerRef, partition: i32) -> Result<(), ResponseError> {
    f.coordinator
        .add_to_transaction(ID, p, &[("t".into(), partition)], None, TxnVersion::V2)
        .await
}

fn bumped(p: ProducerRef) -> ProducerRef {
    ProducerRef {
        producer_id: p.producer_id,
        producer_epoch: p.producer_epoch + 1,
    }
}

#[tokio::test]
async fn v2_every_end_bumps_the_epoch_and_the_markers_carry_the_bumped_one() {
    let f = Fixture::new();
    let p0 = f.init().await.unwrap();
    add_v2(&f, p0, 0).await.unwrap();
    assert_eq!(f.record().client_transaction_version, 2);
    let p1 = f
        .coordinator
        .end_txn(ID, p0, true, TxnVersion::V2)
        .await
        .unwrap();
    assert_eq!(p1, bumped(p0));
    assert_eq!(
        f.log.markers("t", 0),
        vec![f.marker(p1, ControlType::Commit)]
    );
    let r = f.record();
    assert_eq!(r.state, TxnState::CompleteCommit);
    assert_eq!((r.producer_epoch, r.last_producer_epoch), (1, 0));

    // A retry with the epoch before the bump gets the same answer and writes nothing.
    let retry = f.coordinator.end_txn(ID, p0, true, TxnVersion::V2).await;
    assert_eq!(retry.unwrap(), p1);
    assert_eq!(f.log.markers("t", 0).len(), 1);
    // The old epoch can neither add nor abort now.
    assert_eq!(
        add_v2(&f, p0, 1).await.unwrap_err(),
        ResponseError::ProducerFenced
    );
    let stale = f.coordinator.end_txn(ID, p0, false, TxnVersion::V2).await;
    assert_eq!(stale.unwrap_err(), ResponseError::InvalidTxnState);

    // The next transaction starts from the completed one with the new epoch.
    add_v2(&f, p1, 1).await.unwrap();
    let p2 = f
        .coordinator
        .end_txn(ID, p1, false, TxnVersion::V2)
        .await
        .unwrap();
    assert_eq!(p2, bumped(p1));
    assert_eq!(
        f.log.markers("t", 1),
        vec![f.marker(p2, ControlType::Abort)]
    );
    assert_eq!(f.record().state, TxnState::CompleteAbort);
}

#[tokio::test]
async fn v2_an_abort_with_nothing_added_bumps_the_epoch_and_a_commit_is_refused() {
    let f = Fixture::new();
    let p0 = f.init().await.unwrap();
    let commit = f.coordinator.end_txn(ID, p0, true, TxnVersion::V2).await;
    assert_eq!(commit.unwrap_err(), ResponseError::InvalidTxnState);
    let p1 = f
        .coordinator
        .end_txn(ID, p0, false, TxnVersion::V2)
        .await
        .unwrap();
    assert_eq!(p1, bumped(p0));
    assert!(f.log.markers("t", 0).is_empty());
    assert_eq!(f.record().state, TxnState::CompleteAbort);
    // Aborting again with the current epoch (not a retry) bumps it again.
    let p2 = f
        .coordinator
        .end_txn(ID, p1, false, TxnVersion::V2)
        .await
        .unwrap();
    assert_eq!(p2, bumped(p1));
}

#[tokio::test]
async fn v2_a_wrong_producer_id_or_epoch_is_refused() {
    let f = Fixture::new();
    let p = f.init().await.unwrap();
    add_v2(&f, p, 0).await.unwrap();
    let other = ProducerRef {
        producer_id: p.producer_id + 7,
        producer_epoch: p.producer_epoch,
    };
    let e = f.coordinator.end_txn(ID, other, true, TxnVersion::V2).await;
    assert_eq!(e.unwrap_err(), ResponseError::InvalidProducerIdMapping);
    // While Ongoing only the current epoch ends the transaction.
    let e = f
        .coordinator
        .end_txn(ID, bumped(p), true, TxnVersion::V2)
        .await;
    assert_eq!(e.unwrap_err(), ResponseError::ProducerFenced);
    assert_eq!(f.record().state, TxnState::Ongoing);
}

#[tokio::test]
async fn v2_an_exhausted_epoch_moves_the_producer_to_the_next_producer_id() {
    let store = MemoryTxnStore::default();
    let exhausted = super::EPOCH_EXHAUSTED;
    store
        .store_txn(
            ID,
            &TxnRecord {
                producer_id: 9,
                previous_producer_id: -1,
                producer_epoch: exhausted,
                last_producer_epoch: exhausted - 1,
                timeout_ms: TIMEOUT_MS,
                state: TxnState::Empty,
                partitions: Vec::new(),
                groups: Vec::new(),
                pending_offsets: Vec::new(),
                start_ms: -1,
                last_update_ms: 1,
                next_producer_id: -1,
                client_transaction_version: 2,
            },
        )
        .unwrap();
    let f = Fixture::with_store(store);
    let p = ProducerRef {
        producer_id: 9,
        producer_epoch: exhausted,
    };
    add_v2(&f, p, 0).await.unwrap();
    let next = f
        .coordinator
        .end_txn(ID, p, true, TxnVersion::V2)
        .await
        .unwrap();
    // The markers carry the old producer id's last epoch.
    assert_eq!(
        f.log.markers("t", 0),
        vec![f.marker(bumped(p), ControlType::Commit)]
    );
    assert_ne!(next.producer_id, 9);
    assert_eq!(next.producer_epoch, 0);
    let r = f.record();
    assert_eq!(
        (
            r.producer_id,
            r.producer_epoch,
            r.previous_producer_id,
            r.next_producer_id
        ),
        (next.producer_id, 0, 9, -1)
    );
    // A retry from the old producer id's exhausted epoch is recognised.
    let retry = f.coordinator.end_txn(ID, p, true, TxnVersion::V2).await;
    assert_eq!(retry.unwrap(), next);
    add_v2(&f, next, 1).await.unwrap();
}

#[tokio::test]
async fn v1_ends_keep_the_epoch() {
    let f = Fixture::new();
    let p = f.init().await.unwrap();
    f.add_both_partitions(p).await.unwrap();
    let after = f
        .coordinator
        .end_txn(ID, p, true, TxnVersion::V1)
        .await
        .unwrap();
    assert_eq!(after, p);
    assert_eq!(f.record().client_transaction_version, 0);
}
