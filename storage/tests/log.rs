//! The partition log through the public storage interface, on a temporary directory.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_config::BrokerConfig;
use sluice_protocol::batch::{split_batches, validate};
use sluice_storage::{AppendError, Isolation, ReadError, SequenceError, Storage};

fn config(dir: &std::path::Path, extra: &[(&str, &str)]) -> BrokerConfig {
    let d = dir.to_string_lossy().into_owned();
    let mut props: Vec<(&str, &str)> = vec![("log.dirs", d.as_str())];
    props.extend_from_slice(extra);
    BrokerConfig::from_properties(props).unwrap()
}

/// A producer-style batch of `n` records with timestamps `ts0..ts0+n`.
fn batch(n: i64, ts0: i64, producer: Option<(i64, i16, i32)>, compression: Compression) -> Bytes {
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            delete_horizon: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // The encoder batches records whose offset - sequence is constant; without a
            // producer the batch's base sequence must come out as -1.
            sequence: if seq < 0 {
                i as i32 - 1
            } else {
                seq + i as i32
            },
            timestamp: ts0 + i,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{ts0}-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

fn append(
    p: &sluice_storage::Partition,
    b: &Bytes,
) -> Result<sluice_storage::AppendInfo, AppendError> {
    let h = validate(b).unwrap();
    assert_eq!(h.size(), b.len(), "test batches are single batches");
    p.append(h, b, sluice_storage::now_ms())
}

#[test]
fn offsets_are_assigned_and_reads_return_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    let t = s.create_topic("t", 1, BTreeMap::new()).unwrap();
    let p = &t.partitions[0];
    assert_eq!(
        append(p, &batch(3, 100, None, Compression::None))
            .unwrap()
            .base_offset,
        0
    );
    assert_eq!(
        append(p, &batch(2, 200, None, Compression::Lz4))
            .unwrap()
            .base_offset,
        3
    );
    assert_eq!(p.high_watermark(), 5);
    // Reading from the middle of the second batch returns that whole batch.
    let data = p.read(4, 1 << 20, Isolation::ReadUncommitted).unwrap();
    let batches = split_batches(&data.records).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].0.base_offset, 3);
    assert_eq!(data.high_watermark, 5);
    // max_bytes of 1 still returns the first whole batch (KIP-74), and no more.
    let data = p.read(0, 1, Isolation::ReadUncommitted).unwrap();
    assert_eq!(split_batches(&data.records).unwrap().len(), 1);
    assert!(matches!(
        p.read(6, 100, Isolation::ReadUncommitted),
        Err(ReadError::OutOfRange { .. })
    ));
    assert!(p
        .read(5, 100, Isolation::ReadUncommitted)
        .unwrap()
        .records
        .is_empty());
}

#[test]
fn timestamps_find_the_exact_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    let t = s.create_topic("t", 1, BTreeMap::new()).unwrap();
    let p = &t.partitions[0];
    append(p, &batch(5, 100, None, Compression::Gzip)).unwrap(); // offsets 0..5, ts 100..105
    append(p, &batch(5, 50, None, Compression::None)).unwrap(); // offsets 5..10, ts 50..55
    append(p, &batch(5, 300, None, Compression::Zstd)).unwrap(); // offsets 10..15, ts 300..305
    let at = |ts| {
        p.offset_for_timestamp(ts)
            .unwrap()
            .map(|f| (f.offset, f.timestamp))
    };
    assert_eq!(at(0), Some((0, 100)));
    assert_eq!(at(102), Some((2, 102)));
    assert_eq!(at(104), Some((4, 104)));
    assert_eq!(at(105), Some((10, 300)));
    assert_eq!(at(304), Some((14, 304)));
    assert_eq!(at(305), None);
    let max = p.max_timestamp_offset().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp), (14, 304));
}

#[test]
fn idempotent_producer_duplicates_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    let t = s.create_topic("t", 1, BTreeMap::new()).unwrap();
    let p = &t.partitions[0];
    let first = batch(3, 0, Some((7, 0, 0)), Compression::None);
    assert_eq!(append(p, &first).unwrap().base_offset, 0);
    let dup = append(p, &first).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.base_offset, 0);
    assert_eq!(p.high_watermark(), 3);
    let gap = append(p, &batch(1, 0, Some((7, 0, 5)), Compression::None));
    assert!(matches!(
        gap,
        Err(AppendError::Sequence(SequenceError::OutOfOrder {
            expected: 3,
            got: 5
        }))
    ));
    assert_eq!(
        append(p, &batch(1, 0, Some((7, 0, 3)), Compression::None))
            .unwrap()
            .base_offset,
        3
    );
}

#[test]
fn producer_state_and_data_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("log.segment.bytes", "300")]);
    // Timestamps of now: a producer whose last batch is older than
    // producer.id.expiration.ms (a day) is expired at start-up, as Kafka does.
    let now = sluice_storage::now_ms();
    let first = batch(2, now, Some((9, 0, 0)), Compression::None);
    {
        let s = Storage::open(&cfg).unwrap();
        let t = s.create_topic("t", 2, BTreeMap::new()).unwrap();
        append(&t.partitions[1], &first).unwrap();
        for i in 0..10 {
            append(
                &t.partitions[1],
                &batch(
                    2,
                    now + i,
                    Some((9, 0, 2 + 2 * i as i32)),
                    Compression::None,
                ),
            )
            .unwrap();
        }
    }
    let s = Storage::open(&cfg).unwrap();
    let t = s.topic("t").unwrap();
    let p = &t.partitions[1];
    assert_eq!(p.high_watermark(), 22);
    assert_eq!(t.partitions[0].high_watermark(), 0);
    // The first batch is no longer among the last five: neither duplicate nor next.
    assert!(matches!(
        append(p, &first),
        Err(AppendError::Sequence(SequenceError::OutOfOrder { .. }))
    ));
    assert_eq!(
        append(p, &batch(1, 0, Some((9, 0, 22)), Compression::None))
            .unwrap()
            .base_offset,
        22
    );
    let mut offset = 0;
    while offset < 23 {
        let data = p.read(offset, 1 << 20, Isolation::ReadUncommitted).unwrap();
        for (h, _) in split_batches(&data.records).unwrap() {
            assert_eq!(h.base_offset, offset);
            offset = h.last_offset() + 1;
        }
    }
}

#[test]
fn a_torn_tail_is_truncated_and_acknowledged_batches_stay() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[]);
    {
        let s = Storage::open(&cfg).unwrap();
        let t = s.create_topic("t", 1, BTreeMap::new()).unwrap();
        for i in 0..4 {
            append(&t.partitions[0], &batch(3, i * 10, None, Compression::None)).unwrap();
        }
    }
    // A crash mid-write: half a batch at the end of the segment.
    let seg = dir.path().join("t-0").join("00000000000000000000.log");
    let half = batch(3, 99, None, Compression::None);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&half[..half.len() / 2])
        .unwrap();
    let s = Storage::open(&cfg).unwrap();
    let p = &s.topic("t").unwrap().partitions[0];
    assert_eq!(p.high_watermark(), 12);
    assert_eq!(
        append(p, &batch(1, 5, None, Compression::None))
            .unwrap()
            .base_offset,
        12
    );
    let data = p.read(0, 1 << 20, Isolation::ReadUncommitted).unwrap();
    let offsets: Vec<i64> = split_batches(&data.records)
        .unwrap()
        .iter()
        .map(|(h, _)| h.base_offset)
        .collect();
    assert_eq!(offsets, vec![0, 3, 6, 9, 12]);
}

#[test]
fn retention_by_size_deletes_whole_segments_from_the_front() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    let mut overrides = BTreeMap::new();
    overrides.insert("segment.bytes".to_string(), "200".to_string());
    overrides.insert("retention.bytes".to_string(), "400".to_string());
    let t = s.create_topic("t", 1, overrides).unwrap();
    let p = &t.partitions[0];
    // Recent timestamps, so that only size (not the 7-day time retention) applies.
    let now = sluice_storage::now_ms();
    for i in 0..20 {
        append(p, &batch(1, now + i, None, Compression::None)).unwrap();
    }
    let before = p.size_bytes();
    assert!(s.enforce_retention() > 0);
    assert!(p.size_bytes() < before);
    assert!(
        p.size_bytes() >= 400,
        "retention keeps at least retention.bytes"
    );
    let start = p.log_start_offset();
    assert!(start > 0);
    assert!(matches!(
        p.read(start - 1, 100, Isolation::ReadUncommitted),
        Err(ReadError::OutOfRange { .. })
    ));
    let data = p.read(start, 1 << 20, Isolation::ReadUncommitted).unwrap();
    assert_eq!(
        split_batches(&data.records).unwrap()[0].0.base_offset,
        start
    );
    // Timestamp lookups answer from what remains.
    assert_eq!(p.offset_for_timestamp(0).unwrap().unwrap().offset, start);
}

#[test]
fn groups_and_committed_offsets_survive_reopening() {
    use sluice_storage::{CommittedOffset, GroupRecord, MemberRecord};
    let dir = tempfile::tempdir().unwrap();
    let committed = |offset, metadata: &str| CommittedOffset {
        offset,
        leader_epoch: 3,
        metadata: metadata.to_string(),
        commit_timestamp: 1_700_000_000_000,
    };
    let record = GroupRecord {
        protocol_type: Some("consumer".into()),
        generation: 4,
        protocol: Some("range".into()),
        leader: Some("m1".into()),
        state_timestamp: 1_700_000_000_000,
        members: vec![MemberRecord {
            member_id: "m1".into(),
            client_id: "c1".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 300_000,
            session_timeout_ms: 45_000,
            subscription: vec![0, 1, 2],
            assignment: vec![9, 8],
            ..MemberRecord::default()
        }],
    };
    {
        let storage = Storage::open(&config(dir.path(), &[])).unwrap();
        storage.store_group("g", &record).unwrap();
        storage
            .commit_offsets(
                "g",
                &[
                    ("orders".into(), 0, committed(10, "a")),
                    ("orders".into(), 1, committed(20, "")),
                ],
            )
            .unwrap();
        // A group whose name extends "g" must not share its offsets.
        storage
            .commit_offsets("g2", &[("orders".into(), 0, committed(5, "other"))])
            .unwrap();
        storage
            .delete_offsets("g", &[("orders".into(), 1)])
            .unwrap();
        storage.flush_index().unwrap();
    }
    let storage = Storage::open(&config(dir.path(), &[])).unwrap();
    let groups = storage.load_groups().unwrap();
    assert_eq!(
        groups,
        vec![
            (
                "g".to_string(),
                Some(record),
                vec![("orders".to_string(), 0, committed(10, "a"))]
            ),
            (
                "g2".to_string(),
                None,
                vec![("orders".to_string(), 0, committed(5, "other"))]
            ),
        ]
    );
    storage.delete_group("g").unwrap();
    let names: Vec<String> = storage
        .load_groups()
        .unwrap()
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    assert_eq!(names, vec!["g2".to_string()]);
}

#[test]
fn index_stats_report_memtables_keys_and_sst_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    let t = s.create_topic("t", 1, BTreeMap::new()).unwrap();
    for i in 0..10 {
        append(&t.partitions[0], &batch(3, i * 10, None, Compression::None)).unwrap();
    }
    let stats = s.index_stats();
    assert!(stats.memtable_bytes > 0, "{stats:?}");
    assert!(stats.estimated_keys > 0, "{stats:?}");
    drop(t);
    drop(s);
    // Reopening replays the write-ahead log into SST files.
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    let stats = s.index_stats();
    assert!(stats.live_sst_files_bytes > 0, "{stats:?}");
    assert!(stats.estimated_keys > 0, "{stats:?}");
}

/// Every read, at every offset and byte limit, returns exactly the longest run of whole
/// batches a reader walking the segment would return: the batch holding the offset, then
/// each next batch of the same segment while the total stays within the limit.
#[test]
fn reads_end_at_the_last_whole_batch_within_the_byte_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path(), &[])).unwrap();
    let mut configs = BTreeMap::new();
    configs.insert("segment.bytes".to_string(), "1500".to_string());
    let t = s.create_topic("t", 1, configs).unwrap();
    let p = &t.partitions[0];
    // Batches of 1 to 7 records, so sizes and offsets per batch vary.
    let mut batches = Vec::new();
    for i in 0..60i64 {
        let n = 1 + (i * 5) % 7;
        let info = append(p, &batch(n, i * 10, None, Compression::None)).unwrap();
        batches.push((info.base_offset, info.last_offset));
    }
    assert!(
        std::fs::read_dir(p.dir()).unwrap().count() > 3,
        "the test needs several segments"
    );
    // What each batch is, and which segment holds it, from one read per batch.
    let mut stored = Vec::new();
    for (base, last) in &batches {
        let one = p.read(*base, 1, Isolation::ReadUncommitted).unwrap();
        let got = split_batches(&one.records).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].0.base_offset, got[0].0.last_offset()),
            (*base, *last)
        );
        stored.push(one.records.clone());
    }
    let segment_of = |i: usize| {
        let r = p
            .read_region(batches[i].0, 1, Isolation::ReadUncommitted)
            .unwrap();
        r.records.unwrap().path().to_path_buf()
    };
    let segments: Vec<_> = (0..batches.len()).map(segment_of).collect();
    for start in 0..batches.len() {
        for offset in batches[start].0..=batches[start].1 {
            for max_bytes in [0usize, 1, 70, 150, 333, 1000, 2500, 1 << 20] {
                let mut expected = stored[start].to_vec();
                let mut i = start + 1;
                while i < batches.len()
                    && segments[i] == segments[start]
                    && expected.len() + stored[i].len() <= max_bytes
                {
                    expected.extend_from_slice(&stored[i]);
                    i += 1;
                }
                let got = p
                    .read(offset, max_bytes, Isolation::ReadUncommitted)
                    .unwrap();
                assert_eq!(
                    &got.records[..],
                    &expected[..],
                    "read at offset {offset} with max_bytes {max_bytes}"
                );
            }
        }
    }
}

/// With a budget of 3 open segment files, 8 partitions of several segments each take
/// appends, serve exact reads and come back after a restart, with never more than 3
/// segment files open between calls.
#[test]
fn many_segments_work_within_a_small_open_files_budget() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("log.max.open.segment.files", "3")]);
    let mut topic_configs = BTreeMap::new();
    topic_configs.insert("segment.bytes".to_string(), "250".to_string());
    let mut expected: Vec<Vec<Bytes>> = vec![Vec::new(); 8];
    {
        let s = Storage::open(&cfg).unwrap();
        let t = s.create_topic("t", 8, topic_configs).unwrap();
        for round in 0..12i64 {
            for (i, p) in t.partitions.iter().enumerate() {
                let b = batch(2, round * 100 + i as i64, None, Compression::None);
                let info = append(p, &b).unwrap();
                assert_eq!(info.base_offset, round * 2);
                let stored = p
                    .read(info.base_offset, 1, Isolation::ReadUncommitted)
                    .unwrap();
                expected[i].push(stored.records);
                assert!(
                    s.open_segment_files().0 <= 3,
                    "{:?}",
                    s.open_segment_files()
                );
            }
        }
        assert!(
            std::fs::read_dir(t.partitions[0].dir()).unwrap().count() > 3,
            "the test needs several segments per partition"
        );
    }
    let s = Storage::open(&cfg).unwrap();
    // Start-up checks each partition's last batch, within the budget too.
    assert!(
        s.open_segment_files().0 <= 3,
        "{:?}",
        s.open_segment_files()
    );
    let t = s.topic("t").unwrap();
    for (i, p) in t.partitions.iter().enumerate() {
        let mut offset = 0;
        let mut got = Vec::new();
        while offset < p.high_watermark() {
            let data = p.read(offset, 1 << 20, Isolation::ReadUncommitted).unwrap();
            for (h, b) in split_batches(&data.records).unwrap() {
                offset = h.last_offset() + 1;
                got.push(b);
            }
            assert!(s.open_segment_files().0 <= 3);
        }
        assert_eq!(got, expected[i], "partition {i}");
    }
}
