//! The health of the data directory (Kafka's log dir failure): the first write that the
//! disk refuses takes every partition offline until the broker restarts, because after a
//! failed write neither the segment files nor the index can be trusted to agree.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use crate::StorageError;

/// Whether the data directory still works, and why not once it has failed.
pub struct LogDirHealth {
    /// Set once with the failure: what every append and read checks, without a lock.
    offline: AtomicBool,
    failure: watch::Sender<Option<String>>,
}

impl Default for LogDirHealth {
    fn default() -> Self {
        LogDirHealth {
            offline: AtomicBool::new(false),
            failure: watch::channel(None).0,
        }
    }
}

impl LogDirHealth {
    /// True once a write to the data directory has failed.
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    /// The failure, once there is one: receivers are told the moment the directory fails.
    pub fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.failure.subscribe()
    }

    /// Refuses work on an offline directory (KAFKA_STORAGE_ERROR).
    pub(crate) fn check(&self) -> Result<(), StorageError> {
        if !self.is_offline() {
            return Ok(());
        }
        match &*self.failure.borrow() {
            Some(reason) => Err(StorageError::LogDirOffline(reason.clone())),
            None => Ok(()),
        }
    }

    /// Takes the directory offline when `result` failed on the disk or the index.
    pub(crate) fn note<T, E: AsStorageError>(&self, result: Result<T, E>) -> Result<T, E> {
        if let Err(e) = &result {
            if let Some(e @ (StorageError::Io { .. } | StorageError::Index(_))) = e.storage() {
                self.fail(e.to_string());
            }
        }
        result
    }

    /// Takes the directory offline for `reason` (only the first failure is kept).
    pub(crate) fn fail(&self, reason: String) {
        let first = self.failure.send_if_modified(|failure| {
            if failure.is_some() {
                return false;
            }
            *failure = Some(reason.clone());
            // Before the receivers hear of it, so that what they call sees it offline.
            self.offline.store(true, Ordering::Release);
            true
        });
        if first {
            tracing::error!(reason, "the data directory failed: every partition in it is offline until the broker restarts");
        }
    }
}

/// An error that may carry a [`StorageError`].
pub(crate) trait AsStorageError {
    /// The storage error inside, if any.
    fn storage(&self) -> Option<&StorageError>;
}

impl AsStorageError for StorageError {
    fn storage(&self) -> Option<&StorageError> {
        Some(self)
    }
}

impl AsStorageError for crate::log::AppendError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            crate::log::AppendError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl AsStorageError for crate::log::ReadError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            crate::log::ReadError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_disk_failure_takes_the_directory_offline_and_is_kept() {
        let health = LogDirHealth::default();
        assert!(health.check().is_ok());
        let corrupt: Result<(), StorageError> = Err(StorageError::Corrupt("x".into()));
        let _ = health.note(corrupt);
        assert!(!health.is_offline(), "only disk and index failures count");
        let full: Result<(), StorageError> = Err(StorageError::io(
            std::path::Path::new("/data/t-0/00000000000000000000.log"),
            std::io::Error::from_raw_os_error(28),
        ));
        let _ = health.note(full);
        let _ = health.note::<(), _>(Err(StorageError::io(
            std::path::Path::new("/other"),
            std::io::Error::from_raw_os_error(5),
        )));
        match health.check() {
            Err(StorageError::LogDirOffline(reason)) => {
                assert!(reason.starts_with("/data/t-0/"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            health
                .subscribe()
                .borrow()
                .as_deref()
                .map(|r| r.contains("/other")),
            Some(false)
        );
    }
}
