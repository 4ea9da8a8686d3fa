//! The remote log manager (Kafka's `RemoteLogManager`): every
//! `remote.log.manager.task.interval.ms` it copies each tiered partition's sealed
//! segments to the object store (a bounded number at once), applies total retention to
//! the remote tier, and works through the queue of remote segments to delete. Failed
//! requests back off per partition, doubling up to a maximum; nothing it does blocks a
//! produce.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sluice_config::RemoteStorageConfig;
use sluice_storage::{now_ms, Partition, RemoteSegment, Storage};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{RemoteStore, TierError, TierMetrics};

/// What the manager works on: the partitions whose segments it copies and expires, and
/// where remote segments' metadata is kept. On a single node that is the data directory
/// (the defaults of the hooks); in a cluster, the cluster metadata, so that a new leader
/// finds what an earlier one copied.
#[async_trait]
pub trait TieredLogs: Send + Sync + 'static {
    /// The partitions this broker copies and expires: every partition on a single node,
    /// those it leads in a cluster.
    fn partitions(&self) -> Vec<Arc<Partition>>;
    /// Remote segments waiting for their objects to be deleted.
    async fn remote_deletions(&self) -> Result<Vec<RemoteSegment>, TierError>;
    /// Forgets a remote segment whose objects are gone.
    async fn finish_remote_deletion(&self, segment: &RemoteSegment) -> Result<(), TierError>;
    /// Records that `segment`'s upload starts (COPY_STARTED), before any object is written.
    async fn copy_started(
        &self,
        _p: &Partition,
        _segment: &RemoteSegment,
    ) -> Result<(), TierError> {
        Ok(())
    }
    /// Records that `segment`'s upload finished (COPY_FINISHED); false when the upload no
    /// longer counts (another broker gave it up meanwhile).
    async fn copy_finished(&self, _segment: &RemoteSegment) -> Result<bool, TierError> {
        Ok(true)
    }
    /// Records that `segments` are to be deleted (DELETE_STARTED): expired, or an upload
    /// given up.
    async fn delete_started(&self, _segments: &[RemoteSegment]) -> Result<(), TierError> {
        Ok(())
    }
}

#[async_trait]
impl TieredLogs for Storage {
    fn partitions(&self) -> Vec<Arc<Partition>> {
        Storage::partitions(self)
    }
    async fn remote_deletions(&self) -> Result<Vec<RemoteSegment>, TierError> {
        Ok(Storage::remote_deletions(self)?)
    }
    async fn finish_remote_deletion(&self, segment: &RemoteSegment) -> Result<(), TierError> {
        Ok(Storage::finish_remote_deletion(self, segment.segment_id)?)
    }
}

/// When a failed partition (or the deletion queue) may be tried again.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    next_attempt: Instant,
}

/// Per-partition bookkeeping: a copy in flight, and the backoff after failures.
#[derive(Debug, Default)]
struct Tasks {
    copying: HashMap<(Uuid, i32), ()>,
    backoff: HashMap<(Uuid, i32), Backoff>,
    deletion_backoff: Option<Backoff>,
}

/// Copies, expires and deletes remote segments in the background.
pub struct RemoteLogManager {
    logs: Arc<dyn TieredLogs>,
    store: RemoteStore,
    config: RemoteStorageConfig,
    metrics: TierMetrics,
    copies: Arc<Semaphore>,
    tasks: Mutex<Tasks>,
}

impl RemoteLogManager {
    /// A manager of `logs` writing to `store`.
    pub fn new(
        logs: Arc<dyn TieredLogs>,
        store: RemoteStore,
        config: RemoteStorageConfig,
        metrics: TierMetrics,
    ) -> Arc<Self> {
        Arc::new(RemoteLogManager {
            logs,
            store,
            copies: Arc::new(Semaphore::new(config.max_copies_in_flight.max(1))),
            config,
            metrics,
            tasks: Mutex::new(Tasks::default()),
        })
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs rounds every `remote.log.manager.task.interval.ms` until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.task_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.round().await;
        }
    }

    /// One pass: start copies, expire remote segments, delete what is queued.
    pub async fn round(self: &Arc<Self>) {
        let now = Instant::now();
        for p in self.logs.partitions() {
            if p.tiered() {
                self.start_copying(&p, now);
            }
            match p.expire_remote(now_ms()) {
                Ok(doomed) if !doomed.is_empty() => {
                    tracing::debug!(topic = %p.topic, partition = p.index, segments = doomed.len(), "remote segments expired");
                    if let Err(e) = self.logs.delete_started(&doomed).await {
                        // Expiry runs again next round and finds them below the log start.
                        tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "could not record expired remote segments");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "remote retention failed")
                }
            }
        }
        self.delete_queued(now).await;
    }

    /// Starts a task copying `p`'s sealed segments, one after another, unless one runs
    /// or the partition is backing off.
    fn start_copying(self: &Arc<Self>, p: &Arc<Partition>, now: Instant) {
        let key = (p.topic_id, p.index);
        {
            let mut tasks = self.tasks();
            if tasks.copying.contains_key(&key)
                || tasks
                    .backoff
                    .get(&key)
                    .is_some_and(|b| b.next_attempt > now)
            {
                return;
            }
            tasks.copying.insert(key, ());
        }
        let me = self.clone();
        let p = p.clone();
        tokio::spawn(async move {
            let result = me.copy_all(&p).await;
            let mut tasks = me.tasks();
            tasks.copying.remove(&key);
            match result {
                Ok(()) => {
                    tasks.backoff.remove(&key);
                }
                Err(e) => {
                    let b = me.next_backoff(tasks.backoff.get(&key).copied());
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, failures = b.failures,
                        retry_in_ms = b.next_attempt.saturating_duration_since(Instant::now()).as_millis() as u64,
                        "copy to the remote tier failed; the local segments stay until it succeeds");
                    tasks.backoff.insert(key, b);
                }
            }
        });
    }

    /// Copies `p`'s sealed segments in offset order until none is left.
    async fn copy_all(&self, p: &Partition) -> Result<(), TierError> {
        loop {
            let Ok(_permit) = self.copies.acquire().await else {
                return Ok(());
            };
            let Some(job) = p.begin_copy(now_ms())? else {
                return Ok(());
            };
            let seg = job.segment.clone();
            if let Err(e) = self.logs.copy_started(p, &seg).await {
                p.abandon_copy(&seg, now_ms())?;
                return Err(e);
            }
            match self.store.upload(&job).await {
                Ok(bytes) => {
                    self.metrics.available.set(1);
                    let counts = match self.logs.copy_finished(&seg).await {
                        Ok(counts) => counts,
                        Err(e) => {
                            // Left COPY_STARTED where it is kept: whoever leads next
                            // deletes it as an upload that never finished.
                            p.abandon_copy(&seg, now_ms())?;
                            return Err(e);
                        }
                    };
                    if !counts {
                        p.abandon_copy(&seg, now_ms())?;
                        return Ok(());
                    }
                    if p.finish_copy(&seg, now_ms())? {
                        self.metrics.add_bytes("copied", bytes);
                        self.metrics.add_segment("copied");
                        tracing::info!(topic = %p.topic, partition = p.index, base_offset = seg.base_offset,
                            end_offset = seg.end_offset, bytes, segment_id = %seg.segment_id, "segment copied to the remote tier");
                    } else {
                        self.logs.delete_started(std::slice::from_ref(&seg)).await?;
                    }
                }
                Err(e) => {
                    self.metrics.add_error("copy");
                    if matches!(e, TierError::Store(_)) {
                        self.metrics.available.set(0);
                    }
                    // Whatever the attempt wrote goes with the deletion queue.
                    p.abandon_copy(&seg, now_ms())?;
                    if let Err(d) = self.logs.delete_started(std::slice::from_ref(&seg)).await {
                        tracing::warn!(error = %d, "could not record a failed upload for deletion");
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Deletes the objects of queued remote segments, then forgets them.
    async fn delete_queued(&self, now: Instant) {
        if self
            .tasks()
            .deletion_backoff
            .is_some_and(|b| b.next_attempt > now)
        {
            return;
        }
        let queued = match self.logs.remote_deletions().await {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(error = %e, "could not read the remote deletion queue");
                return;
            }
        };
        for seg in queued {
            let result = match self.store.delete_segment(&seg).await {
                Ok(()) => self.logs.finish_remote_deletion(&seg).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    self.metrics.available.set(1);
                    self.metrics.add_segment("deleted");
                    self.metrics.add_bytes("deleted", seg.size_bytes);
                    tracing::info!(topic = %seg.topic, partition = seg.partition, base_offset = seg.base_offset,
                        segment_id = %seg.segment_id, "remote segment deleted");
                }
                Err(e) => {
                    self.metrics.add_error("delete");
                    if matches!(e, TierError::Store(_)) {
                        self.metrics.available.set(0);
                    }
                    let mut tasks = self.tasks();
                    let b = self.next_backoff(tasks.deletion_backoff);
                    tracing::warn!(error = %e, failures = b.failures, "deleting from the remote tier failed; retrying later");
                    tasks.deletion_backoff = Some(b);
                    return;
                }
            }
        }
        self.tasks().deletion_backoff = None;
    }

    /// The backoff after one more failure: doubling from
    /// `remote.log.manager.task.retry.backoff.ms` up to its max, with some jitter.
    fn next_backoff(&self, previous: Option<Backoff>) -> Backoff {
        let failures = previous.map_or(1, |b| b.failures.saturating_add(1));
        let exp = self
            .config
            .retry_backoff_ms
            .saturating_mul(1u64 << failures.saturating_sub(1).min(20));
        let capped = exp.min(self.config.retry_backoff_max_ms);
        let jitter = rand::random_range(0..=capped / 5);
        Backoff {
            failures,
            next_attempt: Instant::now() + Duration::from_millis(capped.saturating_sub(jitter)),
        }
    }

    /// The object store.
    pub fn store(&self) -> &RemoteStore {
        &self.store
    }
}
