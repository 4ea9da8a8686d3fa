//! The log's side of tiered storage through the public interface: which segment is copied
//! next, local retention only past what is copied, reads below the local log start sent
//! to the remote tier, total retention moving the log start offset, and the deletion
//! queue across a crash, a restart and a deleted topic.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::BytesMut;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_config::BrokerConfig;
use sluice_protocol::batch::validate;
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

fn append_one(p: &Partition, i: i64) {
    let r = Record {
        transactional: false,
        delete_horizon: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_000 + i,
        key: None,
        value: Some(bytes::Bytes::from(vec![b'v'; 100])),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &[r], &opts).unwrap();
    let b = buf.freeze();
    p.append(validate(&b).unwrap(), &b, 1_000).unwrap();
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
