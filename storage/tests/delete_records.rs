//! DeleteRecords through the public storage interface: the log start offset moves inside a
//! segment, whole segments below it go, reads below it are out of range, and it survives a
//! restart.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

mod common;

use common::append_one;
use sluice_config::BrokerConfig;
use sluice_protocol::batch::split_batches;
use sluice_storage::{Isolation, ReadError, Storage};

fn config(dir: &std::path::Path) -> BrokerConfig {
    let d = dir.to_string_lossy().into_owned();
    BrokerConfig::from_properties([("log.dirs", d.as_str())]).unwrap()
}

fn first_offset(data: &bytes::Bytes) -> i64 {
    split_batches(data).unwrap()[0].0.base_offset
}

#[test]
fn the_log_start_moves_and_stays_moved() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Storage::open(&config(dir.path())).unwrap();
        let mut configs = BTreeMap::new();
        configs.insert("segment.bytes".to_string(), "400".to_string());
        let t = s.create_topic("t", 1, configs).unwrap();
        let p = &t.partitions[0];
        for i in 0..10 {
            append_one(p, i);
        }
        let files_before = std::fs::read_dir(p.dir()).unwrap().count();

        assert_eq!(p.delete_records_before(5).unwrap(), 5);
        assert_eq!(p.log_start_offset(), 5);
        assert!(matches!(
            p.read(4, 1 << 20, Isolation::ReadUncommitted),
            Err(ReadError::OutOfRange { .. })
        ));
        let data = p.read(5, 1 << 20, Isolation::ReadUncommitted).unwrap();
        assert_eq!(first_offset(&data.records), 5);
        assert_eq!(data.log_start_offset, 5);
        // Segments wholly below offset 5 are gone from the directory.
        assert!(std::fs::read_dir(p.dir()).unwrap().count() < files_before);
        // Going backwards changes nothing; beyond the high watermark is out of range.
        assert_eq!(p.delete_records_before(3).unwrap(), 5);
        assert!(matches!(
            p.delete_records_before(11),
            Err(ReadError::OutOfRange { .. })
        ));
    }
    let s = Storage::open(&config(dir.path())).unwrap();
    let p = &s.topic("t").unwrap().partitions[0];
    assert_eq!((p.log_start_offset(), p.high_watermark()), (5, 10));
    let data = p.read(5, 1 << 20, Isolation::ReadUncommitted).unwrap();
    assert_eq!(first_offset(&data.records), 5);
    // -1 means the high watermark.
    assert_eq!(p.delete_records_before(-1).unwrap(), 10);
    assert!(p
        .read(10, 1 << 20, Isolation::ReadUncommitted)
        .unwrap()
        .records
        .is_empty());
}
