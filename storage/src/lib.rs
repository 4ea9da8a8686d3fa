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
mod groups;
mod log;
mod producers;
mod quotas;
mod txns;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rocksdb::{IteratorMode, WriteBatch};
use sluice_config::{FlushPolicy, TopicConfig};
use uuid::Uuid;

pub use acls::{AclBinding, AclStore};
pub use catalog::TopicRecord;
pub use config::StorageConfig;
pub use credentials::{Credentials, ScramCredential, ScramCredentialInfo};
pub use groups::{CommittedOffset, GroupOffsets, GroupRecord, MemberRecord};
pub use log::{
    AbortedTxn, AppendError, AppendInfo, CleanOptions, CleanStats, Cleanability, CleanerCrashPoint,
    FetchData, FileRegion, Isolation, Partition, ProducerInfo, ReadError, RecordError,
    TimestampOffset, COORDINATOR_EPOCH, LEADER_EPOCH,
};
pub use producers::{SequenceError, MAX_CACHED_BATCHES};
pub use quotas::{QuotaEntity, QuotaStore, QuotaValues};
pub use txns::{PendingOffset, TxnRecord, TxnState};

use db::{Db, CF_META, CF_TOPICS};

/// A storage failure: the disk, the index, or data that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
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
    /// A test hook stopped the work here, as a crash would.
    #[error("stopped at crash point {0}")]
    CrashPoint(&'static str),
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

/// A topic and its open partitions.
pub struct Topic {
    /// Catalog record: name, id, partitions, overrides.
    pub record: TopicRecord,
    /// The values in force.
    pub config: TopicConfig,
    /// Partitions, by index.
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    /// The partition at `index`, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        self.partitions.get(usize::try_from(index).ok()?)
    }
}

struct Topics {
    by_name: BTreeMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
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
        let db = Arc::new(Db::open(&root.join("index"))?);
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
        };
        storage.load_topics()?;
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

    /// The ACL store.
    pub fn acls(&self) -> AclStore {
        AclStore::new(self.db.clone())
    }

    /// The SCRAM credential store.
    pub fn credentials(&self) -> Credentials {
        Credentials::new(self.db.clone())
    }

    fn load_topics(&self) -> Result<(), StorageError> {
        let cf = self.db.cf(CF_TOPICS)?;
        let mut records = Vec::new();
        for item in self.db.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item?;
            let name = String::from_utf8(k.to_vec())
                .map_err(|_| StorageError::Corrupt("topic name".into()))?;
            records.push(TopicRecord::decode(&name, &v)?);
        }
        let started = std::time::Instant::now();
        let configs: Vec<TopicConfig> = records
            .iter()
            .map(|r| TopicConfig::resolve(&self.effective_config(), &r.configs))
            .collect();
        let jobs: Vec<_> = records
            .iter()
            .zip(&configs)
            .flat_map(|(r, c)| (0..r.partitions).map(move |i| (r, c, i)))
            .collect();
        let total = jobs.len();
        let reported = std::sync::Mutex::new(started);
        let opened = self.open_partitions(&jobs, |done| {
            let mut last = reported.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= std::time::Duration::from_secs(5) {
                *last = std::time::Instant::now();
                tracing::info!(done, total, "opening partitions");
            }
        });
        drop(jobs);
        let mut opened = opened.into_iter();
        let mut recovery_work = 0u64;
        for (record, config) in records.into_iter().zip(configs) {
            let partitions = (&mut opened)
                .take(record.partitions.max(0) as usize)
                .collect::<Result<Vec<_>, _>>()?;
            recovery_work += partitions.iter().map(|p| p.recovery_work()).sum::<u64>();
            self.insert_topic(Arc::new(Topic {
                record,
                config,
                partitions,
            }));
        }
        // recovery_work is 0 after a clean shutdown: every batch was indexed and synced.
        tracing::info!(
            topics = self.topic_names().len(),
            recovery_work,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "storage recovered"
        );
        Ok(())
    }

    fn open_topic(&self, record: TopicRecord) -> Result<Arc<Topic>, StorageError> {
        let config = TopicConfig::resolve(&self.effective_config(), &record.configs);
        let jobs: Vec<_> = (0..record.partitions)
            .map(|i| (&record, &config, i))
            .collect();
        let partitions = self
            .open_partitions(&jobs, |_| {})
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Topic {
            record,
            config,
            partitions,
        }))
    }

    /// Opens partitions (topic, its config, index) on `num.recovery.threads.per.data.dir`
    /// threads: opening one mostly waits on the disk. Results come in the order of `jobs`;
    /// `progress` is told how many are done, now and then.
    fn open_partitions(
        &self,
        jobs: &[(&TopicRecord, &TopicConfig, i32)],
        progress: impl Fn(usize) + Sync,
    ) -> Vec<Result<Arc<Partition>, StorageError>> {
        let now = now_ms();
        let open = |(record, config, index): &(&TopicRecord, &TopicConfig, i32)| {
            Partition::open(
                self.db.clone(),
                &self.log_root,
                &record.name,
                record.id,
                *index,
                (*config).clone(),
                self.files.clone(),
                now,
            )
        };
        let threads = self.config.num_recovery_threads.clamp(1, jobs.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut results: Vec<Option<Result<Arc<Partition>, StorageError>>> =
            jobs.iter().map(|_| None).collect();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            done.push((i, open(job)));
                            if i % 1000 == 999 {
                                progress(i + 1);
                            }
                        }
                        done
                    })
                })
                .collect();
            for worker in workers {
                // A worker that panicked leaves its partitions unopened: reported below.
                if let Ok(done) = worker.join() {
                    for (i, r) in done {
                        results[i] = Some(r);
                    }
                }
            }
        });
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(StorageError::Corrupt(
                        "a thread opening partitions panicked".into(),
                    ))
                })
            })
            .collect()
    }

    fn insert_topic(&self, topic: Arc<Topic>) {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        topics.by_id.insert(topic.record.id, topic.clone());
        topics.by_name.insert(topic.record.name.clone(), topic);
    }

    /// The flush policy in force.
    pub fn flush_policy(&self) -> FlushPolicy {
        self.config.flush
    }

    /// The cluster id, generated on first start and kept in the data directory.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Looks a topic up by name.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .get(name)
            .cloned()
    }

    /// Looks a topic up by id.
    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .get(&id)
            .cloned()
    }

    /// Looks a partition up by topic name and index: `None` when either does not exist
    /// (UNKNOWN_TOPIC_OR_PARTITION).
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.topic(topic)?.partition(index).cloned()
    }

    /// Every topic, ordered by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .values()
            .cloned()
            .collect()
    }

    /// Every topic name.
    pub fn topic_names(&self) -> Vec<String> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .keys()
            .cloned()
            .collect()
    }

    /// Creates a topic; the config overrides must already be validated.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, StorageError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        if self.topic(name).is_some() {
            return Err(StorageError::TopicExists(name.to_string()));
        }
        let record = TopicRecord {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            configs,
        };
        // Directories first: a crash before the catalog write leaves only empty dirs.
        let topic = match self.open_topic(record.clone()) {
            Ok(topic) => topic,
            Err(e) => {
                // Nothing names these directories yet: remove what was made, so a failure
                // part-way (out of disk space or open files) leaves no half topic behind.
                tracing::error!(topic = name, partitions, error = %e, "creating topic failed");
                for i in 0..partitions {
                    let _ = std::fs::remove_dir_all(self.log_root.join(format!("{name}-{i}")));
                }
                return Err(e);
            }
        };
        let mut wb = WriteBatch::default();
        wb.put_cf(self.db.cf(CF_TOPICS)?, name.as_bytes(), record.encode());
        self.db.write(wb, true)?;
        self.insert_topic(topic.clone());
        tracing::info!(topic = name, partitions, id = %record.id, "created topic");
        Ok(topic)
    }

    /// Deletes a topic with its data.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<Topic>, StorageError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = {
            let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
            let topic = topics
                .by_name
                .remove(name)
                .ok_or_else(|| StorageError::UnknownTopic(name.to_string()))?;
            topics.by_id.remove(&topic.record.id);
            topic
        };
        let mut wb = WriteBatch::default();
        wb.delete_cf(self.db.cf(CF_TOPICS)?, name.as_bytes());
        self.db.write(wb, true)?;
        for p in &topic.partitions {
            p.destroy()?;
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    /// Allocates a producer id; ids are reserved in durable blocks so none is reused
    /// after a restart.
    pub fn allocate_producer_id(&self) -> Result<i64, StorageError> {
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

    /// Every partition, for background flushing and metrics.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.topics()
            .iter()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    /// Flushes the index's write-ahead log; used at shutdown.
    pub fn flush_index(&self) -> Result<(), StorageError> {
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

impl Storage {
    /// Replaces a topic's config overrides (validated by the caller); the new values are
    /// in force for every partition when this returns.
    pub fn alter_topic_config(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, StorageError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let old = self
            .topic(name)
            .ok_or_else(|| StorageError::UnknownTopic(name.to_string()))?;
        let record = TopicRecord {
            configs,
            ..old.record.clone()
        };
        let mut wb = WriteBatch::default();
        wb.put_cf(self.db.cf(CF_TOPICS)?, name.as_bytes(), record.encode());
        self.db.write(wb, true)?;
        let config = TopicConfig::resolve(&self.effective_config(), &record.configs);
        for p in &old.partitions {
            p.set_config(config.clone());
        }
        let topic = Arc::new(Topic {
            record,
            config,
            partitions: old.partitions.clone(),
        });
        self.insert_topic(topic.clone());
        tracing::info!(topic = name, configs = ?topic.record.configs, "altered topic configs");
        Ok(topic)
    }
}

impl Storage {
    /// Grows a topic to `count` partitions (CreatePartitions); the caller has checked that
    /// `count` is larger than the current count.
    pub fn add_partitions(&self, name: &str, count: i32) -> Result<Arc<Topic>, StorageError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let old = self
            .topic(name)
            .ok_or_else(|| StorageError::UnknownTopic(name.to_string()))?;
        let now = now_ms();
        let mut partitions = old.partitions.clone();
        // Directories first: a crash before the catalog write leaves only empty dirs.
        for index in old.record.partitions..count {
            partitions.push(Partition::open(
                self.db.clone(),
                &self.log_root,
                name,
                old.record.id,
                index,
                old.config.clone(),
                self.files.clone(),
                now,
            )?);
        }
        let record = TopicRecord {
            partitions: count,
            ..old.record.clone()
        };
        let mut wb = WriteBatch::default();
        wb.put_cf(self.db.cf(CF_TOPICS)?, name.as_bytes(), record.encode());
        self.db.write(wb, true)?;
        let topic = Arc::new(Topic {
            record,
            config: old.config.clone(),
            partitions,
        });
        self.insert_topic(topic.clone());
        tracing::info!(
            topic = name,
            from = old.record.partitions,
            to = count,
            "added partitions"
        );
        Ok(topic)
    }
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
