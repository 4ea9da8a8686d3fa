//! Flushing a partition: the flush policy's fsyncs (group commit of concurrent waiters)
//! and the background flush of each rolled segment.

use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::partition::Partition;
use crate::StorageError;

impl Partition {
    /// Forces a rolled segment to disk in the background, whatever the flush policy, as
    /// Kafka does: afterwards nothing holds its file open, so the open-files budget can
    /// close it and retention's deletion frees its space at once.
    pub(super) fn flush_rolled(&self, file: Arc<File>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Outside the broker (tools, tests): the next flush takes it.
            return;
        };
        let me = self.me.clone();
        runtime.spawn_blocking(move || {
            let started = std::time::Instant::now();
            let synced = file.sync_data();
            let Some(p) = me.upgrade() else { return };
            match synced {
                Ok(()) => {
                    crate::FSYNC_STATS.record(started.elapsed());
                    p.lock().local.unflushed_files.retain(|f| !Arc::ptr_eq(f, &file));
                }
                // Left in the list: the next flush retries it and reports the error.
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flushing a rolled segment failed")
                }
            }
        });
    }

    /// Forces everything appended so far to disk unless a concurrent flush already covered
    /// `offset`. Waiters share one fsync: group commit.
    pub async fn flush_to(&self, offset: i64) -> Result<(), StorageError> {
        if self.flushed_offset.load(Ordering::Acquire) > offset {
            return Ok(());
        }
        let _guard = self.flush_lock.lock().await;
        if self.flushed_offset.load(Ordering::Acquire) > offset {
            return Ok(());
        }
        self.flush_now().await
    }

    /// Forces all appended data to disk now.
    pub async fn flush_now(&self) -> Result<(), StorageError> {
        self.db.health.check()?;
        let flushed = self.flush_now_on_disk().await;
        self.db.health.note(flushed)
    }

    async fn flush_now_on_disk(&self) -> Result<(), StorageError> {
        let (rolled, active, leo, truncations) = {
            let mut log = self.lock();
            let rolled = std::mem::take(&mut log.local.unflushed_files);
            let active = log.local.active()?.file.handle()?;
            log.unflushed_messages = 0;
            (rolled, active, log.log_end_offset(), log.truncations)
        };
        let dir = self.dir.clone();
        let synced = tokio::task::spawn_blocking(move || {
            let mut failed = None;
            for (i, f) in rolled.iter().chain([&active]).enumerate() {
                let started = std::time::Instant::now();
                if let Err(e) = f.sync_data() {
                    failed = Some((i, StorageError::io(&dir, e)));
                    break;
                }
                crate::FSYNC_STATS.record(started.elapsed());
            }
            match failed {
                Some((i, e)) => Err((rolled, i, e)),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| StorageError::Corrupt(format!("flush task failed: {e}")))?;
        if let Err((rolled, failed, e)) = synced {
            // The rolled segments not yet synced stay due, so a later flush retries them.
            let mut log = self.lock();
            log.local
                .unflushed_files
                .extend(rolled.into_iter().skip(failed));
            return Err(e);
        }
        {
            // A truncation meanwhile may have replaced what was synced: claim nothing then.
            let log = self.lock();
            if log.truncations == truncations {
                self.flushed_offset.fetch_max(leo, Ordering::AcqRel);
            }
        }
        self.checkpoint_high_watermark()
    }

    /// True when appended data is not yet forced to disk.
    pub fn has_unflushed(&self) -> bool {
        self.flushed_offset.load(Ordering::Acquire) < self.log_end_offset()
    }
}
