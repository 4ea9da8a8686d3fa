//! Errors of the remote tier.

/// What went wrong talking to the object store or reading what it holds.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    /// The object store refused or failed a request (unreachable, an error answer).
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// The object store refused the credentials or the bucket does not exist: a setting
    /// is wrong, retrying will not help.
    #[error("{0}")]
    Misconfigured(String),
    /// An object holds something other than what was uploaded.
    #[error("remote object {path}: {reason}")]
    Corrupt {
        /// The object's key.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Local storage failed (reading a segment file to upload, or recording metadata).
    #[error(transparent)]
    Storage(#[from] sluice_storage::StorageError),
    /// The cluster metadata, where a cluster keeps the remote segments' metadata, failed.
    #[error("cluster metadata: {0}")]
    Metadata(String),
    /// A request took longer than allowed.
    #[error("the object store did not answer within {0:?}")]
    Timeout(std::time::Duration),
}

impl TierError {
    /// An object missing from the store.
    pub fn is_not_found(&self) -> bool {
        matches!(self, TierError::Store(object_store::Error::NotFound { .. }))
    }
}
