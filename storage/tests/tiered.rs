//! The log's side of tiered storage through the public interface: which segment is copied
//! next, local retention only past what is copied, reads below the local log start sent
//! to the remote tier, total retention moving the log start offset, and the deletion
//! queue across a crash, a restart and a deleted topic.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

mod common;

use common::{append_from, append_one};
use sluice_config::BrokerConfig;
use sluice_storage::{
    decode_batch_index, Isolation, Partition, ReadError, RemoteSegmentState, Storage,
};

fn config(dir: &std::path::Path) -> BrokerConfig {
    let d = dir.to_string_lossy().into_owned();
    BrokerConfig::from_properties([
        ("log.dirs", d.as_str()),
        ("remote.log.storage.system.enable", "true"),
        (
            "remote.storage.local.dir",
            "/nonexistent-not-used-by-storage",
        ),
    ])
    .unwrap()
}

fn tiered_topic(s: &Storage, name: &str, extra: &[(&str, &str)]) -> std::sync::Arc<Partition> {
    let mut configs = BTreeMap::new();
    // About two 170-byte batches per segment.
    configs.insert("segment.bytes".to_string(), "400".to_string());
    configs.insert("remote.storage.enable".to_string(), "true".to_string());
    configs.insert("local.retention.bytes".to_string(), "400".to_string());
    for (k, v) in extra {
        configs.insert(k.to_string(), v.to_string());
    }
    let t = s.create_topic(name, 1, configs).unwrap();
    t.partitions[0].clone()
}

/// The topic config of `overrides` on `broker`.
fn topic_config(broker: &BrokerConfig, overrides: &[(&str, &str)]) -> sluice_config::TopicConfig {
    let overrides: BTreeMap<String, String> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    sluice_config::TopicConfig::resolve(broker, &overrides)
}

/// Copies every sealed segment, as the remote log manager would with a store that works.
fn copy_all(p: &Partition) -> Vec<sluice_storage::RemoteSegment> {
    let mut copied = Vec::new();
    while let Some(job) = p.begin_copy(5_000).unwrap() {
        assert_eq!(job.segment.state, RemoteSegmentState::CopyStarted);
        assert_eq!(job.file.metadata().unwrap().len(), job.segment.size_bytes);
        let index = decode_batch_index(&job.offset_index).unwrap();
        assert_eq!(index.first().unwrap().base_offset, job.segment.base_offset);
        assert_eq!(index.last().unwrap().last_offset, job.segment.end_offset);
        assert!(p.finish_copy(&job.segment, 5_001).unwrap());
        copied.push(job.segment);
    }
    copied
}

#[test]
fn copied_segments_leave_the_local_disk_and_reads_go_remote() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = tiered_topic(&s, "t", &[]);
    for i in 0..10 {
        append_one(&p, i);
    }
    // Nothing copied yet: local retention deletes nothing, however small it is.
    assert_eq!(p.enforce_retention(10_000).unwrap(), 0);
    let copied = copy_all(&p);
    assert_eq!(copied.len(), 4, "every sealed segment, not the active one");
    assert_eq!(copied[0].base_offset, 0);
    assert_eq!(copied[3].end_offset, 7);
    assert_eq!(p.highest_remote_offset(), Some(7));
    assert_eq!(p.copy_lag(), (0, 0));

    let deleted = p.enforce_retention(10_000).unwrap();
    assert!(deleted >= 3, "{deleted}");
    assert_eq!(
        p.log_start_offset(),
        0,
        "the log still starts in the remote tier"
    );
    let local_start = p.local_log_start_offset();
    assert!(local_start >= 6, "{local_start}");
    match p.read_region(1, 1 << 20, Isolation::ReadUncommitted) {
        Err(ReadError::InRemoteTier(r)) => {
            assert_eq!(r.offset, 1);
            assert_eq!(r.segment.base_offset, 0);
            assert_eq!(r.high_watermark, 10);
            assert_eq!(r.log_start_offset, 0);
        }
        other => panic!("expected a remote read, got {other:?}"),
    }
    // At and above the local log start the local log answers.
    let data = p
        .read(local_start, 1 << 20, Isolation::ReadUncommitted)
        .unwrap();
    assert!(!data.records.is_empty());

    // Reopened, the remote segments and the log start offset are as they were.
    drop(p);
    drop(s);
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = s.partition("t", 0).unwrap();
    assert_eq!(p.log_start_offset(), 0);
    assert_eq!(p.local_log_start_offset(), local_start);
    assert_eq!(
        p.remote_segments(),
        copied
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c.state = RemoteSegmentState::CopyFinished;
                c.event_ms = 5_001;
                c
            })
            .collect::<Vec<_>>()
    );
    assert!(s.remote_deletions().unwrap().is_empty());
}

#[test]
fn total_retention_queues_remote_segments_and_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = tiered_topic(&s, "t", &[("retention.bytes", "800")]);
    for i in 0..10 {
        append_one(&p, i);
    }
    let copied = copy_all(&p);
    p.enforce_retention(10_000).unwrap();
    let doomed = p.expire_remote(10_000).unwrap();
    assert!(!doomed.is_empty());
    let last = doomed.last().unwrap();
    assert_eq!(p.log_start_offset(), last.end_offset + 1);
    let queued = s.remote_deletions().unwrap();
    assert_eq!(queued.len(), doomed.len());
    assert!(queued
        .iter()
        .all(|q| q.state == RemoteSegmentState::DeleteStarted));
    // A read below the new log start is out of range.
    assert!(matches!(
        p.read_region(0, 1 << 20, Isolation::ReadUncommitted),
        Err(ReadError::OutOfRange { .. })
    ));
    // The queue survives a restart until each deletion is finished.
    drop(p);
    drop(s);
    let s = Storage::open(&config(dir.path())).unwrap();
    let queued = s.remote_deletions().unwrap();
    assert_eq!(queued.len(), doomed.len());
    for q in &queued {
        s.finish_remote_deletion(q.segment_id).unwrap();
    }
    assert!(s.remote_deletions().unwrap().is_empty());
    let p = s.partition("t", 0).unwrap();
    assert_eq!(p.remote_segments().len(), copied.len() - doomed.len());
}

#[test]
fn an_interrupted_copy_is_queued_for_deletion_and_copied_again() {
    let dir = tempfile::tempdir().unwrap();
    let first_id;
    {
        let s = Storage::open(&config(dir.path())).unwrap();
        let p = tiered_topic(&s, "t", &[]);
        for i in 0..6 {
            append_one(&p, i);
        }
        let job = p.begin_copy(1).unwrap().unwrap();
        first_id = job.segment.segment_id;
        // While a copy runs, no second one starts.
        assert!(p.begin_copy(2).unwrap().is_none());
        // The broker dies before the copy finishes.
    }
    let s = Storage::open(&config(dir.path())).unwrap();
    let queued = s.remote_deletions().unwrap();
    assert_eq!(
        queued.iter().map(|q| q.segment_id).collect::<Vec<_>>(),
        vec![first_id]
    );
    let p = s.partition("t", 0).unwrap();
    assert!(p.remote_segments().is_empty());
    let again = p.begin_copy(3).unwrap().unwrap();
    assert_eq!(again.segment.base_offset, 0);
    assert_ne!(again.segment.segment_id, first_id);
    // A failed upload is given up and queued too.
    p.abandon_copy(&again.segment, 4).unwrap();
    assert_eq!(s.remote_deletions().unwrap().len(), 2);
    assert!(p.begin_copy(5).unwrap().is_some());
}

#[test]
fn deleting_the_topic_queues_its_remote_segments() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = tiered_topic(&s, "t", &[]);
    for i in 0..10 {
        append_one(&p, i);
    }
    let copied = copy_all(&p);
    let in_flight = p.begin_copy(6_000).unwrap();
    assert!(in_flight.is_none(), "all sealed segments are copied");
    s.delete_topic("t").unwrap();
    let queued = s.remote_deletions().unwrap();
    assert_eq!(queued.len(), copied.len());
    // A copy that finishes after its topic went is queued instead of recorded.
    drop(p);
}

#[test]
fn an_untiered_topic_copies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let mut configs = BTreeMap::new();
    configs.insert("segment.bytes".to_string(), "400".to_string());
    let t = s.create_topic("plain", 1, configs).unwrap();
    let p = &t.partitions[0];
    for i in 0..6 {
        append_one(p, i);
    }
    assert!(!p.tiered());
    assert!(p.begin_copy(1).unwrap().is_none());
    assert_eq!(p.local_log_start_offset(), 0);
}

/// In a cluster a replica takes the copied segments from the cluster metadata, and a
/// follower behind the leader's local log start restarts its local log there: the log
/// start offset stays below it, reads in between go to the remote tier, the leader epochs
/// come from the remote segments and the producers from the uploaded snapshot, and all of
/// it survives a restart.
#[test]
fn a_follower_takes_the_remote_segments_and_starts_past_them() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = Storage::open(&config(leader_dir.path())).unwrap();
    let lp = tiered_topic(&leader, "t", &[]);
    lp.become_leader(3).unwrap();
    for i in 0..10 {
        append_from(&lp, i, 7);
    }
    let mut jobs = Vec::new();
    while let Some(job) = lp.begin_copy(5_000).unwrap() {
        assert!(lp.finish_copy(&job.segment, 5_001).unwrap());
        jobs.push(job);
    }
    lp.enforce_retention(10_000).unwrap();
    let local_start = lp.local_log_start_offset();
    assert!(local_start > 0, "{local_start}");
    let last_copied = jobs
        .iter()
        .find(|j| j.segment.end_offset == local_start - 1)
        .unwrap();

    let follower_dir = tempfile::tempdir().unwrap();
    let follower = Storage::open(&config(follower_dir.path())).unwrap();
    let mut configs = BTreeMap::new();
    configs.insert("segment.bytes".to_string(), "400".to_string());
    configs.insert("remote.storage.enable".to_string(), "true".to_string());
    configs.insert("local.retention.bytes".to_string(), "400".to_string());
    let fp = follower
        .create_topic_with_id("t", lp.topic_id, 1, configs.clone())
        .unwrap()
        .partitions[0]
        .clone();
    fp.set_replicated(true);
    // Segments of another topic id are not this partition's.
    let mut stranger = lp.remote_segments()[0].clone();
    stranger.topic_id = uuid::Uuid::new_v4();
    let mut copied = lp.remote_segments();
    copied.push(stranger);
    fp.sync_remote(copied).unwrap();
    assert_eq!(fp.remote_segments(), lp.remote_segments());

    fp.truncate_fully_and_start_at_tiered(local_start, 0, Some(&last_copied.producer_snapshot))
        .unwrap();
    let check = |fp: &Partition| {
        assert_eq!(fp.log_start_offset(), 0);
        assert_eq!(fp.local_log_start_offset(), local_start);
        assert_eq!(fp.log_end_offset(), local_start);
        assert_eq!(fp.epoch_entries(), vec![(3, 0)]);
        let producers = fp.producers();
        assert_eq!(producers.len(), 1);
        assert_eq!(producers[0].producer_id, 7);
        assert_eq!(
            producers[0].last_sequence, 9,
            "the state when the segment was copied"
        );
        let Err(ReadError::InRemoteTier(r)) = fp.read_region(1, 1 << 20, Isolation::LogEnd) else {
            panic!("offset 1 is not remote");
        };
        assert_eq!(r.segment, lp.remote_segments()[0]);
    };
    check(&fp);
    drop(fp);
    drop(follower);
    let follower = Storage::open(&config(follower_dir.path())).unwrap();
    check(&follower.partition("t", 0).unwrap());

    // The leader's remote segments expire: the replica forgets them.
    let fp = follower.partition("t", 0).unwrap();
    fp.sync_remote(Vec::new()).unwrap();
    assert!(fp.remote_segments().is_empty());
}

/// Tiered storage turned off with `remote.log.delete.on.disable` (KIP-950): every remote
/// segment is queued for deletion and the log starts at the local log start.
#[test]
fn turning_tiered_storage_off_deletes_the_remote_segments() {
    let dir = tempfile::tempdir().unwrap();
    let broker = config(dir.path());
    let s = Storage::open(&broker).unwrap();
    let p = tiered_topic(&s, "t", &[]);
    for i in 0..10 {
        append_one(&p, i);
    }
    let copied = copy_all(&p);
    p.enforce_retention(10_000).unwrap();
    let local_start = p.local_log_start_offset();
    assert!(local_start > 0 && local_start < 10, "{local_start}");
    // Still tiered: nothing is past retention.
    assert!(p.expire_remote(10_000).unwrap().is_empty());

    p.set_config(topic_config(
        &broker,
        &[
            ("segment.bytes", "400"),
            ("remote.storage.enable", "false"),
            ("remote.log.delete.on.disable", "true"),
        ],
    ));
    let doomed = p.expire_remote(10_000).unwrap();
    assert_eq!(doomed.len(), copied.len());
    assert!(p.remote_segments().is_empty());
    assert_eq!(p.log_start_offset(), local_start);
    assert_eq!(s.remote_deletions().unwrap().len(), copied.len());
    let data = p
        .read_region(local_start, 1 << 20, Isolation::ReadUncommitted)
        .unwrap();
    assert!(data.records.is_some());
}

/// `remote.log.copy.disable`: no more copies, and what is remote stays readable.
#[test]
fn copy_disable_stops_copies_and_keeps_remote_reads() {
    let dir = tempfile::tempdir().unwrap();
    let broker = config(dir.path());
    let s = Storage::open(&broker).unwrap();
    let p = tiered_topic(&s, "t", &[]);
    for i in 0..6 {
        append_one(&p, i);
    }
    let copied = copy_all(&p);
    assert!(!copied.is_empty());
    p.enforce_retention(10_000).unwrap();
    p.set_config(topic_config(
        &broker,
        &[
            ("segment.bytes", "400"),
            ("remote.storage.enable", "true"),
            ("local.retention.bytes", "400"),
            ("remote.log.copy.disable", "true"),
        ],
    ));
    for i in 6..12 {
        append_one(&p, i);
    }
    assert!(p.begin_copy(6_000).unwrap().is_none());
    assert!(p.copy_lag().0 > 0, "sealed segments wait uncopied");
    let ids = |segs: Vec<sluice_storage::RemoteSegment>| -> Vec<_> {
        segs.into_iter().map(|s| s.segment_id).collect()
    };
    assert_eq!(ids(p.remote_segments()), ids(copied));
    assert!(matches!(
        p.read_region(0, 1 << 20, Isolation::ReadUncommitted),
        Err(ReadError::InRemoteTier(_))
    ));
}
