//! Transactions in the partition log: the last stable offset, markers, the aborted
//! transaction list of read-committed reads, and their recovery after a restart.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_config::BrokerConfig;
use sluice_protocol::batch::{split_batches, validate, ControlType};
use sluice_storage::{AbortedTxn, AppendError, Isolation, SequenceError, Storage, TxnRecord};

fn config(dir: &std::path::Path) -> BrokerConfig {
    let d = dir.to_string_lossy().into_owned();
    BrokerConfig::from_properties([("log.dirs", d.as_str())]).unwrap()
}

/// A batch of `n` records from producer `pid` (epoch 0) starting at sequence `seq`.
fn batch(pid: i64, seq: i32, n: i32, transactional: bool) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional,
            delete_horizon: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: seq + i,
            timestamp: 1_000,
            key: None,
            value: Some(Bytes::from(format!("p{pid}-s{}", seq + i))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

fn append(p: &sluice_storage::Partition, b: &Bytes) -> Result<i64, AppendError> {
    p.append(validate(b).unwrap(), b, 1_000)
        .map(|i| i.base_offset)
}

/// (producer id, offset, is control) of every batch in a read.
fn batches(records: &Bytes) -> Vec<(i64, i64, bool)> {
    split_batches(records)
        .unwrap()
        .into_iter()
        .map(|(h, _)| (h.producer_id, h.base_offset, h.is_control()))
        .collect()
}

#[test]
fn lso_stops_at_the_first_open_transaction_and_markers_move_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let t = s.create_topic("t", 1, BTreeMap::new()).unwrap();
    let p = &t.partitions[0];

    assert_eq!(append(p, &batch(1, 0, 2, true)).unwrap(), 0); // txn of 1 opens at 0
    assert_eq!(append(p, &batch(2, 0, 1, false)).unwrap(), 2); // plain idempotent
    assert_eq!(append(p, &batch(3, 0, 1, true)).unwrap(), 3); // txn of 3 opens at 3
    assert_eq!((p.last_stable_offset(), p.high_watermark()), (0, 4));

    // read_committed sees nothing past the LSO; read_uncommitted sees everything.
    let rc = p.read(0, 1 << 20, Isolation::ReadCommitted).unwrap();
    assert!(rc.records.is_empty());
    assert_eq!(rc.last_stable_offset, 0);
    let ru = p.read(0, 1 << 20, Isolation::ReadUncommitted).unwrap();
    assert_eq!(
        batches(&ru.records),
        vec![(1, 0, false), (2, 2, false), (3, 3, false)]
    );

    // Producer 1 aborts: the LSO moves to producer 3's first offset.
    let m = p.append_marker(1, 0, ControlType::Abort, 2_000).unwrap();
    assert_eq!(m.base_offset, 4);
    assert_eq!(p.last_stable_offset(), 3);
    let rc = p.read(0, 1 << 20, Isolation::ReadCommitted).unwrap();
    assert_eq!(batches(&rc.records), vec![(1, 0, false), (2, 2, false)]);
    assert_eq!(
        rc.aborted_transactions,
        vec![AbortedTxn {
            producer_id: 1,
            first_offset: 0,
            last_offset: 4
        }]
    );
    // A read that starts after the aborted transaction's marker does not list it.
    p.append_marker(3, 0, ControlType::Commit, 2_000).unwrap();
    assert_eq!((p.last_stable_offset(), p.high_watermark()), (6, 6));
    let rc = p.read(5, 1 << 20, Isolation::ReadCommitted).unwrap();
    assert_eq!(batches(&rc.records), vec![(3, 5, true)]);
    assert!(rc.aborted_transactions.is_empty());

    // The marker is a real control record that a client decoder reads as COMMIT.
    let mut raw = rc.records.clone();
    let set = RecordBatchDecoder::decode(&mut raw).unwrap();
    assert!(set.records[0].control);
    assert_eq!(&set.records[0].key.as_ref().unwrap()[..], &[0, 0, 0, 1]);
}

#[test]
fn producers_cannot_write_markers_or_leave_a_transaction_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(&config(dir.path())).unwrap();
    let t = s.create_topic("t", 1, BTreeMap::new()).unwrap();
    let p = &t.partitions[0];
    let marker = sluice_protocol::batch::control_batch(9, 0, ControlType::Commit, 0, 1);
    assert!(matches!(
        append(p, &marker),
        Err(AppendError::InvalidRecord(_))
    ));
    append(p, &batch(9, 0, 1, true)).unwrap();
    assert!(matches!(
        append(p, &batch(9, 1, 1, false)),
        Err(AppendError::Sequence(SequenceError::NotTransactional(9)))
    ));
    // A marker with an older epoch than the producer's is refused.
    p.append_marker(9, 3, ControlType::Abort, 1).unwrap();
    assert!(matches!(
        p.append_marker(9, 2, ControlType::Abort, 1),
        Err(AppendError::Sequence(SequenceError::StaleEpoch { .. }))
    ));
}

#[test]
fn open_and_aborted_transactions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Storage::open(&config(dir.path())).unwrap();
        let t = s.create_topic("t", 1, BTreeMap::new()).unwrap();
        let p = &t.partitions[0];
        append(p, &batch(1, 0, 2, true)).unwrap(); // 0..=1, aborted at 2
        p.append_marker(1, 0, ControlType::Abort, 2_000).unwrap();
        append(p, &batch(4, 0, 1, true)).unwrap(); // 3, still open
        s.store_txn(
            "tx",
            &TxnRecord {
                producer_id: 4,
                previous_producer_id: -1,
                producer_epoch: 0,
                last_producer_epoch: -1,
                timeout_ms: 60_000,
                state: sluice_storage::TxnState::Ongoing,
                partitions: vec![("t".into(), 0)],
                groups: vec![],
                pending_offsets: vec![],
                start_ms: 1,
                last_update_ms: 1,
                next_producer_id: -1,
                client_transaction_version: 0,
            },
        )
        .unwrap();
    }
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = &s.topic("t").unwrap().partitions[0];
    assert_eq!((p.last_stable_offset(), p.high_watermark()), (3, 4));
    let rc = p.read(0, 1 << 20, Isolation::ReadCommitted).unwrap();
    assert_eq!(batches(&rc.records), vec![(1, 0, false), (1, 2, true)]);
    assert_eq!(rc.aborted_transactions.len(), 1);
    assert_eq!(rc.aborted_transactions[0].first_offset, 0);
    let txns = s.load_txns().unwrap();
    assert_eq!(txns.len(), 1);
    assert_eq!(txns[0].0, "tx");
    assert_eq!(txns[0].1.partitions, vec![("t".to_string(), 0)]);
    p.append_marker(4, 0, ControlType::Commit, 3_000).unwrap();
    assert_eq!(p.last_stable_offset(), 5);
    let info = p
        .producers()
        .into_iter()
        .find(|i| i.producer_id == 4)
        .unwrap();
    assert_eq!(info.current_txn_start_offset, -1);
}
