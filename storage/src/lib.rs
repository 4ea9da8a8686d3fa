//! Sluice storage: the partition log (segment files indexed in RocksDB) and the broker's
//! durable state (topic catalog, producer state, cluster identity).
//!
//! Nothing here knows about sockets; the broker drives it through [`Storage`] and
//! [`Partition`].

mod acls;
mod broker_configs;
mod catalog;
mod codec;
mod config;
mod credentials;
mod db;
mod group_configs;
mod groups;
mod log;
mod log_dir;
mod producers;
mod quotas;
mod remote;
mod topics;
mod txns;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rocksdb::WriteBatch;
use sluice_config::FlushPolicy;
use uuid::Uuid;

pub use acls::{AclBinding, AclStore};
pub use catalog::TopicRecord;
pub use config::StorageConfig;
pub use credentials::{Credentials, ScramCredential, ScramCredentialInfo};
pub use group_configs::{decode_group_configs, encode_group_configs};
pub use groups::{CommittedOffset, GroupOffsets, GroupRecord, MemberRecord};
pub use log::{
    AbortedTxn, AppendError, AppendInfo, CleanOptions, CleanStats, Cleanability, CleanerCrashPoint,
    FetchData, FileRegion, Isolation, Marker, Partition, ProducerInfo, ReadError, RecordError,
    RemoteRead, ReplicatedAppend, TimestampOffset, TruncationCrashPoint, COORDINATOR_EPOCH,
    LEADER_EPOCH,
};
pub use log_dir::LogDirHealth;
pub use producers::{SequenceError, MAX_CACHED_BATCHES};
pub use quotas::{
    decode_entity, decode_values, encode_entity, encode_values, QuotaEntity, QuotaStore,
    QuotaValues,
};
pub use remote::{
    decode_batch_index, decode_txn_index, encode_batch_index, encode_txn_index, BatchEntry,
    CopyJob, RemoteSegment, RemoteSegmentState,
};
pub use topics::Topic;
pub use txns::{PendingOffset, TxnRecord, TxnState};

use db::{Db, CF_META};
use topics::Topics;

/// A storage failure: the disk, the index, or data that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The data directory failed earlier; its partitions are offline (KAFKA_STORAGE_ERROR).
    #[error("the data directory is offline after a failure: {0}")]
    LogDirOffline(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// RocksDB failed.
    #[error("index: {0}")]
    Index(#[from] rocksdb::Error),
    /// Stored data is not what it must be.
    #[error("corrupt storage: {0}")]
    Corrupt(String),
    /// The topic exists already (TOPIC_ALREADY_EXISTS).
    #[error("topic {0} already exists")]
    TopicExists(String),
    /// The topic does not exist (UNKNOWN_TOPIC_OR_PARTITION).
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    /// The cluster has not yet reserved producer ids for this broker (retriable).
    #[error("no producer ids reserved yet: {0}")]
    ProducerIdsUnavailable(String),
    /// This broker's replica of the partition does not lead it (NOT_LEADER_OR_FOLLOWER).
    #[error("this broker does not lead {0}")]
    NotLeader(String),
    /// A test hook stopped the work here, as a crash would.
    #[error("stopped at crash point {0}")]
    CrashPoint(&'static str),
    /// A leader epoch older than the latest in the leader-epoch cache (FENCED_LEADER_EPOCH).
    #[error("leader epoch {epoch} is older than the latest epoch {latest}")]
    StaleLeaderEpoch {
        /// The epoch asked for.
        epoch: i32,
        /// The latest epoch of the cache.
        latest: i32,
    },
    /// An offset below the log start offset (OFFSET_OUT_OF_RANGE).
    #[error("offset {offset} is below the log start offset {log_start_offset}")]
    BelowLogStart {
        /// The offset asked for.
        offset: i64,
        /// Log start offset.
        log_start_offset: i64,
    },
}

impl StorageError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How many segment fsyncs the log did, and the time they took: for monitoring.
pub struct FsyncStats {
    count: std::sync::atomic::AtomicU64,
    micros: std::sync::atomic::AtomicU64,
}

impl FsyncStats {
    fn record(&self, took: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.count.fetch_add(1, Relaxed);
        self.micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// (fsyncs, total seconds) so far.
    pub fn totals(&self) -> (u64, f64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.count.load(Relaxed),
            self.micros.load(Relaxed) as f64 / 1_000_000.0,
        )
    }
}

/// RocksDB figures of the index, summed over its column families.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Bytes in active and immutable memtables (`rocksdb.cur-size-all-mem-tables`).
    pub memtable_bytes: u64,
    /// Bytes compaction still has to rewrite (`rocksdb.estimate-pending-compaction-bytes`).
    pub pending_compaction_bytes: u64,
    /// Bytes of SST files in the current version (`rocksdb.live-sst-files-size`).
    pub live_sst_files_bytes: u64,
    /// Estimated keys in memtables and SST files (`rocksdb.estimate-num-keys`).
    pub estimated_keys: u64,
}

/// Every partition's fsyncs, process-wide.
pub static FSYNC_STATS: FsyncStats = FsyncStats {
    count: std::sync::atomic::AtomicU64::new(0),
    micros: std::sync::atomic::AtomicU64::new(0),
};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The data directory: its RocksDB instance and every topic's partitions.
pub struct Storage {
    db: Arc<Db>,
    /// The budget of open segment files shared by every partition.
    files: Arc<log::open_files::OpenFiles>,
    log_root: PathBuf,
    /// Storage's own settings.
    config: StorageConfig,
    /// Dynamic broker configs and the configuration in force with them.
    dynamic: RwLock<broker_configs::DynamicState>,
    topics: RwLock<Topics>,
    cluster_id: String,
    /// Serialises topic creation and deletion so names and directories never race.
    admin: std::sync::Mutex<()>,
    producer_ids: std::sync::Mutex<ProducerIdBlock>,
    /// In a cluster, producer ids come from blocks reserved cluster-wide instead.
    producer_id_source: RwLock<Option<Arc<dyn ProducerIdSource>>>,
}

/// Where a cluster member's producer ids come from: blocks reserved in the cluster's
/// metadata, so that no two brokers hand out the same id.
pub trait ProducerIdSource: Send + Sync {
    /// The next unused producer id.
    fn next_producer_id(&self) -> Result<i64, StorageError>;
}

struct ProducerIdBlock {
    next: i64,
    end: i64,
}

const PRODUCER_ID_BLOCK: i64 = 1000;
const KEY_CLUSTER_ID: &[u8] = b"cluster.id";
const KEY_PRODUCER_ID_END: &[u8] = b"producer.id.block.end";

impl Storage {
    /// Opens the data directory, creating it if needed, and recovers every partition.
    /// Takes a [`StorageConfig`] or, for tools and tests, the broker configuration it is
    /// taken from.
    pub fn open(config: impl Into<StorageConfig>) -> Result<Self, StorageError> {
        let config: StorageConfig = config.into();
        let root = config.log_dir.clone();
        std::fs::create_dir_all(&root).map_err(|e| StorageError::io(&root, e))?;
        let mut db = Db::open(&root.join("index"))?;
        db.remote_log_enabled = config.remote_log_enabled;
        db.remote_metadata_shared = config.remote_metadata_shared;
        let db = Arc::new(db);
        let meta = db.cf(CF_META)?;
        let cluster_id = match (db.db.get_cf(meta, KEY_CLUSTER_ID)?, &config.cluster_id) {
            (Some(stored), configured) => {
                let stored = String::from_utf8_lossy(&stored).into_owned();
                if let Some(c) = configured {
                    if *c != stored {
                        return Err(StorageError::Corrupt(format!(
                            "cluster.id {c} does not match the id {stored} stored in {}",
                            root.display()
                        )));
                    }
                }
                stored
            }
            (None, configured) => {
                let id = configured.clone().unwrap_or_else(new_cluster_id);
                let mut wb = WriteBatch::default();
                wb.put_cf(meta, KEY_CLUSTER_ID, id.as_bytes());
                db.write(wb, true)?;
                id
            }
        };
        let producer_end = match db.db.get_cf(meta, KEY_PRODUCER_ID_END)? {
            Some(v) => i64::from_be_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("producer id block".into()))?,
            ),
            None => 0,
        };
        let files = log::open_files::OpenFiles::new(open_files_budget(&config));
        tracing::info!(
            max_open_segment_files = files.capacity(),
            "segment files are opened on use and closed past this budget"
        );
        let dynamic = RwLock::new(broker_configs::load(&db, &config)?);
        let storage = Storage {
            dynamic,
            db,
            files,
            log_root: root,
            config,
            topics: RwLock::new(Topics {
                by_name: BTreeMap::new(),
                by_id: HashMap::new(),
            }),
            cluster_id,
            admin: std::sync::Mutex::new(()),
            producer_ids: std::sync::Mutex::new(ProducerIdBlock {
                next: producer_end,
                end: producer_end,
            }),
            producer_id_source: RwLock::new(None),
        };
        storage.load_topics()?;
        storage.sweep_remote_of_unknown_topics()?;
        // As Kafka skips expired entries when it loads a producer snapshot.
        let expired = storage.remove_expired_producers(now_ms());
        if expired > 0 {
            tracing::info!(
                producer_ids = expired,
                "expired producer ids removed at start-up"
            );
        }
        Ok(storage)
    }

    /// Segment files open now, and the budget they are kept within.
    pub fn open_segment_files(&self) -> (usize, usize) {
        (self.files.open_now(), self.files.capacity())
    }

    /// The client quota store.
    pub fn quotas(&self) -> QuotaStore {
        QuotaStore::new(self.db.clone())
    }

    /// RocksDB figures for monitoring, summed over column families.
    pub fn index_stats(&self) -> IndexStats {
        let sum = |property: &str| -> u64 {
            db::FAMILIES
                .iter()
                .filter_map(|cf| self.db.cf(cf).ok())
                .filter_map(|h| self.db.db.property_int_value_cf(h, property).ok().flatten())
                .sum()
        };
        IndexStats {
            memtable_bytes: sum("rocksdb.cur-size-all-mem-tables"),
            pending_compaction_bytes: sum("rocksdb.estimate-pending-compaction-bytes"),
            live_sst_files_bytes: sum("rocksdb.live-sst-files-size"),
            estimated_keys: sum("rocksdb.estimate-num-keys"),
        }
    }

    /// Whether the data directory still works (Kafka's log dir failure).
    pub fn log_dir_health(&self) -> &LogDirHealth {
        &self.db.health
    }

    /// The ACL store.
    pub fn acls(&self) -> AclStore {
        AclStore::new(self.db.clone())
    }

    /// The SCRAM credential store.
    pub fn credentials(&self) -> Credentials {
        Credentials::new(self.db.clone())
    }

    /// The flush policy in force.
    pub fn flush_policy(&self) -> FlushPolicy {
        self.config.flush
    }

    /// The cluster id, generated on first start and kept in the data directory.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Allocates a producer id; ids are reserved in durable blocks so none is reused
    /// after a restart.
    pub fn allocate_producer_id(&self) -> Result<i64, StorageError> {
        let source = self
            .producer_id_source
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(source) = source {
            return source.next_producer_id();
        }
        let mut block = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
        if block.next >= block.end {
            let end = block.end + PRODUCER_ID_BLOCK;
            let mut wb = WriteBatch::default();
            wb.put_cf(self.db.cf(CF_META)?, KEY_PRODUCER_ID_END, end.to_be_bytes());
            self.db.write(wb, true)?;
            block.end = end;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }

    /// Takes producer ids from `source` from now on (a cluster member).
    pub fn set_producer_id_source(&self, source: Arc<dyn ProducerIdSource>) {
        *self
            .producer_id_source
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    /// Remote segments waiting for their objects to be deleted (state DELETE_STARTED).
    pub fn remote_deletions(&self) -> Result<Vec<RemoteSegment>, StorageError> {
        remote::pending_deletions(&self.db)
    }

    /// Forgets a remote segment whose objects are deleted.
    pub fn finish_remote_deletion(&self, segment_id: uuid::Uuid) -> Result<(), StorageError> {
        remote::finish_deletion(&self.db, segment_id)
    }

    /// Queues for deletion the remote segments of topics that no longer exist (a crash
    /// between a topic's deletion and its partitions' cleanup).
    fn sweep_remote_of_unknown_topics(&self) -> Result<(), StorageError> {
        let mut wb = WriteBatch::default();
        let mut swept = 0;
        for seg in remote::all_segments(&self.db)? {
            if self.topic_by_id(seg.topic_id).is_none() {
                let key = db::PartitionKey::new(seg.topic_id, seg.partition);
                remote::queue_deletion(&self.db, &mut wb, &key, &seg, now_ms())?;
                swept += 1;
            }
        }
        if swept > 0 {
            tracing::info!(
                segments = swept,
                "remote segments of deleted topics queued for deletion"
            );
            self.db.write(wb, true)?;
        }
        Ok(())
    }

    /// Runs retention on every partition; returns the number of segments deleted.
    pub fn enforce_retention(&self) -> usize {
        let now = now_ms();
        let mut deleted = 0;
        for topic in self.topics() {
            for p in &topic.partitions {
                match p.enforce_retention(now) {
                    Ok(n) => deleted += n,
                    Err(e) => {
                        tracing::error!(topic = %p.topic, partition = p.index, error = %e, "retention failed")
                    }
                }
            }
        }
        deleted
    }

    /// Forgets, on every partition, the producer ids idle for `producer.id.expiration.ms`
    /// at `now_ms`; returns how many.
    pub fn remove_expired_producers(&self, now_ms: i64) -> usize {
        let expiration_ms = self.config.producer_id_expiration_ms;
        let mut removed = 0;
        for p in self.partitions() {
            match p.remove_expired_producers(now_ms, expiration_ms) {
                Ok(n) => removed += n,
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "producer id expiry failed")
                }
            }
        }
        removed
    }

    /// Cleans the compacted partition that most needs it, if any is due; returns it with
    /// what the pass did. Failures are logged and the partition skipped; only a test crash
    /// point is returned as an error.
    pub fn clean_dirtiest(
        &self,
        opts: &CleanOptions,
    ) -> Result<Option<(Arc<Partition>, CleanStats)>, StorageError> {
        let now = now_ms();
        let mut due: Vec<(f64, Arc<Partition>)> = Vec::new();
        for p in self.partitions() {
            match p.cleanability(now) {
                Ok(Some(c)) if c.due => due.push((c.dirty_ratio, p)),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "cannot assess the log for cleaning")
                }
            }
        }
        due.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, p) in due {
            match p.clean(now, opts) {
                Ok(Some(stats)) => return Ok(Some((p, stats))),
                Ok(None) => {}
                Err(e @ StorageError::CrashPoint(_)) => return Err(e),
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "cleaning failed")
                }
            }
        }
        Ok(None)
    }

    /// Checkpoints the high watermark of replicated partitions and flushes the index's
    /// write-ahead log; used at shutdown.
    pub fn flush_index(&self) -> Result<(), StorageError> {
        for p in self.partitions() {
            p.checkpoint_high_watermark()?;
        }
        self.db.db.flush_wal(true)?;
        Ok(())
    }
}

fn new_cluster_id() -> String {
    // Kafka cluster ids are 22-character URL-safe base64 of a UUID.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let id = Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((id >> (i * 6)) & 63) as usize] as char)
        .collect()
}

/// How many segment files may be open: `log.max.open.segment.files`, else half the soft
/// open-files limit, the other half left for sockets and RocksDB's files.
fn open_files_budget(config: &StorageConfig) -> usize {
    if let Some(n) = config.max_open_segment_files {
        return n;
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20);
    usize::try_from(limit / 2).unwrap_or(usize::MAX).max(64)
}
