//! Group configs: Kafka's resource type GROUP in DescribeConfigs and (Incremental)
//! AlterConfigs, kept in the data directory or, in a cluster, in the cluster metadata's
//! `group_configs` set that every broker follows (the partition leaders serving a share
//! group need them as much as its coordinator). Sluice applies the share-group ones.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use sluice_cluster::{ClusterMetadata, ClusterView};
use sluice_config::ConfigType;
use sluice_storage::{Storage, StorageError};

use crate::shared_set::{hex, unhex, SharedWriteError};

/// The kind of the cluster's shared set that holds group configs.
const GROUP_CONFIGS: &str = "group_configs";

/// `share.auto.offset.reset`.
pub(crate) const SHARE_AUTO_OFFSET_RESET: &str = "share.auto.offset.reset";
/// `share.isolation.level`.
pub(crate) const SHARE_ISOLATION_LEVEL: &str = "share.isolation.level";
/// `share.record.lock.duration.ms`.
pub(crate) const SHARE_RECORD_LOCK_DURATION_MS: &str = "share.record.lock.duration.ms";

/// The group configs Sluice knows, with their type, and a description.
pub(crate) const GROUP_CONFIG_DEFS: &[(&str, ConfigType, &str)] = &[
    (
        SHARE_AUTO_OFFSET_RESET,
        ConfigType::String,
        "Where a share group starts reading a partition it has not read before: latest or earliest.",
    ),
    (
        SHARE_ISOLATION_LEVEL,
        ConfigType::String,
        "read_committed: a share group reads only committed transactional records.",
    ),
    (
        SHARE_RECORD_LOCK_DURATION_MS,
        ConfigType::Int,
        "How long a member of the share group holds the records it fetched.",
    ),
];

/// Why a group config is refused: the message INVALID_CONFIG carries.
pub(crate) fn validate(name: &str, value: &str) -> Result<(), String> {
    match name {
        SHARE_AUTO_OFFSET_RESET if matches!(value, "latest" | "earliest") => Ok(()),
        SHARE_AUTO_OFFSET_RESET => Err(format!(
            "Invalid value {value} for configuration {name}: must be latest or earliest"
        )),
        SHARE_ISOLATION_LEVEL if matches!(value, "read_uncommitted" | "read_committed") => Ok(()),
        SHARE_ISOLATION_LEVEL => Err(format!(
            "Invalid value {value} for configuration {name}: must be read_uncommitted or read_committed"
        )),
        SHARE_RECORD_LOCK_DURATION_MS => match value.trim().parse::<i64>() {
            Ok(v) if (1_000..=3_600_000).contains(&v) => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for configuration {name}: must be between 1000 and 3600000"
            )),
        },
        _ => Err(format!("Unknown group config name: {name}")),
    }
}

/// How a share group reads, from its configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShareGroupSettings {
    /// Start new share-partitions at the log start offset rather than the high watermark.
    pub(crate) earliest: bool,
    /// Read only committed transactional records (up to the last stable offset).
    pub(crate) read_committed: bool,
    /// A lock duration of the group's own.
    pub(crate) lock_duration_ms: Option<i32>,
}

/// Where group configs are kept.
enum Backend {
    Local(Arc<Storage>),
    Cluster(Arc<dyn ClusterMetadata>),
}

/// The group configs in force.
pub(crate) struct GroupConfigs {
    backend: Backend,
    configs: RwLock<BTreeMap<String, BTreeMap<String, String>>>,
}

/// The group configs a cluster view holds; unreadable entries are logged and skipped.
fn configs_in(view: &ClusterView) -> BTreeMap<String, BTreeMap<String, String>> {
    let Some(set) = view.entries.get(GROUP_CONFIGS) else {
        return BTreeMap::new();
    };
    set.iter()
        .filter_map(|(key, value)| {
            let group = unhex(key).and_then(|k| String::from_utf8(k).ok());
            match (group, sluice_storage::decode_group_configs(value)) {
                (Some(g), Ok(c)) => Some((g, c)),
                _ => {
                    tracing::warn!(key, "unreadable group configs in the cluster metadata");
                    None
                }
            }
        })
        .collect()
}

impl GroupConfigs {
    /// A single node's, from its data directory.
    pub(crate) fn load(storage: Arc<Storage>) -> Result<Self, StorageError> {
        let configs = storage.group_configs()?;
        Ok(GroupConfigs {
            backend: Backend::Local(storage),
            configs: RwLock::new(configs),
        })
    }

    /// A cluster member's: the cluster's, as its view shows them ([`GroupConfigs::follow`]
    /// keeps them current).
    pub(crate) fn replicated(meta: Arc<dyn ClusterMetadata>) -> Self {
        let configs = configs_in(&meta.view().borrow());
        GroupConfigs {
            backend: Backend::Cluster(meta),
            configs: RwLock::new(configs),
        }
    }

    /// In a cluster: takes the group configs of every new view until `stop`.
    pub(crate) async fn follow(
        self: Arc<Self>,
        view: tokio::sync::watch::Receiver<Arc<ClusterView>>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        crate::shared_set::follow(GROUP_CONFIGS, view, stop, |v| {
            *self.configs.write().unwrap_or_else(|p| p.into_inner()) = configs_in(v);
        })
        .await;
    }

    /// A group's configs (the ones set).
    pub(crate) fn get(&self, group: &str) -> BTreeMap<String, String> {
        self.configs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces a group's configs (validated by the caller; empty removes them).
    pub(crate) async fn set(
        &self,
        group: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), SharedWriteError> {
        match &self.backend {
            Backend::Local(storage) => {
                storage.set_group_configs(group, &self.get(group), &configs)?
            }
            Backend::Cluster(meta) => {
                let key = hex(group.as_bytes());
                let (puts, deletes) = if configs.is_empty() {
                    (Vec::new(), vec![key])
                } else {
                    (
                        vec![(key, sluice_storage::encode_group_configs(&configs))],
                        Vec::new(),
                    )
                };
                meta.apply_entries(GROUP_CONFIGS, puts, deletes).await?;
            }
        }
        let mut all = self.configs.write().unwrap_or_else(|p| p.into_inner());
        if configs.is_empty() {
            all.remove(group);
        } else {
            all.insert(group.to_string(), configs);
        }
        Ok(())
    }

    /// How a share group reads.
    pub(crate) fn share_settings(&self, group: &str) -> ShareGroupSettings {
        let c = self.get(group);
        ShareGroupSettings {
            earliest: c.get(SHARE_AUTO_OFFSET_RESET).map(String::as_str) == Some("earliest"),
            read_committed: c.get(SHARE_ISOLATION_LEVEL).map(String::as_str)
                == Some("read_committed"),
            lock_duration_ms: c
                .get(SHARE_RECORD_LOCK_DURATION_MS)
                .and_then(|v| v.trim().parse().ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_configs_with_valid_values_pass() {
        assert!(validate(SHARE_AUTO_OFFSET_RESET, "earliest").is_ok());
        assert!(validate(SHARE_AUTO_OFFSET_RESET, "by_duration:PT1H").is_err());
        assert!(validate(SHARE_ISOLATION_LEVEL, "read_committed").is_ok());
        assert!(validate(SHARE_ISOLATION_LEVEL, "committed").is_err());
        assert!(validate(SHARE_RECORD_LOCK_DURATION_MS, "999").is_err());
        assert!(validate(SHARE_RECORD_LOCK_DURATION_MS, "2000").is_ok());
        assert!(validate("consumer.session.timeout.ms", "45000").is_err());
    }
}
