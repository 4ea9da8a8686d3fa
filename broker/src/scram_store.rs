//! Where SCRAM credentials are kept: the data directory on a single node; in a cluster, the
//! cluster's metadata (the `scram` shared set), so that a user created through one broker
//! can log in on every broker. Credentials added to a data directory while its broker was
//! stopped (`sluice scram`) move into the cluster when the broker joins it.

use std::sync::{Arc, OnceLock};

use sluice_cluster::{ClusterMetadata, ClusterView};
use sluice_storage::{Credentials, ScramCredential, ScramCredentialInfo, StorageError};

use crate::shared_set::{hex, unhex, SharedWriteError};

/// The kind of the cluster's shared set that holds SCRAM credentials.
const SCRAM: &str = "scram";

/// A user's credential for one mechanism, to store.
pub(crate) type Upsert = (String, String, ScramCredential);

/// The SCRAM credentials every listener checks and the admin APIs change.
pub(crate) struct ScramStore {
    local: Credentials,
    /// Set once the broker has joined a cluster.
    cluster: OnceLock<Arc<dyn ClusterMetadata>>,
}

/// A credential's key in the cluster's shared set: user and mechanism, NUL-separated.
fn entry_key(user: &str, mechanism: &str) -> String {
    let bytes: Vec<u8> = user.bytes().chain([0]).chain(mechanism.bytes()).collect();
    hex(&bytes)
}

/// The user and mechanism of an entry key.
fn parse_key(key: &str) -> Option<(String, String)> {
    let bytes = unhex(key)?;
    let sep = bytes.iter().position(|b| *b == 0)?;
    let user = String::from_utf8(bytes[..sep].to_vec()).ok()?;
    let mechanism = String::from_utf8(bytes[sep + 1..].to_vec()).ok()?;
    Some((user, mechanism))
}

impl ScramStore {
    /// The store of a data directory.
    pub(crate) fn new(local: Credentials) -> Self {
        ScramStore {
            local,
            cluster: OnceLock::new(),
        }
    }

    /// From now on credentials are the cluster's; those of the data directory move there.
    pub(crate) async fn join(&self, meta: Arc<dyn ClusterMetadata>) -> anyhow::Result<()> {
        let mut moved = Vec::new();
        for info in self.local.list()? {
            if let Some(c) = self.local.get(&info.user, &info.mechanism)? {
                moved.push((info.user, info.mechanism, c));
            }
        }
        if !moved.is_empty() {
            let puts = moved
                .iter()
                .map(|(u, m, c)| (entry_key(u, m), c.encode()))
                .collect();
            meta.apply_entries(SCRAM, puts, Vec::new()).await?;
            let pairs: Vec<(String, String)> = moved
                .iter()
                .map(|(u, m, _)| (u.clone(), m.clone()))
                .collect();
            self.local.apply(&pairs, &[])?;
            tracing::info!(
                credentials = moved.len(),
                "moved SCRAM credentials of this data directory into the cluster"
            );
        }
        let _ = self.cluster.set(meta);
        Ok(())
    }

    fn view(&self) -> Option<Arc<ClusterView>> {
        self.cluster.get().map(|m| m.view().borrow().clone())
    }

    /// The credential of `user` for `mechanism`, if there is one.
    pub(crate) fn get(
        &self,
        user: &str,
        mechanism: &str,
    ) -> Result<Option<ScramCredential>, StorageError> {
        let Some(view) = self.view() else {
            return self.local.get(user, mechanism);
        };
        view.entries
            .get(SCRAM)
            .and_then(|set| set.get(&entry_key(user, mechanism)))
            .map(|v| ScramCredential::decode(v))
            .transpose()
    }

    /// Every credential, by user then mechanism.
    pub(crate) fn list(&self) -> Result<Vec<ScramCredentialInfo>, StorageError> {
        let Some(view) = self.view() else {
            return self.local.list();
        };
        let Some(set) = view.entries.get(SCRAM) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (key, value) in set {
            let Some((user, mechanism)) = parse_key(key) else {
                tracing::warn!(
                    key,
                    "unreadable SCRAM credential key in the cluster metadata"
                );
                continue;
            };
            out.push(ScramCredentialInfo {
                user,
                mechanism,
                iterations: ScramCredential::decode(value)?.iterations,
            });
        }
        out.sort_by(|a, b| (&a.user, &a.mechanism).cmp(&(&b.user, &b.mechanism)));
        Ok(out)
    }

    /// Applies deletions and upserts together.
    pub(crate) async fn apply(
        &self,
        deletions: &[(String, String)],
        upserts: &[Upsert],
    ) -> Result<(), SharedWriteError> {
        let Some(meta) = self.cluster.get() else {
            return Ok(self.local.apply(deletions, upserts)?);
        };
        let puts = upserts
            .iter()
            .map(|(u, m, c)| (entry_key(u, m), c.encode()))
            .collect();
        let deletes = deletions.iter().map(|(u, m)| entry_key(u, m)).collect();
        Ok(meta.apply_entries(SCRAM, puts, deletes).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_name_the_user_and_mechanism() {
        let key = entry_key("alice/ops", "SCRAM-SHA-256");
        assert!(!key.contains('/'));
        assert_eq!(
            parse_key(&key),
            Some(("alice/ops".to_string(), "SCRAM-SHA-256".to_string()))
        );
        assert_eq!(parse_key("zz"), None);
        assert_eq!(parse_key("616263"), None);
    }
}
