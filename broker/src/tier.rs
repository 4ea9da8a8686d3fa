//! The broker's remote tier (tiered storage, KIP-405): the object store opened and
//! checked at start-up, the reader fetches use below the local log start, and the remote
//! log manager copying and deleting in the background.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_config::BrokerConfig;
use sluice_tier::{
    RemoteLogManager, RemoteReader, RemoteStore, TierError, TierMetrics, TieredLogs,
};

/// What the broker holds of the remote tier.
pub(crate) struct Tier {
    /// Reads for fetches and offset lookups.
    pub(crate) reader: RemoteReader,
    /// Copies, expires and deletes in the background.
    pub(crate) manager: Arc<RemoteLogManager>,
    /// Its counters.
    pub(crate) metrics: TierMetrics,
    /// `remote.fetch.max.wait.ms`.
    pub(crate) fetch_max_wait: Duration,
}

/// The object store opened and checked, before the remote log manager starts (in a
/// cluster the manager needs the replicas, and the followers need the reader first).
pub(crate) struct OpenedTier {
    store: RemoteStore,
    /// Reads for fetches, offset lookups and followers.
    pub(crate) reader: RemoteReader,
    metrics: TierMetrics,
    config: sluice_config::RemoteStorageConfig,
}

impl Tier {
    /// Opens the object store the properties name, if tiered storage is on. Wrong
    /// credentials or a missing bucket stop the start-up; a store that does not answer
    /// yet is reported and retried by the background copies.
    pub(crate) async fn open(config: &BrokerConfig) -> anyhow::Result<Option<OpenedTier>> {
        let rc = &config.remote;
        if !rc.enabled {
            return Ok(None);
        }
        let store = RemoteStore::from_config(rc).context("remote.log.storage.system.enable")?;
        let metrics = TierMetrics::new().context("remote tier metrics")?;
        match tokio::time::timeout(Duration::from_secs(20), store.probe()).await {
            Ok(Ok(())) => {
                tracing::info!(store = store.describe(), "remote tier ready");
            }
            Ok(Err(e @ TierError::Misconfigured(_))) => {
                return Err(anyhow::anyhow!(e)).context("remote tier");
            }
            Ok(Err(e)) => {
                metrics.set_available(false);
                tracing::warn!(store = store.describe(), error = %e,
                    "the remote tier's object store does not answer; segments stay local until it does");
            }
            Err(_) => {
                metrics.set_available(false);
                tracing::warn!(store = store.describe(),
                    "the remote tier's object store did not answer within 20 s; segments stay local until it does");
            }
        }
        let reader = RemoteReader::new(store.clone(), rc.cache_bytes, metrics.clone());
        Ok(Some(OpenedTier {
            store,
            reader,
            metrics,
            config: rc.clone(),
        }))
    }
}

impl OpenedTier {
    /// The tier with its remote log manager over `logs`: the data directory's partitions
    /// on a single node, the led partitions and the cluster metadata in a cluster.
    pub(crate) fn start(self, logs: Arc<dyn TieredLogs>) -> Arc<Tier> {
        let manager =
            RemoteLogManager::new(logs, self.store, self.config.clone(), self.metrics.clone());
        Arc::new(Tier {
            reader: self.reader,
            manager,
            metrics: self.metrics,
            fetch_max_wait: Duration::from_millis(self.config.fetch_max_wait_ms),
        })
    }

    /// `remote.log.manager.task.interval.ms`.
    pub(crate) fn task_interval_ms(&self) -> u64 {
        self.config.task_interval_ms
    }
}
