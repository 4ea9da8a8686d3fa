//! The object store behind the remote tier: S3 (or an S3-compatible server), a local
//! directory, or memory, through the `object_store` crate. Uploads, ranged reads and
//! deletions of a remote segment's objects.

use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use sluice_config::RemoteStorageConfig;
use sluice_storage::{CopyJob, RemoteSegment};

use crate::layout::{object_path, ObjectKind};
use crate::TierError;

/// Segments up to this size go in one PUT; larger ones as a multipart upload of parts this
/// size (S3 wants at least 5 MiB per part but the last).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// The object store and the key prefix the broker writes under.
#[derive(Debug, Clone)]
pub struct RemoteStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// What the store is, for log lines.
    describe: String,
}

impl RemoteStore {
    /// The store the broker's properties name: `remote.storage.local.dir`, else S3.
    pub fn from_config(cfg: &RemoteStorageConfig) -> Result<Self, TierError> {
        if let Some(dir) = &cfg.local_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                TierError::Misconfigured(format!("remote.storage.local.dir={}: {e}", dir.display()))
            })?;
            let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| {
                TierError::Misconfigured(format!("remote.storage.local.dir={}: {e}", dir.display()))
            })?;
            return Ok(RemoteStore {
                store: Arc::new(store),
                prefix: cfg.prefix.clone(),
                describe: format!("directory {}", dir.display()),
            });
        }
        let bucket = cfg.s3_bucket.clone().ok_or_else(|| {
            TierError::Misconfigured("remote.storage.s3.bucket is not set".into())
        })?;
        // Unset keys come from the usual AWS variables (AWS_ACCESS_KEY_ID, ...).
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_region(&cfg.s3_region)
            .with_virtual_hosted_style_request(!cfg.s3_path_style_access)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(true)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(30)),
            )
            // Retries belong to the remote log manager, which backs off per partition;
            // the client only smooths over a dropped connection.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(1),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: Duration::from_secs(15),
            });
        if let Some(endpoint) = &cfg.s3_endpoint {
            b = b.with_endpoint(endpoint);
        }
        if let (Some(key), Some(secret)) = (&cfg.s3_access_key, &cfg.s3_secret_key) {
            b = b.with_access_key_id(key).with_secret_access_key(secret);
        }
        let store = b
            .build()
            .map_err(|e| TierError::Misconfigured(format!("remote.storage.s3.* settings: {e}")))?;
        Ok(RemoteStore {
            store: Arc::new(store),
            prefix: cfg.prefix.clone(),
            describe: format!(
                "bucket {bucket} at {}",
                cfg.s3_endpoint.as_deref().unwrap_or("AWS S3")
            ),
        })
    }

    /// A store in memory, for tests.
    pub fn in_memory() -> Self {
        RemoteStore {
            store: Arc::new(InMemory::new()),
            prefix: String::new(),
            describe: "memory".into(),
        }
    }

    /// What the store is, for log lines.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Lists the broker's prefix once: wrong credentials or a missing bucket are a
    /// configuration error; an unreachable store is an ordinary (retriable) error.
    pub async fn probe(&self) -> Result<(), TierError> {
        let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        match self.store.list_with_delimiter(prefix.as_ref()).await {
            Ok(_) => Ok(()),
            Err(
                e @ (object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }),
            ) => Err(TierError::Misconfigured(format!(
                "the object store ({}) refused the credentials (remote.storage.s3.access.key, \
                 remote.storage.s3.secret.key): {e}",
                self.describe
            ))),
            Err(e @ object_store::Error::NotFound { .. }) => {
                Err(TierError::Misconfigured(format!(
                    "the object store has no such bucket ({}; remote.storage.s3.bucket): {e}",
                    self.describe
                )))
            }
            // S3-compatible servers' refusals often come back as generic errors: their S3
            // error codes say what is wrong.
            Err(e) if refused_credentials(&e) => Err(TierError::Misconfigured(format!(
                "the object store ({}) refused the credentials (remote.storage.s3.access.key, \
                 remote.storage.s3.secret.key): {e}",
                self.describe
            ))),
            Err(e) if e.to_string().contains("NoSuchBucket") => {
                Err(TierError::Misconfigured(format!(
                    "the object store has no such bucket ({}; remote.storage.s3.bucket): {e}",
                    self.describe
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The key of one object of `segment`.
    pub(crate) fn path(&self, segment: &RemoteSegment, kind: ObjectKind) -> Path {
        object_path(&self.prefix, segment, kind)
    }

    /// Uploads a segment and its indexes; returns the bytes written.
    pub async fn upload(&self, job: &CopyJob) -> Result<u64, TierError> {
        let seg = &job.segment;
        self.upload_log(job).await?;
        let mut bytes = seg.size_bytes;
        for (kind, body) in [
            (ObjectKind::OffsetIndex, &job.offset_index),
            (ObjectKind::TxnIndex, &job.txn_index),
            (ObjectKind::ProducerSnapshot, &job.producer_snapshot),
        ] {
            self.store
                .put(&self.path(seg, kind), PutPayload::from(body.clone()))
                .await?;
            bytes += body.len() as u64;
        }
        Ok(bytes)
    }

    /// The segment file, in one PUT or as a multipart upload.
    async fn upload_log(&self, job: &CopyJob) -> Result<(), TierError> {
        let seg = &job.segment;
        let path = self.path(seg, ObjectKind::Log);
        let size = seg.size_bytes;
        if size <= PART_BYTES as u64 {
            let data = read_file(&job.file, 0, size as usize, &path).await?;
            self.store.put(&path, PutPayload::from(data)).await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut position = 0u64;
        while position < size {
            let len = (size - position).min(PART_BYTES as u64) as usize;
            let part = match read_file(&job.file, position, len, &path).await {
                Ok(part) => part,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(e.into());
            }
            writer.put(part);
            position += len as u64;
        }
        writer.finish().await?;
        Ok(())
    }

    /// Deletes every object of `segment`; objects already gone are fine.
    pub async fn delete_segment(&self, segment: &RemoteSegment) -> Result<(), TierError> {
        for kind in ObjectKind::ALL {
            match self.store.delete(&self.path(segment, kind)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Bytes `range` of one object of `segment`.
    pub(crate) async fn get_range(
        &self,
        segment: &RemoteSegment,
        kind: ObjectKind,
        range: Range<u64>,
    ) -> Result<Bytes, TierError> {
        Ok(self
            .store
            .get_range(&self.path(segment, kind), range)
            .await?)
    }

    /// A whole object of `segment`.
    pub(crate) async fn get(
        &self,
        segment: &RemoteSegment,
        kind: ObjectKind,
    ) -> Result<Bytes, TierError> {
        Ok(self
            .store
            .get(&self.path(segment, kind))
            .await?
            .bytes()
            .await?)
    }

    /// Every object key under the broker's prefix, with its size (tools and tests).
    pub async fn list(&self) -> Result<Vec<(String, u64)>, TierError> {
        use futures::TryStreamExt;
        let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        let metas: Vec<_> = self.store.list(prefix.as_ref()).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .collect())
    }
}

/// Whether an error is S3's answer to credentials it does not accept.
fn refused_credentials(e: &object_store::Error) -> bool {
    let text = e.to_string();
    [
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
        "403 Forbidden",
    ]
    .iter()
    .any(|code| text.contains(code))
}

/// `len` bytes at `position` of a segment file, read off the async runtime.
async fn read_file(
    file: &Arc<std::fs::File>,
    position: u64,
    len: usize,
    path: &Path,
) -> Result<Bytes, TierError> {
    let file = file.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, position).map(|()| buf)
    })
    .await;
    match read {
        Ok(Ok(buf)) => Ok(Bytes::from(buf)),
        Ok(Err(e)) => Err(TierError::Corrupt {
            path: path.to_string(),
            reason: format!("the local segment could not be read at {position}: {e}"),
        }),
        Err(e) => Err(TierError::Corrupt {
            path: path.to_string(),
            reason: format!("the read of the local segment stopped: {e}"),
        }),
    }
}
