//! The one mapping from internal errors to Kafka error codes.

use kafka_protocol::ResponseError;
use sluice_storage::{AppendError, ReadError, SequenceError, StorageError};

/// Kafka error code for success.
pub(crate) const NONE: i16 = 0;

/// The Kafka error code for an error variant.
pub(crate) const fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Error code for a failed append.
pub(crate) fn append_error_code(e: &AppendError) -> i16 {
    match e {
        AppendError::TooLarge { .. } => code(ResponseError::MessageTooLarge),
        AppendError::Sequence(SequenceError::OutOfOrder { .. }) => {
            code(ResponseError::OutOfOrderSequenceNumber)
        }
        AppendError::Sequence(SequenceError::StaleEpoch { .. }) => {
            code(ResponseError::InvalidProducerEpoch)
        }
        AppendError::Sequence(SequenceError::NotTransactional(_)) => {
            code(ResponseError::InvalidTxnState)
        }
        AppendError::Sequence(SequenceError::StaleCoordinator { .. }) => {
            code(ResponseError::TransactionCoordinatorFenced)
        }
        AppendError::InvalidRecord(_) => code(ResponseError::InvalidRecord),
        AppendError::RecordErrors {
            invalid_timestamp: true,
            ..
        } => code(ResponseError::InvalidTimestamp),
        AppendError::RecordErrors { .. } => code(ResponseError::InvalidRecord),
        AppendError::OffsetMismatch { .. } => code(ResponseError::CorruptMessage),
        AppendError::NotLeader { .. } => code(ResponseError::NotLeaderOrFollower),
        AppendError::Storage(e) => storage_error_code(e),
    }
}

/// Error code for a failed read.
pub(crate) fn read_error_code(e: &ReadError) -> i16 {
    match e {
        ReadError::OutOfRange { .. } => code(ResponseError::OffsetOutOfRange),
        ReadError::Storage(e) => storage_error_code(e),
        // Kafka's answer to a follower fetching below the leader's local log start.
        ReadError::InRemoteTier(_) => code(ResponseError::OffsetMovedToTieredStorage),
    }
}

/// Error code for a storage failure.
pub(crate) fn storage_error_code(e: &StorageError) -> i16 {
    match e {
        StorageError::TopicExists(_) => code(ResponseError::TopicAlreadyExists),
        StorageError::UnknownTopic(_) => code(ResponseError::UnknownTopicOrPartition),
        StorageError::Io { .. }
        | StorageError::LogDirOffline(_)
        | StorageError::Index(_)
        | StorageError::Corrupt(_)
        | StorageError::CrashPoint(_) => code(ResponseError::KafkaStorageError),
        StorageError::StaleLeaderEpoch { .. } => code(ResponseError::FencedLeaderEpoch),
        // Retriable: clients ask for a producer id again.
        StorageError::ProducerIdsUnavailable(_) => code(ResponseError::CoordinatorLoadInProgress),
        StorageError::BelowLogStart { .. } => code(ResponseError::OffsetOutOfRange),
        StorageError::NotLeader(_) => code(ResponseError::NotLeaderOrFollower),
    }
}
