//! One partition: the local log plus what Kafka's partition layers on it — the index
//! entries, the high watermark and log start offset, the flush policy and the producer
//! state. Appends, reads, flushes and replication are in their own modules.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rocksdb::WriteBatch;
use sluice_config::TopicConfig;
use tokio::sync::watch;
use uuid::Uuid;

use super::index;
use super::log_state::LogState;
use super::meta;
use super::open_files::OpenFiles;
use super::types::ProducerInfo;
use crate::db::{
    Db, IndexEntry, PartitionKey, CF_ABORTED_TXNS, CF_META, CF_OFFSETS, CF_PRODUCERS, CF_TIMES,
};
use crate::StorageError;

/// One partition of a topic.
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub index: i32,
    pub(super) key: PartitionKey,
    pub(super) dir: PathBuf,
    pub(super) db: Arc<Db>,
    pub(super) log: Mutex<LogState>,
    /// Everything below this offset is on disk.
    pub(super) flushed_offset: AtomicI64,
    pub(super) flush_lock: tokio::sync::Mutex<()>,
    /// Held by a cleaning pass, so that passes on one partition never overlap.
    pub(super) cleaner_lock: Mutex<()>,
    /// Set when a segment swap failed after its commit point: recovery must finish it first.
    pub(super) cleaner_stopped: std::sync::atomic::AtomicBool,
    /// The high watermark; consumers' long polls wait for it to move.
    pub(super) high_watermark: watch::Sender<i64>,
    /// The log end offset; followers' long polls wait for it to move.
    pub(super) log_end: watch::Sender<i64>,
    /// What opening the partition had to repair (see [`Partition::recovery_work`]).
    recovery_work: u64,
    /// The data directory's budget of open segment files.
    pub(super) files: Arc<OpenFiles>,
    /// This partition, for background work started from `&self`.
    pub(super) me: Weak<Partition>,
}

impl Partition {
    /// Runs a write on the data directory: refused once the directory is offline, and a
    /// failure of the disk or the index takes it offline.
    pub(super) fn on_disk<T, E>(&self, write: impl FnOnce() -> Result<T, E>) -> Result<T, E>
    where
        E: From<StorageError> + crate::log_dir::AsStorageError,
    {
        self.db.health.check()?;
        self.db.health.note(write())
    }

    /// Opens (or creates) the partition's directory and recovers its tail.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open(
        db: Arc<Db>,
        log_root: &Path,
        topic: &str,
        topic_id: Uuid,
        index: i32,
        config: TopicConfig,
        files: Arc<OpenFiles>,
        now_ms: i64,
    ) -> Result<Arc<Self>, StorageError> {
        let dir = log_root.join(format!("{topic}-{index}"));
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let key = PartitionKey::new(topic_id, index);
        let (state, recovery_work) =
            super::recovery::recover(&db, &files, &dir, key, config, now_ms)?;
        let (leo, hw) = (state.log_end_offset(), state.high_watermark);
        Ok(Arc::new_cyclic(|me| Partition {
            topic: topic.to_string(),
            topic_id,
            index,
            key,
            dir,
            db,
            log: Mutex::new(state),
            flushed_offset: AtomicI64::new(leo),
            flush_lock: tokio::sync::Mutex::new(()),
            cleaner_lock: Mutex::new(()),
            cleaner_stopped: std::sync::atomic::AtomicBool::new(false),
            high_watermark: watch::channel(hw).0,
            log_end: watch::channel(leo).0,
            recovery_work,
            files,
            me: me.clone(),
        }))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock cannot leave the log half-written on disk (files
        // are written before the index), so the state is still usable.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What opening the partition had to repair: batches found beyond the index, torn
    /// tails truncated, segments removed after them. 0 after a clean shutdown.
    pub fn recovery_work(&self) -> u64 {
        self.recovery_work
    }

    /// The directory holding the segment files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Offsets below it are replicated to the whole ISR; consumers read only below it.
    /// On a single node (not replicated) it is the log end offset.
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// Offset after the last appended batch.
    pub fn log_end_offset(&self) -> i64 {
        *self.log_end.borrow()
    }

    /// Tells the watchers where the high watermark and log end offset are now; called
    /// with the log lock held, so that concurrent changes are published in order.
    pub(super) fn publish(&self, log: &LogState) {
        let set = |tx: &watch::Sender<i64>, v: i64| {
            tx.send_if_modified(|cur| {
                let changed = *cur != v;
                *cur = v;
                changed
            });
        };
        set(&self.high_watermark, log.high_watermark);
        set(&self.log_end, log.log_end_offset());
    }

    /// Log start offset.
    pub fn log_start_offset(&self) -> i64 {
        self.lock().log_start_offset
    }

    /// Last stable offset: below it every transaction is decided.
    pub fn last_stable_offset(&self) -> i64 {
        self.lock().last_stable_offset()
    }

    /// Total bytes of the partition's segments.
    pub fn size_bytes(&self) -> u64 {
        self.lock().local.size_bytes()
    }

    /// Changes whenever the high watermark moves (consumers' long polls wait on it).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Changes whenever the log end offset moves (followers' long polls wait on it).
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    /// Replaces the topic configuration in force (segment size, retention, limits).
    pub fn set_config(&self, config: TopicConfig) {
        self.lock().config = config;
    }

    /// Producers with state on this partition, for DescribeProducers.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        let log = self.lock();
        let mut out: Vec<ProducerInfo> = log
            .producers
            .producers
            .iter()
            .map(|(pid, e)| ProducerInfo {
                producer_id: *pid,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// The index entry of the first batch whose last offset is at or after `offset`.
    pub(super) fn batch_containing(&self, offset: i64) -> Result<Option<IndexEntry>, StorageError> {
        index::batch_containing(&self.db, self.key, offset)
    }

    /// Deletes this partition's files and index entries (the topic is being deleted).
    pub(crate) fn destroy(&self) -> Result<(), StorageError> {
        let mut log = self.lock();
        log.local.segments.clear();
        log.local.unflushed_files.clear();
        let mut wb = WriteBatch::default();
        // The remote tier's objects outlive the topic until the deletion queue removes them.
        self.queue_all_remote(&mut log, &mut wb, crate::now_ms())?;
        for cf in [CF_OFFSETS, CF_TIMES, CF_PRODUCERS, CF_ABORTED_TXNS] {
            self.db.delete_partition_keys(&mut wb, cf, &self.key)?;
        }
        let meta_cf = self.db.cf(CF_META)?;
        for k in meta::partition_keys(&self.key) {
            wb.delete_cf(meta_cf, k);
        }
        self.db.write(wb, true)?;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(&self.dir, e)),
        }
    }
}
