//! Unit tests of the share-partition state machine.

use std::time::Duration;

use super::*;

const LIMITS: Limits = Limits {
    delivery_count_limit: 3,
    max_in_flight: 10,
};

fn batches(spans: &[(i64, i64)]) -> Vec<LogBatch> {
    spans
        .iter()
        .map(|&(base_offset, last_offset)| LogBatch {
            base_offset,
            last_offset,
            aborted: false,
        })
        .collect()
}

fn range(first_offset: i64, last_offset: i64, delivery_count: i16) -> AcquiredRange {
    AcquiredRange {
        first_offset,
        last_offset,
        delivery_count,
    }
}

#[test]
fn fresh_records_are_acquired_in_whole_batches_up_to_the_soft_cap() {
    let mut p = SharePartition::new(0, LIMITS);
    let lock = Instant::now() + Duration::from_secs(30);
    let got = p.acquire_fresh("a", &batches(&[(0, 1), (2, 4), (5, 5)]), 3, lock);
    // The cap of 3 is passed to finish the second batch; the third is not taken.
    assert_eq!(got, vec![range(0, 4, 1)]);
    assert_eq!(p.next_fresh(), 5);
    let got = p.acquire_fresh("b", &batches(&[(5, 5)]), 3, lock);
    assert_eq!(got, vec![range(5, 5, 1)]);
    assert_eq!(p.count(RecordState::Acquired), 6);
}

#[test]
fn acknowledgements_move_the_start_offset_and_release_redelivers_with_a_count() {
    let mut p = SharePartition::new(10, LIMITS);
    let lock = Instant::now() + Duration::from_secs(30);
    p.acquire_fresh("a", &batches(&[(10, 13)]), 100, lock);
    p.acknowledge(
        "a",
        &[(
            10,
            13,
            vec![
                AckType::Accept,
                AckType::Release,
                AckType::Reject,
                AckType::Accept,
            ],
        )],
    )
    .unwrap();
    assert_eq!(p.start_offset(), 11);
    let again = p.acquire_available("b", 100, lock);
    assert_eq!(again, vec![range(11, 11, 2)]);
    p.acknowledge("b", &[(11, 11, vec![AckType::Accept])])
        .unwrap();
    assert_eq!(p.start_offset(), 14);
    assert_eq!(p.count(RecordState::Acquired), 0);
}

#[test]
fn only_the_holder_may_acknowledge_and_a_refusal_changes_nothing() {
    let mut p = SharePartition::new(0, LIMITS);
    let lock = Instant::now() + Duration::from_secs(30);
    p.acquire_fresh("a", &batches(&[(0, 2)]), 100, lock);
    let accept = vec![AckType::Accept];
    assert_eq!(
        p.acknowledge("b", &[(0, 0, accept.clone())]),
        Err(AckError::InvalidRecordState)
    );
    // 0 is fine but 5 was never acquired: neither is applied.
    assert_eq!(
        p.acknowledge("a", &[(0, 0, accept.clone()), (5, 5, accept.clone())]),
        Err(AckError::InvalidRecordState)
    );
    assert_eq!(p.count(RecordState::Acquired), 3);
    assert_eq!(
        p.acknowledge("a", &[(1, 2, vec![AckType::Accept; 3])]),
        Err(AckError::InvalidRequest)
    );
    p.acknowledge("a", &[(0, 2, accept.clone())]).unwrap();
    assert_eq!(
        p.acknowledge("a", &[(0, 0, accept)]),
        Ok(()),
        "before the start offset: done already"
    );
}

#[test]
fn a_record_delivered_to_the_limit_is_archived_on_release_or_lock_expiry() {
    let mut p = SharePartition::new(0, LIMITS);
    let now = Instant::now();
    p.acquire_fresh("a", &batches(&[(0, 0)]), 100, now);
    assert_eq!(p.expire_locks(now), 1);
    assert_eq!(p.acquire_available("a", 100, now), vec![range(0, 0, 2)]);
    p.acknowledge("a", &[(0, 0, vec![AckType::Release])])
        .unwrap();
    assert_eq!(p.acquire_available("b", 100, now), vec![range(0, 0, 3)]);
    // The third delivery was the last: released, it is archived and never returns.
    assert_eq!(p.release_member("b"), 1);
    assert!(!p.has_available());
    assert_eq!(p.start_offset(), 1);
}

#[test]
fn the_durable_state_brings_back_counts_and_outcomes_but_no_locks() {
    let mut p = SharePartition::new(5, LIMITS);
    let lock = Instant::now() + Duration::from_secs(30);
    p.acquire_fresh("a", &batches(&[(5, 9)]), 100, lock);
    p.acknowledge("a", &[(6, 7, vec![AckType::Accept, AckType::Reject])])
        .unwrap();
    let snap = p.snapshot(-1);
    assert_eq!(snap.start_offset, 5);
    let spans: Vec<_> = snap
        .batches
        .iter()
        .map(|b| {
            (
                b.first_offset,
                b.last_offset,
                b.delivery_state,
                b.delivery_count,
            )
        })
        .collect();
    assert_eq!(
        spans,
        vec![(5, 5, 0, 1), (6, 6, 2, 1), (7, 7, 4, 1), (8, 9, 0, 1)]
    );
    let mut back = SharePartition::from_state(&snap, LIMITS);
    assert_eq!((back.start_offset(), back.next_fresh()), (5, 10));
    // What was acquired is delivered again, its second time; 6 and 7 are done.
    let again = back.acquire_available("b", 100, lock);
    assert_eq!(again, vec![range(5, 5, 2), range(8, 9, 2)]);
}

#[test]
fn batches_of_aborted_transactions_are_archived_not_delivered() {
    let mut p = SharePartition::new(0, LIMITS);
    let lock = Instant::now() + Duration::from_secs(30);
    let mut log = batches(&[(0, 1), (2, 3), (4, 4)]);
    log[1].aborted = true;
    let got = p.acquire_fresh("a", &log, 100, lock);
    assert_eq!(got, vec![range(0, 1, 1), range(4, 4, 1)]);
    p.acknowledge("a", &[(0, 1, vec![AckType::Accept])])
        .unwrap();
    // 2-3 were done from the start: the start offset passes them.
    assert_eq!(p.start_offset(), 4);
}

#[test]
fn in_flight_records_are_bounded() {
    let mut p = SharePartition::new(0, LIMITS);
    let lock = Instant::now() + Duration::from_secs(30);
    let got = p.acquire_fresh("a", &batches(&[(0, 7), (8, 11), (12, 12)]), 100, lock);
    assert_eq!(got, vec![range(0, 11, 1)]);
    assert!(!p.has_room());
    p.acknowledge("a", &[(0, 4, vec![AckType::Accept])])
        .unwrap();
    assert!(p.has_room());
}

#[test]
fn the_log_start_moving_past_records_drops_them() {
    let mut p = SharePartition::new(0, LIMITS);
    let lock = Instant::now() + Duration::from_secs(30);
    p.acquire_fresh("a", &batches(&[(0, 3)]), 100, lock);
    p.skip_to_log_start(2);
    assert_eq!(p.start_offset(), 2);
    assert_eq!(p.count(RecordState::Acquired), 2);
    p.skip_to_log_start(9);
    assert_eq!((p.start_offset(), p.next_fresh()), (9, 9));
}
