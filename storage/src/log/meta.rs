//! A partition's entries in the meta column family: the log start offset DeleteRecords
//! left and the cleaner's checkpoint. Their keys live here so that deleting a partition
//! and recovering one need neither the cleaner nor DeleteRecords.

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
    match db.db.get_cf(db.cf(CF_META)?, log_start_key(key))? {
        Some(v) => Ok(Some(i64::from_be_bytes(v.as_slice().try_into().map_err(
            |_| StorageError::Corrupt("stored log start offset".into()),
        )?))),
        None => Ok(None),
    }
}

/// The RocksDB key of a partition's cleaner checkpoint.
pub(super) fn cleaner_checkpoint_key(key: &PartitionKey) -> Vec<u8> {
    let mut k = b"cleaner:".to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}
