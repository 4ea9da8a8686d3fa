//! What the broker's keepers of cluster-wide state (ACLs, SCRAM credentials, client
//! quotas) share when they write to the data directory or to the cluster's shared sets:
//! the error of a failed write, following a set from the view, and the hex keys of the
//! sets (etcd keys hold no slash).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use sluice_cluster::ClusterView;
use sluice_storage::StorageError;
use tokio::sync::watch;

/// Why a change to cluster-wide state could not be stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SharedWriteError {
    /// This data directory.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The cluster's metadata store.
    #[error("the cluster metadata store refused the change: {0}")]
    Cluster(#[from] sluice_cluster::MetadataError),
}

impl SharedWriteError {
    /// The Kafka error a client is told.
    pub(crate) fn code(&self) -> i16 {
        match self {
            SharedWriteError::Storage(e) => crate::error::storage_error_code(e),
            // Retriable, as for the cluster's other metadata writes.
            SharedWriteError::Cluster(_) => ResponseError::RequestTimedOut.code(),
        }
    }
}

/// Calls `apply` with the first view and then with every view whose shared set `kind`
/// changed, until `stop`: how each broker takes up a change made through another.
pub(crate) async fn follow(
    kind: &str,
    mut view: watch::Receiver<Arc<ClusterView>>,
    mut stop: watch::Receiver<bool>,
    mut apply: impl FnMut(&ClusterView),
) {
    let mut last = None;
    loop {
        let current = view.borrow_and_update().clone();
        let set = current.entries.get(kind);
        if last.as_ref() != Some(&set.cloned()) {
            apply(&current);
            last = Some(set.cloned());
        }
        tokio::select! {
            changed = view.changed() => if changed.is_err() { return },
            _ = crate::stopped(&mut stop) => return,
        }
    }
}

/// Bytes as the key of a shared set.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bytes of a [`hex`] key; `None` for anything else.
pub(crate) fn unhex(key: &str) -> Option<Vec<u8>> {
    if !key.len().is_multiple_of(2) {
        return None;
    }
    (0..key.len())
        .step_by(2)
        .map(|i| {
            key.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_round_trip_and_hold_no_slash() {
        let bytes = b"alice/ops\0SCRAM-SHA-256";
        let key = hex(bytes);
        assert!(!key.contains('/'));
        assert_eq!(unhex(&key).as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
