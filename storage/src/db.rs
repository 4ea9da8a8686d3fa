//! The RocksDB instance of a data directory: one column family per kind of state.

use std::path::Path;

use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use uuid::Uuid;

use crate::StorageError;

/// Offset index: partition key ‖ last offset → [`IndexEntry`].
pub(crate) const CF_OFFSETS: &str = "offset_index";
/// Time index: partition key ‖ running max timestamp → base offset of the batch.
pub(crate) const CF_TIMES: &str = "time_index";
/// Topic catalog: topic name → topic record.
pub(crate) const CF_TOPICS: &str = "topics";
/// Producer state: partition key ‖ producer id → producer entry.
pub(crate) const CF_PRODUCERS: &str = "producers";
/// Broker-wide values: cluster id, producer id block, partition log start offsets.
pub(crate) const CF_META: &str = "meta";

/// Aborted transactions: partition key ‖ ABORT marker offset → producer id, first offset.
pub(crate) const CF_ABORTED_TXNS: &str = "aborted_txns";
/// Transaction coordinator: transactional id → transaction metadata.
pub(crate) const CF_TXNS: &str = "transactions";

/// Consumer groups: group id → last completed generation.
pub(crate) const CF_GROUPS: &str = "groups";
/// Committed offsets: group ‖ topic ‖ partition → offset, leader epoch, metadata.
pub(crate) const CF_COMMITTED: &str = "committed_offsets";

/// SCRAM credentials: user ‖ 0 ‖ mechanism → salt, iterations, stored and server keys.
pub(crate) const CF_SCRAM: &str = "scram_credentials";

/// ACL bindings: every field of the binding → nothing.
pub(crate) const CF_ACLS: &str = "acls";

/// Client quotas: entity → quota values.
pub(crate) const CF_QUOTAS: &str = "client_quotas";

pub(crate) const FAMILIES: &[&str] = &[
    CF_OFFSETS,
    CF_TIMES,
    CF_TOPICS,
    CF_PRODUCERS,
    CF_META,
    CF_GROUPS,
    CF_COMMITTED,
    CF_ABORTED_TXNS,
    CF_TXNS,
    CF_SCRAM,
    CF_ACLS,
    CF_QUOTAS,
];

/// The data directory's RocksDB handle.
pub(crate) struct Db {
    pub(crate) db: DB,
    /// Whether the data directory (segments and index alike) still works.
    pub(crate) health: crate::LogDirHealth,
    /// `remote.log.storage.system.enable`: tiered topics copy their sealed segments.
    pub(crate) remote_log_enabled: bool,
    /// In a cluster the remote segments' metadata lives in the cluster metadata: the
    /// records here only cache it, and there is no local deletion queue.
    pub(crate) remote_metadata_shared: bool,
}

impl Db {
    pub(crate) fn open(path: &Path) -> Result<Self, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
        opts.set_max_total_wal_size(64 * 1024 * 1024);
        let cfs = FAMILIES
            .iter()
            .map(|name| {
                let mut cf_opts = Options::default();
                if matches!(
                    *name,
                    CF_OFFSETS | CF_TIMES | CF_PRODUCERS | CF_ABORTED_TXNS
                ) {
                    // Keys share a 20-byte partition prefix; seeks stay within it.
                    cf_opts.set_prefix_extractor(rocksdb::SliceTransform::create_fixed_prefix(
                        PARTITION_KEY_LEN,
                    ));
                }
                ColumnFamilyDescriptor::new(*name, cf_opts)
            })
            .collect::<Vec<_>>();
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        Ok(Db {
            db,
            health: crate::LogDirHealth::default(),
            remote_log_enabled: false,
            remote_metadata_shared: false,
        })
    }

    pub(crate) fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StorageError::Corrupt(format!("column family {name} is missing")))
    }

    /// Writes a batch; `sync` makes it durable before returning.
    pub(crate) fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StorageError> {
        self.health.check()?;
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.health
            .note(self.db.write_opt(batch, &opts).map_err(StorageError::from))
    }

    /// Calls `f` with every key and value of one partition in a column family, in key
    /// order.
    pub(crate) fn for_each_partition_entry(
        &self,
        cf: &str,
        key: &PartitionKey,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), StorageError> {
        let cf = self.cf(cf)?;
        let start = key.with_u64(0);
        for item in self.db.iterator_cf(
            cf,
            rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
        ) {
            let (k, v) = item?;
            if !k.starts_with(key.as_bytes()) {
                break;
            }
            f(&k, &v);
        }
        Ok(())
    }

    /// Deletes every key of one partition in a column family.
    pub(crate) fn delete_partition_keys(
        &self,
        batch: &mut WriteBatch,
        cf: &str,
        key: &PartitionKey,
    ) -> Result<(), StorageError> {
        let cf = self.cf(cf)?;
        batch.delete_range_cf(cf, key.with_u64(0), key.with_u64(u64::MAX));
        batch.delete_cf(cf, key.with_u64(u64::MAX));
        Ok(())
    }
}

/// Length of a partition key: topic id (16) and partition index (4).
pub(crate) const PARTITION_KEY_LEN: usize = 20;

/// The key prefix of one partition's entries: topic id ‖ partition index, big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PartitionKey([u8; PARTITION_KEY_LEN]);

impl PartitionKey {
    pub(crate) fn new(topic_id: Uuid, partition: i32) -> Self {
        let mut k = [0u8; PARTITION_KEY_LEN];
        k[..16].copy_from_slice(topic_id.as_bytes());
        k[16..].copy_from_slice(&partition.to_be_bytes());
        PartitionKey(k)
    }

    /// The prefix followed by a big-endian u64, so keys sort numerically.
    pub(crate) fn with_u64(&self, v: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(PARTITION_KEY_LEN + 8);
        k.extend_from_slice(&self.0);
        k.extend_from_slice(&v.to_be_bytes());
        k
    }

    pub(crate) fn with_i64(&self, v: i64) -> Vec<u8> {
        self.with_u64(v as u64)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Maps a signed timestamp onto an unsigned key that sorts the same way.
pub(crate) fn timestamp_key(ts: i64) -> u64 {
    (ts as u64) ^ (1 << 63)
}

pub(crate) fn timestamp_from_key(k: u64) -> i64 {
    (k ^ (1 << 63)) as i64
}

/// Reads a big-endian u64 from the last 8 bytes of a key.
pub(crate) fn key_suffix_u64(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// One batch in the offset index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Base offset of the segment file holding the batch.
    pub(crate) segment: i64,
    /// Byte position of the batch in that file.
    pub(crate) position: u64,
    /// Size of the batch in bytes.
    pub(crate) size: u32,
    /// First offset of the batch.
    pub(crate) base_offset: i64,
    /// Last offset of the batch (also the key).
    pub(crate) last_offset: i64,
    /// Largest timestamp in the batch.
    pub(crate) max_timestamp: i64,
}

impl IndexEntry {
    pub(crate) const ENCODED_LEN: usize = 8 + 8 + 4 + 8 + 8;

    pub(crate) fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut v = [0u8; Self::ENCODED_LEN];
        v[0..8].copy_from_slice(&self.segment.to_be_bytes());
        v[8..16].copy_from_slice(&self.position.to_be_bytes());
        v[16..20].copy_from_slice(&self.size.to_be_bytes());
        v[20..28].copy_from_slice(&self.base_offset.to_be_bytes());
        v[28..36].copy_from_slice(&self.max_timestamp.to_be_bytes());
        v
    }

    pub(crate) fn decode(key: &[u8], v: &[u8]) -> Result<Self, StorageError> {
        let bad = || StorageError::Corrupt("malformed offset index entry".into());
        if v.len() != Self::ENCODED_LEN {
            return Err(bad());
        }
        let last_offset = key_suffix_u64(key).ok_or_else(bad)? as i64;
        let i64_at = |at: usize| i64::from_be_bytes(v[at..at + 8].try_into().unwrap_or([0; 8]));
        Ok(IndexEntry {
            segment: i64_at(0),
            position: i64_at(8) as u64,
            size: u32::from_be_bytes(v[16..20].try_into().unwrap_or([0; 4])),
            base_offset: i64_at(20),
            last_offset,
            max_timestamp: i64_at(28),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_keys_sort_like_timestamps() {
        let mut ts = vec![-5i64, 0, 3, -1, i64::MAX, i64::MIN];
        let mut keys: Vec<u64> = ts.iter().map(|t| timestamp_key(*t)).collect();
        ts.sort_unstable();
        keys.sort_unstable();
        assert_eq!(
            keys.into_iter().map(timestamp_from_key).collect::<Vec<_>>(),
            ts
        );
    }

    #[test]
    fn index_entry_round_trips() {
        let e = IndexEntry {
            segment: 100,
            position: 4096,
            size: 77,
            base_offset: 120,
            last_offset: 124,
            max_timestamp: -1,
        };
        let key = PartitionKey::new(Uuid::nil(), 3).with_i64(124);
        assert_eq!(IndexEntry::decode(&key, &e.encode()).unwrap(), e);
    }
}
