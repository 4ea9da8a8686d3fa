//! The remote tier end to end with object_store's in-memory store: the remote log manager
//! copies a tiered partition's sealed segments, local retention drops them, and the reader
//! gives back the very bytes that were appended, finds offsets by timestamp, and the
//! deletion queue empties the store once total retention runs.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_config::BrokerConfig;
use sluice_protocol::batch::validate;
use sluice_storage::{Isolation, Partition, ReadError, Storage};
use sluice_tier::{RemoteLogManager, RemoteReader, RemoteStore, TierMetrics};

/// One batch of one record, timestamp `base` + 10*i.
fn batch(base: i64, i: i64) -> Bytes {
    let records: Vec<Record> = (0..1)
        .map(|j| Record {
            transactional: false,
            delete_horizon: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: j,
            sequence: -1,
            timestamp: base + 10 * i + j,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![i as u8; 250])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &opts).unwrap();
    buf.freeze()
}

fn open(dir: &std::path::Path) -> Arc<Storage> {
    let d = dir.to_string_lossy().into_owned();
    let cfg = BrokerConfig::from_properties([
        ("log.dirs", d.as_str()),
        ("remote.log.storage.system.enable", "true"),
        ("remote.storage.local.dir", d.as_str()),
    ])
    .unwrap();
    Arc::new(Storage::open(&cfg).unwrap())
}

fn manager(
    storage: &Arc<Storage>,
    store: RemoteStore,
    metrics: TierMetrics,
) -> Arc<RemoteLogManager> {
    let cfg = BrokerConfig::default().remote;
    RemoteLogManager::new(storage.clone(), store, cfg, metrics)
}

/// Runs rounds until `done` holds (copies run in spawned tasks).
async fn rounds_until(m: &Arc<RemoteLogManager>, what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        m.round().await;
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the remote log manager did not get there: {what}");
}

#[tokio::test]
async fn copied_segments_read_back_byte_for_byte_and_go_with_retention() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let mut configs = BTreeMap::new();
    configs.insert("segment.bytes".to_string(), "700".to_string());
    configs.insert("remote.storage.enable".to_string(), "true".to_string());
    configs.insert("local.retention.bytes".to_string(), "700".to_string());
    let topic = storage.create_topic("events", 1, configs).unwrap();
    let p: Arc<Partition> = topic.partitions[0].clone();
    let mut appended = Vec::new();
    // Recent timestamps, or time retention (168 hours) would expire the segments at once.
    let base = sluice_storage::now_ms();
    for i in 0..20 {
        let b = batch(base, i);
        let info = p.append(validate(&b).unwrap(), &b, base).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (i, i), "{info:?}");
        // The stored batch carries its offset; read it back as stored for comparison.
        appended.push(p.read(i, 1, Isolation::ReadUncommitted).unwrap().records);
    }
    let store = RemoteStore::in_memory();
    let metrics = TierMetrics::new().unwrap();
    let m = manager(&storage, store.clone(), metrics.clone());
    rounds_until(&m, "every sealed segment copied", || p.copy_lag().0 == 0).await;
    let copied = metrics.snapshot().segments_copied;
    assert!(copied >= 8, "{copied}");
    let keys = store.list().await.unwrap();
    assert_eq!(keys.len() as u64, 4 * copied, "{keys:?}");

    p.enforce_retention(sluice_storage::now_ms()).unwrap();
    let local_start = p.local_log_start_offset();
    assert!(local_start > 10, "{local_start}");
    assert_eq!(p.log_start_offset(), 0);

    let reader = RemoteReader::new(store.clone(), 1 << 20, metrics.clone());
    let mut offset = 0;
    let mut got = BytesMut::new();
    while offset < local_start {
        let Err(ReadError::InRemoteTier(r)) =
            p.read_region(offset, 1 << 20, Isolation::ReadUncommitted)
        else {
            panic!("offset {offset} is not remote");
        };
        let batches = reader.read(&r, 1 << 20, true, false).await.unwrap();
        assert!(!batches.records.is_empty());
        got.extend_from_slice(&batches.records);
        offset = r.segment.end_offset + 1;
    }
    let expected = appended[..local_start as usize].concat();
    assert_eq!(&got[..], &expected[..]);
    // A budget smaller than a batch still gives the first batch, and only with at_least_one.
    let Err(ReadError::InRemoteTier(r)) = p.read_region(1, 1 << 20, Isolation::ReadUncommitted)
    else {
        panic!("offset 1 is not remote");
    };
    assert_eq!(
        reader.read(&r, 10, true, false).await.unwrap().records,
        appended[1]
    );
    assert!(reader
        .read(&r, 10, false, false)
        .await
        .unwrap()
        .records
        .is_empty());

    // The first record at or after base + 31 is offset 4 (base + 40).
    let remote: Vec<_> = p.remote_segments();
    let hit = reader
        .offset_for_timestamp(&remote, base + 31, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((hit.offset, hit.timestamp), (4, base + 40));

    // Total retention by time: everything remote goes, and the deletion queue empties the store.
    let mut retention = BTreeMap::new();
    retention.insert("remote.storage.enable".to_string(), "true".to_string());
    retention.insert("segment.bytes".to_string(), "700".to_string());
    retention.insert("local.retention.bytes".to_string(), "700".to_string());
    retention.insert("retention.ms".to_string(), "1".to_string());
    storage.alter_topic_config("events", retention).unwrap();
    rounds_until(&m, "the remote tier emptied", || {
        p.remote_segments().is_empty() && storage.remote_deletions().unwrap().is_empty()
    })
    .await;
    assert!(p.log_start_offset() >= local_start);
    let left = store.list().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(metrics.snapshot().segments_deleted, copied);
}
