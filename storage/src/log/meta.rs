//! A partition's entries in the meta column family: the log start offset DeleteRecords
//! left, the cleaner's checkpoint, the leader-epoch cache, the high watermark checkpoint
//! and an unfinished truncation. Their keys live here so that deleting a partition and
//! recovering one need neither the cleaner, DeleteRecords nor replication.

use super::epoch_cache::EpochCache;
use crate::db::{Db, PartitionKey, CF_META};
use crate::StorageError;

/// The RocksDB key of a partition's log start offset.
pub(super) fn log_start_key(key: &PartitionKey) -> Vec<u8> {
    let mut k = b"log_start:".to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

/// The log start offset a DeleteRecords left, if any.
pub(super) fn stored_log_start(db: &Db, key: &PartitionKey) -> Result<Option<i64>, StorageError> {
    stored_i64(db, &log_start_key(key), "log start offset")
}

/// The RocksDB key of a partition's cleaner checkpoint.
pub(super) fn cleaner_checkpoint_key(key: &PartitionKey) -> Vec<u8> {
    let mut k = b"cleaner:".to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

/// The RocksDB key of a partition's leader-epoch cache.
pub(super) fn leader_epochs_key(key: &PartitionKey) -> Vec<u8> {
    let mut k = b"leader_epochs:".to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

/// The RocksDB key of a partition's high watermark checkpoint (replicated mode).
pub(super) fn high_watermark_key(key: &PartitionKey) -> Vec<u8> {
    let mut k = b"high_watermark:".to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

/// The RocksDB key of a truncation whose file changes may not all be done yet.
pub(super) fn truncation_key(key: &PartitionKey) -> Vec<u8> {
    let mut k = b"truncation:".to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

/// Every key of a partition in the meta column family.
pub(super) fn partition_keys(key: &PartitionKey) -> [Vec<u8>; 5] {
    [
        log_start_key(key),
        cleaner_checkpoint_key(key),
        leader_epochs_key(key),
        high_watermark_key(key),
        truncation_key(key),
    ]
}

/// An i64 stored under `k`, if any.
pub(super) fn stored_i64(db: &Db, k: &[u8], what: &str) -> Result<Option<i64>, StorageError> {
    match db.db.get_cf(db.cf(CF_META)?, k)? {
        Some(v) => {
            Ok(Some(i64::from_be_bytes(v.as_slice().try_into().map_err(
                |_| StorageError::Corrupt(format!("stored {what}")),
            )?)))
        }
        None => Ok(None),
    }
}

/// The leader-epoch cache stored for the partition (empty if none).
pub(super) fn stored_epochs(db: &Db, key: &PartitionKey) -> Result<EpochCache, StorageError> {
    match db.db.get_cf(db.cf(CF_META)?, leader_epochs_key(key))? {
        Some(v) => EpochCache::decode(&v),
        None => Ok(EpochCache::default()),
    }
}
