//! Follower appends, the high watermark apart from the log end offset, and leader epochs.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_protocol::batch::{split_batches, validate, ControlType};
use sluice_storage::{AppendError, Isolation, ReadError, Storage, StorageError};

use super::common::*;

#[test]
fn a_leader_log_copied_batch_by_batch_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[]);
    {
        let s = Storage::open(&cfg).unwrap();
        let leader = &s
            .create_topic("leader", 1, small_segments())
            .unwrap()
            .partitions[0];
        let follower = &s
            .create_topic("follower", 1, small_segments())
            .unwrap()
            .partitions[0];
        build_leader_log(leader, 5, 60);
        // As a follower fetches: from its log end offset, whatever the leader returns.
        let mut fetches = 0;
        while follower.log_end_offset() < leader.log_end_offset() {
            let d = leader
                .read(follower.log_end_offset(), 300, Isolation::LogEnd)
                .unwrap();
            let batches = split_batches(&d.records).unwrap();
            let first = batches[0].0.base_offset;
            let last = batches[batches.len() - 1].0.last_offset();
            let r = follower.append_replicated(&d.records, 50_000).unwrap();
            assert_eq!((r.first_offset, r.last_offset), (first, last));
            assert_eq!(follower.log_end_offset(), last + 1);
            fetches += 1;
        }
        assert!(fetches > 3, "{fetches} fetches");
        assert_same(&observe(leader), &observe(follower), "copied follower");
        s.flush_index().unwrap();
    }
    let s = Storage::open(&cfg).unwrap();
    let leader = &s.topic("leader").unwrap().partitions[0];
    let follower = &s.topic("follower").unwrap().partitions[0];
    assert_same(&observe(leader), &observe(follower), "reopened follower");
    assert_same_probes(leader, follower, "reopened follower");
}

#[test]
fn a_follower_refuses_gaps_overlaps_and_bad_crcs_and_keeps_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    let leader = &s
        .create_topic("leader", 1, BTreeMap::new())
        .unwrap()
        .partitions[0];
    let follower = &s
        .create_topic("follower", 1, BTreeMap::new())
        .unwrap()
        .partitions[0];
    for i in 0..4 {
        append(leader, &batch(2, 1_000 + i, None), 1_000).unwrap();
    }
    let b = all_batches(leader);
    assert_eq!(
        b.iter().map(|(f, l, _)| (*f, *l)).collect::<Vec<_>>(),
        vec![(0, 1), (2, 3), (4, 5), (6, 7)]
    );
    follower.append_replicated(&b[0].2, 1_000).unwrap();
    let before = observe(follower);
    let concat = |parts: &[&Bytes]| {
        let mut m = BytesMut::new();
        for p in parts {
            m.extend_from_slice(p);
        }
        m.freeze()
    };
    // A gap: the batch at 4 when the log ends at 2.
    assert!(matches!(
        follower.append_replicated(&b[2].2, 1_000),
        Err(AppendError::OffsetMismatch {
            expected: 2,
            got: 4
        })
    ));
    // An overlap: the batch at 0 again.
    assert!(matches!(
        follower.append_replicated(&b[0].2, 1_000),
        Err(AppendError::OffsetMismatch {
            expected: 2,
            got: 0
        })
    ));
    // Within one call: the second batch overlaps the first; nothing of it is written.
    assert!(matches!(
        follower.append_replicated(&concat(&[&b[1].2, &b[1].2]), 1_000),
        Err(AppendError::OffsetMismatch {
            expected: 4,
            got: 2
        })
    ));
    // A bad CRC in the second batch: nothing of the call is written.
    let mut bad = BytesMut::from(&b[2].2[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert!(matches!(
        follower.append_replicated(&concat(&[&b[1].2, &bad.freeze()]), 1_000),
        Err(AppendError::InvalidRecord(_))
    ));
    // A torn batch.
    assert!(matches!(
        follower.append_replicated(&b[1].2.slice(..b[1].2.len() - 3), 1_000),
        Err(AppendError::InvalidRecord(_))
    ));
    assert_same(&before, &observe(follower), "after refused appends");
    // The right batches still append, several in one call.
    let r = follower
        .append_replicated(&concat(&[&b[1].2, &b[2].2, &b[3].2]), 1_000)
        .unwrap();
    assert_eq!((r.first_offset, r.last_offset), (2, 7));
    assert_same(
        &observe(leader),
        &observe(follower),
        "after the right batches",
    );
}

#[test]
fn end_offset_for_epoch_answers_as_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    let p = &s.create_topic("t", 1, BTreeMap::new()).unwrap().partitions[0];
    assert_eq!(p.end_offset_for_epoch(0), (-1, -1), "empty cache");
    assert_eq!(p.leader_epoch(), 0);
    p.truncate_fully_and_start_at(6).unwrap();
    p.become_leader(2).unwrap();
    append(p, &batch(9, 1_000, None), 1_000).unwrap();
    p.become_leader(4).unwrap();
    append(p, &batch(5, 1_000, None), 1_000).unwrap();
    p.become_leader(6).unwrap();
    p.become_leader(6).unwrap();
    append(p, &batch(5, 1_000, None), 1_000).unwrap();
    assert_eq!(p.epoch_entries(), vec![(2, 6), (4, 15), (6, 20)]);
    assert_eq!(p.leader_epoch(), 6);
    assert_eq!(p.end_offset_for_epoch(6), (6, 25), "latest epoch: the LEO");
    assert_eq!(p.end_offset_for_epoch(4), (4, 20));
    assert_eq!(
        p.end_offset_for_epoch(5),
        (4, 20),
        "unknown epoch: the one below"
    );
    assert_eq!(p.end_offset_for_epoch(1), (1, 6), "below every epoch");
    assert_eq!(p.end_offset_for_epoch(7), (-1, -1), "above every epoch");
    assert_eq!(p.end_offset_for_epoch(-1), (-1, -1), "undefined epoch");
    assert!(matches!(
        p.become_leader(5),
        Err(StorageError::StaleLeaderEpoch {
            epoch: 5,
            latest: 6
        })
    ));
    // Batches carry the epoch they were appended in; markers too.
    let epoch_at = |o: i64| {
        let d = p.read(o, 1, Isolation::LogEnd).unwrap();
        validate(&d.records).unwrap().partition_leader_epoch
    };
    assert_eq!((epoch_at(6), epoch_at(15), epoch_at(20)), (2, 4, 6));
    let m = p.append_marker(7, 0, ControlType::Commit, 1_000).unwrap();
    assert_eq!(epoch_at(m.base_offset), 6);
}

#[test]
fn replicated_reads_stop_at_the_high_watermark_and_long_polls_wake_on_advance() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    let p = s.create_topic("t", 1, BTreeMap::new()).unwrap().partitions[0].clone();
    for i in 0..3 {
        append(&p, &batch(2, 1_000 + i, None), 1_000).unwrap();
    }
    p.set_replicated(true);
    assert!(p.is_replicated());
    assert_eq!((p.high_watermark(), p.log_end_offset()), (0, 6));
    let ru = p.read(0, 1 << 20, Isolation::ReadUncommitted).unwrap();
    assert_eq!((ru.records.len(), ru.high_watermark), (0, 0));
    let rc = p.read(0, 1 << 20, Isolation::ReadCommitted).unwrap();
    assert_eq!((rc.records.len(), rc.last_stable_offset), (0, 0));
    let le = p.read(0, 1 << 20, Isolation::LogEnd).unwrap();
    assert_eq!(split_batches(&le.records).unwrap().len(), 3);
    // Between the HW and the LEO a consumer reads nothing; past the LEO is out of range.
    assert_eq!(
        p.read(5, 100, Isolation::ReadUncommitted)
            .unwrap()
            .records
            .len(),
        0
    );
    assert!(matches!(
        p.read(7, 100, Isolation::ReadUncommitted),
        Err(ReadError::OutOfRange {
            offset: 7,
            log_start_offset: 0,
            log_end_offset: 6
        })
    ));
    assert!(matches!(
        p.delete_records_before(1),
        Err(ReadError::OutOfRange { .. })
    ));

    // Appends move the LEO watch, not the HW watch.
    let mut hw_rx = p.subscribe();
    let mut leo_rx = p.subscribe_log_end();
    hw_rx.mark_unchanged();
    leo_rx.mark_unchanged();
    append(
        &p,
        &batch(
            1,
            1_000,
            Some(Producer {
                id: 5,
                epoch: 0,
                seq: 0,
                transactional: true,
            }),
        ),
        1_000,
    )
    .unwrap();
    assert!(!hw_rx.has_changed().unwrap());
    assert!(leo_rx.has_changed().unwrap());
    assert_eq!(*leo_rx.borrow_and_update(), 7);

    // A long poll waiting on the HW wakes when it advances.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let waiter = {
        let mut rx = p.subscribe();
        std::thread::spawn(move || {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), rx.changed())
                    .await
                    .map(|_| *rx.borrow())
            })
        })
    };
    assert_eq!(p.advance_high_watermark(4), 4);
    assert_eq!(waiter.join().unwrap().unwrap(), 4);
    let ru = p.read(0, 1 << 20, Isolation::ReadUncommitted).unwrap();
    let offsets: Vec<i64> = split_batches(&ru.records)
        .unwrap()
        .iter()
        .map(|(h, _)| h.base_offset)
        .collect();
    assert_eq!((offsets, ru.high_watermark), (vec![0, 2], 4));
    // The HW never passes the LEO, never moves back by advance.
    assert_eq!(p.advance_high_watermark(100), 7);
    assert_eq!(p.advance_high_watermark(3), 7);
    // The open transaction at 6 bounds the LSO below the HW...
    assert_eq!(p.last_stable_offset(), 6);
    // ...and the HW bounds the LSO when the transaction starts above it.
    append(&p, &batch(1, 1_000, None), 1_000).unwrap();
    p.append_marker(5, 0, ControlType::Commit, 1_000).unwrap();
    assert_eq!(
        (
            p.high_watermark(),
            p.log_end_offset(),
            p.last_stable_offset()
        ),
        (7, 9, 7)
    );
    let rc = p.read(0, 1 << 20, Isolation::ReadCommitted).unwrap();
    assert_eq!(rc.last_stable_offset, 7);
    assert_eq!(
        p.delete_records_before(-1).unwrap(),
        7,
        "-1 is the high watermark"
    );

    // Switched off, the HW is the LEO again and follows it.
    p.set_replicated(false);
    assert_eq!(p.high_watermark(), 9);
    append(&p, &batch(1, 1_000, None), 1_000).unwrap();
    assert_eq!((p.high_watermark(), p.log_end_offset()), (10, 10));
}

#[test]
fn a_single_node_high_watermark_is_the_log_end_offset() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    let p = &s.create_topic("t", 1, BTreeMap::new()).unwrap().partitions[0];
    let mut rx = p.subscribe();
    rx.mark_unchanged();
    append(p, &batch(3, 1_000, None), 1_000).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!((p.high_watermark(), p.log_end_offset()), (3, 3));
    assert_eq!(p.advance_high_watermark(1), 3);
    assert_eq!(
        p.read(0, 1 << 20, Isolation::ReadUncommitted)
            .unwrap()
            .high_watermark,
        3
    );
    // Batches carry epoch 0 and the cache learns it from the first batch.
    assert_eq!(p.epoch_entries(), vec![(0, 0)]);
    let d = p.read(0, 1, Isolation::ReadUncommitted).unwrap();
    assert_eq!(validate(&d.records).unwrap().partition_leader_epoch, 0);
}

#[test]
fn the_epoch_cache_and_high_watermark_checkpoint_survive_reopening_and_trimming() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[]);
    {
        let s = Storage::open(&cfg).unwrap();
        let p = &s.create_topic("t", 1, small_segments()).unwrap().partitions[0];
        p.set_replicated(true);
        for (epoch, n) in [(1, 4), (3, 4), (4, 4)] {
            p.become_leader(epoch).unwrap();
            for i in 0..n {
                append(p, &batch(5, 1_000 + i, None), 1_000).unwrap();
            }
        }
        assert_eq!(p.epoch_entries(), vec![(1, 0), (3, 20), (4, 40)]);
        assert_eq!(p.advance_high_watermark(45), 45);
        s.flush_index().unwrap();
        assert_eq!(
            p.advance_high_watermark(50),
            50,
            "not checkpointed: lost on reopen"
        );
    }
    {
        let s = Storage::open(&cfg).unwrap();
        let p = &s.topic("t").unwrap().partitions[0];
        assert_eq!(p.epoch_entries(), vec![(1, 0), (3, 20), (4, 40)]);
        assert_eq!(p.high_watermark(), 60, "not replicated: the LEO");
        p.set_replicated(true);
        assert_eq!(p.high_watermark(), 45);
        // Truncation drops the epochs that start at or after the new end.
        p.truncate_to(40).unwrap();
        assert_eq!(p.epoch_entries(), vec![(1, 0), (3, 20)]);
        assert_eq!(p.high_watermark(), 40);
        // DeleteRecords drops the epochs wholly below the new log start.
        assert_eq!(p.delete_records_before(25).unwrap(), 25);
        assert_eq!(p.epoch_entries(), vec![(3, 25)]);
        s.flush_index().unwrap();
    }
    let s = Storage::open(&cfg).unwrap();
    let p = &s.topic("t").unwrap().partitions[0];
    assert_eq!(p.epoch_entries(), vec![(3, 25)]);
    p.set_replicated(true);
    assert_eq!(
        (p.log_start_offset(), p.high_watermark(), p.log_end_offset()),
        (25, 40, 40)
    );
    assert_eq!(p.end_offset_for_epoch(1), (1, 25));
}

#[test]
fn a_leaders_append_in_an_epoch_the_log_has_moved_past_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    // `old` leads epoch 3; `new` copies it, then leads epoch 4.
    let old = &s
        .create_topic("old", 1, BTreeMap::new())
        .unwrap()
        .partitions[0];
    let new = &s
        .create_topic("new", 1, BTreeMap::new())
        .unwrap()
        .partitions[0];
    old.become_leader(3).unwrap();
    let first = batch(2, 1_000, None);
    old.append_as_leader(3, validate(&first).unwrap(), &first, 1_000)
        .unwrap();
    let copied = old.read(0, 1 << 20, Isolation::LogEnd).unwrap().records;
    new.append_replicated(&copied, 1_000).unwrap();
    new.become_leader(4).unwrap();
    let second = batch(1, 2_000, None);
    new.append_as_leader(4, validate(&second).unwrap(), &second, 2_000)
        .unwrap();
    // `old` turned follower and copied the epoch-4 batch; a client's batch whose
    // leadership check passed in epoch 3, just before, comes to be appended only now.
    let copied = new.read(2, 1 << 20, Isolation::LogEnd).unwrap().records;
    old.append_replicated(&copied, 2_000).unwrap();
    let late = batch(1, 2_500, None);
    let refused = old.append_as_leader(3, validate(&late).unwrap(), &late, 2_500);
    assert!(
        matches!(
            refused,
            Err(AppendError::NotLeader {
                leader_epoch: 3,
                latest: Some(4)
            })
        ),
        "{refused:?}"
    );
    // Appended, it would sit at offset 3 stamped with epoch 4, where `new` may put
    // another batch: a divergence that no epoch comparison finds.
    assert_eq!(old.log_end_offset(), 3);
    assert_same(
        &observe(old),
        &observe(new),
        "the follower after the refusal",
    );
    // The leader of the latest epoch appends as before.
    new.append_as_leader(4, validate(&late).unwrap(), &late, 2_500)
        .unwrap();
}
