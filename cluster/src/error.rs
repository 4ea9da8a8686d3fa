//! What a metadata operation can fail with.

use crate::model::PartitionState;

/// An error of a [`crate::ClusterMetadata`] operation.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The metadata store cannot be reached, or did not answer in time.
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    /// A topic of that name exists already.
    #[error("topic {0} already exists")]
    AlreadyExists(String),
    /// No topic of that name, or no such partition.
    #[error("unknown topic or partition {0}")]
    UnknownTopic(String),
    /// Another live broker is registered with this node id.
    #[error("node id {0} is already registered by a live broker")]
    DuplicateBrokerId(i32),
    /// The partition moved on since the expected partition epoch; this is its state now.
    #[error("stale partition epoch; now {}", .0.partition_epoch)]
    Stale(Box<PartitionState>),
    /// A controller's write after its term ended (its candidacy is gone).
    #[error("the controller term is over")]
    NotController,
    /// The request contradicts itself or the current metadata.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A stored value could not be read back.
    #[error("corrupt metadata at {key}: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}
