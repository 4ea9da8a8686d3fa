//! Tiered storage (KIP-405) settings: Kafka's `remote.log.*` names where Kafka has one,
//! Sluice's own `remote.storage.*` for the object store it writes to.

use std::path::PathBuf;

use crate::ConfigError;

/// Where and how sealed segments are copied to the remote tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStorageConfig {
    /// `remote.log.storage.system.enable`: the broker copies segments of topics with
    /// `remote.storage.enable=true`.
    pub enabled: bool,
    /// `remote.storage.s3.endpoint`: an S3-compatible server's URL; unset is AWS.
    pub s3_endpoint: Option<String>,
    /// `remote.storage.s3.bucket`.
    pub s3_bucket: Option<String>,
    /// `remote.storage.s3.region`.
    pub s3_region: String,
    /// `remote.storage.s3.access.key`; unset: `AWS_ACCESS_KEY_ID`.
    pub s3_access_key: Option<String>,
    /// `remote.storage.s3.secret.key`; unset: `AWS_SECRET_ACCESS_KEY`.
    pub s3_secret_key: Option<String>,
    /// `remote.storage.s3.path.style.access`: `http://host/bucket/key` rather than
    /// `http://bucket.host/key`, as most S3-compatible servers want.
    pub s3_path_style_access: bool,
    /// `remote.storage.s3.prefix`: key prefix of every object, so buckets can be shared.
    pub prefix: String,
    /// `remote.storage.local.dir`: a directory standing in for the object store (tests
    /// and local development); wins over S3.
    pub local_dir: Option<PathBuf>,
    /// `remote.log.manager.task.interval.ms`: how often each partition is checked for
    /// segments to copy or delete.
    pub task_interval_ms: u64,
    /// `remote.log.manager.copier.thread.pool.size`: most segment copies in flight.
    pub max_copies_in_flight: usize,
    /// `remote.log.manager.task.retry.backoff.ms`: first wait after a failed copy or delete.
    pub retry_backoff_ms: u64,
    /// `remote.log.manager.task.retry.backoff.max.ms`: longest wait between retries.
    pub retry_backoff_max_ms: u64,
    /// `remote.fetch.max.wait.ms`: how long a Fetch waits for a remote read before it
    /// answers with what the local log gave.
    pub fetch_max_wait_ms: u64,
    /// `remote.storage.cache.bytes`: memory for chunks of remote segments read recently.
    pub cache_bytes: u64,
}

impl Default for RemoteStorageConfig {
    fn default() -> Self {
        RemoteStorageConfig {
            enabled: false,
            s3_endpoint: None,
            s3_bucket: None,
            s3_region: "us-east-1".into(),
            s3_access_key: None,
            s3_secret_key: None,
            s3_path_style_access: false,
            prefix: String::new(),
            local_dir: None,
            task_interval_ms: 30_000,
            max_copies_in_flight: 10,
            retry_backoff_ms: 500,
            retry_backoff_max_ms: 30_000,
            fetch_max_wait_ms: 500,
            cache_bytes: 256 * 1024 * 1024,
        }
    }
}

impl RemoteStorageConfig {
    /// Refuses a tier turned on with nowhere to write to.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.enabled && self.local_dir.is_none() && self.s3_bucket.is_none() {
            return Err(ConfigError::invalid(
                "remote.log.storage.system.enable",
                "true",
                "set remote.storage.s3.bucket (or remote.storage.local.dir) to say where segments go",
            ));
        }
        if self.s3_access_key.is_some() != self.s3_secret_key.is_some() {
            let (key, value) = if self.s3_access_key.is_some() {
                ("remote.storage.s3.secret.key", "")
            } else {
                ("remote.storage.s3.access.key", "")
            };
            return Err(ConfigError::invalid(
                key,
                value,
                "remote.storage.s3.access.key and remote.storage.s3.secret.key go together",
            ));
        }
        if self.retry_backoff_ms > self.retry_backoff_max_ms {
            return Err(ConfigError::invalid(
                "remote.log.manager.task.retry.backoff.ms",
                &self.retry_backoff_ms.to_string(),
                "must not exceed remote.log.manager.task.retry.backoff.max.ms",
            ));
        }
        Ok(())
    }
}
