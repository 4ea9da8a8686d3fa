//! Truncating a replica's log: after `truncate_to(offset)` a partition must be exactly
//! what a replica that only ever received the batches below `offset` is, through every
//! observable (reads at every offset and isolation, offsets, producers and their sequence
//! checks, aborted transactions, leader epochs, timestamps), also after reopening and
//! after a crash in the middle of the truncation.

use super::common::*;
use sluice_protocol::batch::{control_marker, validate, ControlType};
use sluice_storage::{Isolation, Storage, StorageError, TruncationCrashPoint};

/// The offsets worth truncating at: every batch boundary, and inside every batch of more
/// than one record.
fn cut_points(batches: &[(i64, i64, bytes::Bytes)]) -> Vec<i64> {
    let mut out = Vec::new();
    for (base, last, _) in batches {
        out.push(*base);
        if last > base {
            out.push(base + 1);
        }
    }
    out
}

/// Builds the leader log of `seed` in topic "full", truncates it at `offset` (stopping at
/// `crash` if given), gives topic "fresh" the batches below `offset` by follower appends,
/// and compares the two before and after reopening, then with probe appends.
fn check(seed: u64, steps: usize, offset: i64, crash: Option<TruncationCrashPoint>) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[]);
    {
        let s = Storage::open(&cfg).unwrap();
        let full = &s
            .create_topic("full", 1, small_segments())
            .unwrap()
            .partitions[0];
        let fresh = &s
            .create_topic("fresh", 1, small_segments())
            .unwrap()
            .partitions[0];
        build_leader_log(full, seed, steps);
        for (_, last, bytes) in all_batches(full) {
            if last < offset {
                fresh.append_replicated(&bytes, 30_000).unwrap();
            }
        }
        match crash {
            None => full.truncate_to(offset).unwrap(),
            Some(point) => {
                let e = full.truncate_to_crashing(offset, point).unwrap_err();
                assert!(matches!(e, StorageError::CrashPoint(_)), "{e:?}");
            }
        }
        if crash.is_none() {
            let what = format!("seed {seed} truncated at {offset}");
            assert_same(&observe(full), &observe(fresh), &what);
        }
        s.flush_index().unwrap();
    }
    let s = Storage::open(&cfg).unwrap();
    let full = &s.topic("full").unwrap().partitions[0];
    let fresh = &s.topic("fresh").unwrap().partitions[0];
    let what = format!("seed {seed} truncated at {offset} ({crash:?}), reopened");
    assert_same(&observe(full), &observe(fresh), &what);
    assert_same_probes(full, fresh, &what);
}

#[test]
fn truncation_at_every_offset_equals_a_replica_of_the_retained_batches() {
    for seed in [1u64, 2] {
        let probe_dir = tempfile::tempdir().unwrap();
        let s = Storage::open(&config(probe_dir.path(), &[])).unwrap();
        let p = &s.create_topic("t", 1, small_segments()).unwrap().partitions[0];
        build_leader_log(p, seed, 55);
        let batches = all_batches(p);
        // The log has what the test is about.
        let segments = std::fs::read_dir(p.dir()).unwrap().count();
        assert!(segments >= 3, "only {segments} segments");
        assert!(p.epoch_entries().len() >= 2, "{:?}", p.epoch_entries());
        let markers: Vec<ControlType> = batches
            .iter()
            .filter_map(|(_, _, b)| control_marker(b).map(|m| m.0))
            .collect();
        assert!(markers.contains(&ControlType::Commit) && markers.contains(&ControlType::Abort));
        let producers: Vec<i64> = p.producers().iter().map(|i| i.producer_id).collect();
        assert_eq!(producers, vec![1, 2, 10, 11]);
        // An idempotent producer with more batches than its entry remembers, so that
        // some truncation needs batches the entry had forgotten.
        let most = [1, 2]
            .map(|pid| {
                batches
                    .iter()
                    .filter(|(_, _, b)| validate(b).unwrap().producer_id == pid)
                    .count()
            })
            .into_iter()
            .max()
            .unwrap();
        assert!(
            most > 5,
            "the busiest idempotent producer has {most} batches"
        );
        let leo = p.log_end_offset();
        drop(s);
        for offset in cut_points(&batches) {
            check(seed, 55, offset, None);
        }
        // At the log end: nothing changes.
        check(seed, 55, leo, None);
    }
}

#[test]
fn a_crash_in_the_middle_of_a_truncation_converges_on_the_truncated_log() {
    for offset in [3, 17, 30] {
        for point in [
            TruncationCrashPoint::AfterIndex,
            TruncationCrashPoint::AfterFiles,
        ] {
            check(7, 40, offset, Some(point));
        }
    }
}

#[test]
fn truncation_keeps_the_high_watermark_at_or_below_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[]);
    {
        let s = Storage::open(&cfg).unwrap();
        let p = &s.create_topic("t", 1, small_segments()).unwrap().partitions[0];
        for i in 0..10 {
            append(p, &batch(2, 1_000 + i, None), 1_000).unwrap();
        }
        p.set_replicated(true);
        assert_eq!(p.high_watermark(), 0, "no checkpoint yet: the log start");
        assert_eq!(p.advance_high_watermark(16), 16);
        p.truncate_to(12).unwrap();
        assert_eq!((p.log_end_offset(), p.high_watermark()), (12, 12));
        // A truncation above the HW leaves it.
        p.truncate_to(20).unwrap();
        assert_eq!(
            p.advance_high_watermark(8),
            12,
            "the HW never moves back by advance"
        );
        p.truncate_to(10).unwrap();
        assert_eq!((p.log_end_offset(), p.high_watermark()), (10, 10));
        s.flush_index().unwrap();
    }
    let s = Storage::open(&cfg).unwrap();
    let p = &s.topic("t").unwrap().partitions[0];
    assert_eq!(p.log_end_offset(), 10);
    p.set_replicated(true);
    assert_eq!(p.high_watermark(), 10, "the checkpoint survived the reopen");
    assert!(matches!(
        p.truncate_to(-1),
        Err(StorageError::BelowLogStart {
            offset: -1,
            log_start_offset: 0
        })
    ));
}

#[test]
fn truncating_fully_restarts_the_log_at_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[]);
    {
        let s = Storage::open(&cfg).unwrap();
        let p = &s.create_topic("t", 1, small_segments()).unwrap().partitions[0];
        build_leader_log(p, 3, 30);
        p.truncate_fully_and_start_at(500).unwrap();
        assert_eq!(
            (p.log_start_offset(), p.log_end_offset(), p.high_watermark()),
            (500, 500, 500)
        );
        assert_eq!(p.producers(), vec![]);
        assert_eq!(p.epoch_entries(), vec![]);
        let names: Vec<_> = std::fs::read_dir(p.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["00000000000000000500.log".to_string()]);
        // The leader's batches from 500 on append where the log now starts.
        let leader = &s
            .create_topic("leader", 1, small_segments())
            .unwrap()
            .partitions[0];
        leader.truncate_fully_and_start_at(500).unwrap();
        append(leader, &batch(3, 1_000, None), 1_000).unwrap();
        for (_, _, b) in all_batches(leader) {
            p.append_replicated(&b, 1_000).unwrap();
        }
        assert_eq!(p.log_end_offset(), 503);
    }
    let s = Storage::open(&cfg).unwrap();
    let p = &s.topic("t").unwrap().partitions[0];
    assert_eq!((p.log_start_offset(), p.log_end_offset()), (500, 503));
    let d = p.read(500, 1 << 20, Isolation::LogEnd).unwrap();
    assert_eq!(
        sluice_protocol::batch::validate(&d.records)
            .unwrap()
            .base_offset,
        500
    );
    assert_eq!(p.epoch_entries(), vec![(0, 500)]);
}
