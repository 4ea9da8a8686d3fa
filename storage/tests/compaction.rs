//! Log compaction through the public storage interface, on a temporary directory: what a
//! consumer reading from the start sees after the cleaner ran, tombstones and their delete
//! horizon, transactions, and a crash at each step of a segment swap.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_config::BrokerConfig;
use sluice_protocol::batch::{validate, ControlType};
use sluice_storage::{
    AppendError, CleanOptions, CleanerCrashPoint, Isolation, Partition, Storage, StorageError,
};

const NOW: i64 = 1_700_000_000_000;

fn config(dir: &std::path::Path) -> BrokerConfig {
    let d = dir.to_string_lossy().into_owned();
    BrokerConfig::from_properties([("log.dirs", d.as_str())]).unwrap()
}

fn compacted(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut c = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), "2048".to_string()),
        // Records are stamped with test times far from the wall clock.
        (
            "message.timestamp.after.max.ms".to_string(),
            i64::MAX.to_string(),
        ),
    ]);
    for (k, v) in extra {
        c.insert(k.to_string(), v.to_string());
    }
    c
}

/// A batch of keyed records; `None` values are tombstones.
fn batch(
    entries: &[(Option<&str>, Option<String>)],
    producer: Option<(i64, i32, bool)>,
    compression: Compression,
) -> Bytes {
    let (pid, seq, transactional) = producer.unwrap_or((-1, -1, false));
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional,
            delete_horizon: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: if pid < 0 { -1 } else { 0 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if seq < 0 {
                i as i32 - 1
            } else {
                seq + i as i32
            },
            timestamp: NOW + i as i64,
            key: k.map(|k| Bytes::from(k.to_string())),
            value: v.clone().map(Bytes::from),
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

fn append(p: &Partition, b: &Bytes) -> Result<i64, AppendError> {
    p.append(validate(b).unwrap(), b, NOW)
        .map(|i| i.base_offset)
}

/// Appends `rounds` rounds of one record per key (`keys` keys), ten records a batch; the
/// value says the round.
fn fill(p: &Partition, keys: usize, rounds: usize) {
    let all: Vec<(String, String)> = (0..rounds)
        .flat_map(|r| (0..keys).map(move |k| (format!("key-{k}"), format!("value-{k}-round-{r}"))))
        .collect();
    for chunk in all.chunks(10) {
        let entries: Vec<(Option<&str>, Option<String>)> = chunk
            .iter()
            .map(|(k, v)| (Some(k.as_str()), Some(v.clone())))
            .collect();
        append(p, &batch(&entries, None, Compression::None)).unwrap();
    }
}

/// A record as a consumer from the start sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    offset: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    control: bool,
}

fn read_all(p: &Partition) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut offset = p.log_start_offset();
    while offset < p.high_watermark() {
        let data = p.read(offset, 1 << 20, Isolation::ReadUncommitted).unwrap();
        assert!(!data.records.is_empty(), "no progress at {offset}");
        let mut buf = data.records.clone();
        for set in RecordBatchDecoder::decode_all(&mut buf).unwrap() {
            for r in set.records {
                if r.offset >= offset {
                    out.push(Seen {
                        offset: r.offset,
                        key: r.key.clone(),
                        value: r.value.clone(),
                        control: r.control,
                    });
                }
            }
        }
        let last = data_last_offset(&data.records);
        offset = last + 1;
    }
    out
}

fn data_last_offset(records: &Bytes) -> i64 {
    let mut pos = 0;
    let mut last = -1;
    while pos < records.len() {
        let h = validate(&records[pos..]).unwrap();
        last = h.last_offset();
        pos += h.size();
    }
    last
}

fn opts() -> CleanOptions {
    CleanOptions {
        dedupe_buffer_size: 128 << 20,
        crash_point: None,
    }
}

/// The latest value of each key among `seen`.
fn latest(seen: &[Seen]) -> HashMap<Bytes, Option<Bytes>> {
    seen.iter()
        .filter(|s| !s.control)
        .map(|s| (s.key.clone().unwrap(), s.value.clone()))
        .collect()
}

/// Asserts what compaction promises below `clean_end`: each key at most once, and that
/// once is the key's latest value in the whole log.
fn assert_compacted(seen: &[Seen], clean_end: i64) {
    let latest = latest(seen);
    let mut keys_below = std::collections::HashSet::new();
    for s in seen.iter().filter(|s| s.offset < clean_end && !s.control) {
        let key = s.key.clone().unwrap();
        assert!(
            keys_below.insert(key.clone()),
            "{key:?} twice below {clean_end}"
        );
        let later = seen
            .iter()
            .any(|o| o.offset > s.offset && o.key.as_ref() == Some(&key));
        if !later {
            assert_eq!(latest[&key], s.value);
        }
    }
    assert!(seen.windows(2).all(|w| w[0].offset < w[1].offset));
}

#[test]
fn a_consumer_from_the_start_sees_every_key_latest_value() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = s.create_topic("t", 1, compacted(&[])).unwrap().partitions[0].clone();
    fill(&p, 50, 40);
    let before = read_all(&p);
    assert_eq!(before.len(), 2000);
    let hw = p.high_watermark();

    let due = p.cleanability(NOW).unwrap().unwrap();
    assert!(due.due && due.dirty_ratio == 1.0);
    let stats = p.clean(NOW, &opts()).unwrap().unwrap();
    assert!(stats.records_removed > 1500, "{stats:?}");
    assert!(stats.bytes_after < stats.bytes_before / 4, "{stats:?}");

    let after = read_all(&p);
    assert_eq!(latest(&after), latest(&before));
    assert_compacted(&after, stats.clean_end);
    assert_eq!(p.high_watermark(), hw);
    assert_eq!(p.log_start_offset(), 0);
    // Every offset still reads: one removed by the cleaner starts at the next record.
    let mid = p.read(5, 100, Isolation::ReadUncommitted).unwrap();
    assert!(!mid.records.is_empty());

    // Nothing is dirty now: no second pass is due.
    assert!(!p.cleanability(NOW).unwrap().unwrap().due);

    drop(p);
    drop(s);
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = s.topic("t").unwrap().partitions[0].clone();
    assert_eq!(read_all(&p), after);
    assert_eq!(p.high_watermark(), hw);
    // Appends go on at the same offsets after the restart.
    assert_eq!(
        append(
            &p,
            &batch(
                &[(Some("key-1"), Some("new".into()))],
                None,
                Compression::None
            )
        )
        .unwrap(),
        hw
    );
}

#[test]
fn compressed_batches_are_cleaned_in_their_codec() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = s.create_topic("t", 1, compacted(&[])).unwrap().partitions[0].clone();
    for round in 0..30 {
        let entries: Vec<(Option<&str>, Option<String>)> = ["a", "b", "c"]
            .iter()
            .map(|k| (Some(*k), Some(format!("{k}-{round}").repeat(10))))
            .collect();
        append(&p, &batch(&entries, None, Compression::Zstd)).unwrap();
    }
    let before = read_all(&p);
    let stats = p.clean(NOW, &opts()).unwrap().unwrap();
    let after = read_all(&p);
    assert_eq!(latest(&after), latest(&before));
    assert_compacted(&after, stats.clean_end);
    let first = p.read(0, 1, Isolation::ReadUncommitted).unwrap();
    let h = validate(&first.records).unwrap();
    assert_eq!(h.attributes & 0x07, 4, "still zstd");
}

#[test]
fn tombstones_stay_until_their_delete_horizon_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = s
        .create_topic("t", 1, compacted(&[("delete.retention.ms", "60000")]))
        .unwrap()
        .partitions[0]
        .clone();
    fill(&p, 20, 5);
    append(
        &p,
        &batch(
            &[(Some("key-3"), None), (Some("key-7"), None)],
            None,
            Compression::None,
        ),
    )
    .unwrap();
    fill(&p, 20, 1);
    // Push the tombstones out of the active segment.
    fill(&p, 5, 30);

    p.clean(NOW, &opts()).unwrap().unwrap();
    let seen = read_all(&p);
    let tombstones: Vec<&Seen> = seen.iter().filter(|s| s.value.is_none()).collect();
    assert_eq!(
        tombstones.len(),
        0,
        "key-3 and key-7 were written again after"
    );

    // Tombstones that are the latest record of their key.
    append(
        &p,
        &batch(
            &[(Some("key-11"), None), (Some("key-12"), None)],
            None,
            Compression::None,
        ),
    )
    .unwrap();
    fill(&p, 5, 30);
    p.clean(NOW, &opts()).unwrap().unwrap();
    let key = |k: &str| Some(Bytes::from(k.to_string()));
    let seen = read_all(&p);
    let kept: Vec<&Seen> = seen.iter().filter(|s| s.value.is_none()).collect();
    assert_eq!(
        kept.iter().map(|s| s.key.clone()).collect::<Vec<_>>(),
        vec![key("key-11"), key("key-12")]
    );
    // The horizon is a minute away: not due before, due after.
    assert!(!p.cleanability(NOW + 59_000).unwrap().unwrap().due);
    assert!(p.cleanability(NOW + 60_000).unwrap().unwrap().due);
    assert!(p.clean(NOW + 59_000, &opts()).unwrap().is_some());
    assert_eq!(read_all(&p).iter().filter(|s| s.value.is_none()).count(), 2);
    p.clean(NOW + 60_000, &opts()).unwrap().unwrap();
    let seen = read_all(&p);
    assert!(seen.iter().all(|s| s.value.is_some()), "tombstones gone");
    assert!(!seen
        .iter()
        .any(|s| s.key == key("key-11") || s.key == key("key-12")));
    assert!(!p.cleanability(NOW + 61_000).unwrap().unwrap().due);
}

#[test]
fn aborted_records_go_markers_stay_and_open_transactions_are_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = s.create_topic("t", 1, compacted(&[])).unwrap().partitions[0].clone();
    let aborted = batch(
        &[(Some("txn-a"), Some("aborted".into()))],
        Some((7, 0, true)),
        Compression::None,
    );
    append(&p, &aborted).unwrap();
    p.append_marker(7, 0, ControlType::Abort, NOW).unwrap();
    let committed = batch(
        &[(Some("txn-b"), Some("committed".into()))],
        Some((7, 1, true)),
        Compression::None,
    );
    append(&p, &committed).unwrap();
    p.append_marker(7, 0, ControlType::Commit, NOW).unwrap();
    fill(&p, 10, 10);
    // An open transaction after that: nothing from its first offset on is cleaned.
    let open_at = append(
        &p,
        &batch(
            &[(Some("txn-c"), Some("open".into()))],
            Some((8, 0, true)),
            Compression::None,
        ),
    )
    .unwrap();
    fill(&p, 10, 20);
    assert_eq!(p.last_stable_offset(), open_at);

    let stats = p.clean(NOW, &opts()).unwrap().unwrap();
    assert!(stats.clean_end <= open_at);
    let seen = read_all(&p);
    let value = |v: &str| Some(Bytes::from(v.to_string()));
    assert!(!seen.iter().any(|s| s.value == value("aborted")));
    assert!(seen.iter().any(|s| s.value == value("committed")));
    assert!(seen.iter().any(|s| s.value == value("open")));
    assert_eq!(
        seen.iter().filter(|s| s.control).count(),
        2,
        "both markers kept"
    );
    // Everything from the open transaction's first offset on is as written.
    assert_eq!(
        seen.iter().filter(|s| s.offset >= open_at).count() as i64,
        p.high_watermark() - open_at
    );
}

#[test]
fn keyless_records_are_refused_on_compacted_topics() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = s.create_topic("t", 1, compacted(&[])).unwrap().partitions[0].clone();
    let keyless = batch(
        &[(Some("a"), Some("1".into())), (None, Some("2".into()))],
        None,
        Compression::Lz4,
    );
    match append(&p, &keyless) {
        Err(AppendError::RecordErrors {
            invalid_timestamp: false,
            records,
            ..
        }) => {
            let got: Vec<(i32, &str)> = records
                .iter()
                .map(|e| (e.batch_index, e.message.as_str()))
                .collect();
            assert_eq!(
                got,
                [(
                    1,
                    "Compacted topic cannot accept message without key in topic partition t-0"
                )]
            );
        }
        other => panic!("expected the keyless record refused, got {other:?}"),
    }
    assert_eq!(p.high_watermark(), 0);
}

#[test]
fn a_named_compression_type_recompresses_and_producer_keeps_the_codec() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let gzip = BTreeMap::from([("compression.type".to_string(), "gzip".to_string())]);
    let p = s.create_topic("g", 1, gzip).unwrap().partitions[0].clone();
    let entries: Vec<(Option<&str>, Option<String>)> = (0..20)
        .map(|_| (Some("k"), Some("a compressible value ".repeat(20))))
        .collect();
    let plain = batch(&entries, None, Compression::None);
    append(&p, &plain).unwrap();
    let stored = p
        .read(0, 1 << 20, Isolation::ReadUncommitted)
        .unwrap()
        .records;
    assert_eq!(validate(&stored).unwrap().attributes & 0x07, 1, "gzip");
    assert!(stored.len() < plain.len() / 4);
    let mut a = stored.clone();
    let mut b = plain.clone();
    let values = |set: Vec<kafka_protocol::records::RecordSet>| {
        set.into_iter()
            .flat_map(|s| s.records)
            .map(|r| (r.offset, r.key, r.value, r.timestamp))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        values(RecordBatchDecoder::decode_all(&mut a).unwrap()),
        values(RecordBatchDecoder::decode_all(&mut b).unwrap())
    );

    let p = s.create_topic("p", 1, BTreeMap::new()).unwrap().partitions[0].clone();
    append(&p, &batch(&entries, None, Compression::Snappy)).unwrap();
    let stored = p
        .read(0, 1 << 20, Isolation::ReadUncommitted)
        .unwrap()
        .records;
    assert_eq!(
        validate(&stored).unwrap().attributes & 0x07,
        2,
        "snappy kept"
    );
}

#[test]
fn a_crash_at_each_step_of_a_swap_loses_nothing() {
    for point in [
        CleanerCrashPoint::BeforeSwap,
        CleanerCrashPoint::AfterSwapFile,
        CleanerCrashPoint::AfterIndex,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(&config(dir.path())).unwrap();
        let p = s.create_topic("t", 1, compacted(&[])).unwrap().partitions[0].clone();
        fill(&p, 30, 30);
        let before = read_all(&p);
        let hw = p.high_watermark();
        let crash = CleanOptions {
            crash_point: Some(point),
            ..opts()
        };
        match p.clean(NOW, &crash) {
            Err(StorageError::CrashPoint(name)) => assert_eq!(name, point.name()),
            other => panic!("{point:?}: {other:?}"),
        }
        drop(p);
        drop(s);

        let s = Storage::open(&config(dir.path())).unwrap();
        let p = s.topic("t").unwrap().partitions[0].clone();
        let names: Vec<String> = std::fs::read_dir(dir.path().join("t-0"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| n.ends_with(".log")),
            "{point:?}: {names:?}"
        );
        let recovered = read_all(&p);
        assert_eq!(latest(&recovered), latest(&before), "{point:?}");
        assert_eq!(p.high_watermark(), hw, "{point:?}");
        if point != CleanerCrashPoint::BeforeSwap {
            // The first group was swapped in by recovery.
            assert!(recovered.len() < before.len(), "{point:?}");
        }
        let stats = p.clean(NOW, &opts()).unwrap().unwrap();
        let after = read_all(&p);
        assert_eq!(latest(&after), latest(&before), "{point:?}");
        assert_compacted(&after, stats.clean_end);
    }
}

#[test]
fn retention_and_compaction_together() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = s
        .create_topic(
            "t",
            1,
            compacted(&[
                ("cleanup.policy", "compact,delete"),
                ("retention.bytes", "4096"),
            ]),
        )
        .unwrap()
        .partitions[0]
        .clone();
    fill(&p, 10, 60);
    assert!(p.enforce_retention(NOW).unwrap() > 0);
    let log_start = p.log_start_offset();
    assert!(log_start > 0);
    assert!(p.size_bytes() <= 4096 + 2048);
    let before = read_all(&p);
    let stats = p.clean(NOW, &opts()).unwrap().unwrap();
    assert_eq!(p.log_start_offset(), log_start);
    let after = read_all(&p);
    assert_eq!(latest(&after), latest(&before));
    assert_compacted(&after, stats.clean_end);
    assert!(after.iter().all(|s| s.offset >= log_start));
}

#[test]
fn compaction_lags_bound_what_is_cleaned_and_when() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    // min.compaction.lag.ms: a segment with records younger than the lag is left alone.
    let p = s
        .create_topic("min", 1, compacted(&[("min.compaction.lag.ms", "60000")]))
        .unwrap()
        .partitions[0]
        .clone();
    fill(&p, 20, 20);
    assert!(p.clean(NOW, &opts()).unwrap().is_none());
    assert!(p.cleanability(NOW + 30_000).unwrap().is_none());
    assert!(p.clean(NOW + 70_000, &opts()).unwrap().is_some());

    // max.compaction.lag.ms: due once the first dirty record waited that long, although
    // a dirty ratio of 1 never exceeds min.cleanable.dirty.ratio=1.
    let p = s
        .create_topic(
            "max",
            1,
            compacted(&[
                ("min.cleanable.dirty.ratio", "1"),
                ("max.compaction.lag.ms", "5000"),
                ("segment.bytes", "1048576"),
            ]),
        )
        .unwrap()
        .partitions[0]
        .clone();
    fill(&p, 20, 5);
    // KIP-354: the active segment rolls once it is older than the lag, so it can be cleaned.
    assert!(
        p.cleanability(NOW).unwrap().is_none(),
        "all in the active segment"
    );
    let late = batch(
        &[(Some("key-1"), Some("late".into()))],
        None,
        Compression::None,
    );
    // Segments are created on the wall clock; records carry the test's times.
    let wall = sluice_storage::now_ms();
    p.append(validate(&late).unwrap(), &late, wall + 6_000)
        .unwrap();
    let c = p.cleanability(NOW + 1_000).unwrap().unwrap();
    assert_eq!(c.dirty_ratio, 1.0);
    assert!(!c.due);
    assert!(p.cleanability(NOW + 6_000).unwrap().unwrap().due);
}
