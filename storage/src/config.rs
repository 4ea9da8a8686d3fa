//! What storage needs of the broker's configuration, and nothing else: no listeners, no
//! SASL, no coordinator settings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sluice_config::{BrokerConfig, FlushPolicy};

/// The settings [`crate::Storage::open`] works from.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `log.dirs`: the data directory (segments and the RocksDB index).
    pub log_dir: PathBuf,
    /// `cluster.id`: checked against, or stored as, the data directory's cluster id.
    pub cluster_id: Option<String>,
    /// `node.id`: whose per-broker dynamic configs apply.
    pub node_id: i32,
    /// `num.recovery.threads.per.data.dir`: threads opening partitions at start-up.
    pub num_recovery_threads: usize,
    /// `log.max.open.segment.files`; `None` means half the process's open-files limit.
    pub max_open_segment_files: Option<usize>,
    /// `log.flush.interval.messages` and `log.flush.interval.ms`.
    pub flush: FlushPolicy,
    /// `producer.id.expiration.ms`: idle producer ids are forgotten after it.
    pub producer_id_expiration_ms: i64,
    /// `remote.log.storage.system.enable`: topics with `remote.storage.enable` are tiered.
    pub remote_log_enabled: bool,
    /// In a cluster (`metadata.etcd.endpoints`) the remote segments' metadata is the
    /// cluster's; the data directory only caches it.
    pub remote_metadata_shared: bool,
    /// The static broker properties as given: the base layer of dynamic broker configs
    /// (KIP-226), from which the topic defaults in force (segment, retention, ...) resolve.
    pub static_properties: BTreeMap<String, String>,
}

impl StorageConfig {
    /// Takes storage's settings out of the broker configuration.
    pub fn from_broker(broker: &BrokerConfig) -> Self {
        StorageConfig {
            log_dir: broker.log_dir.clone(),
            cluster_id: broker.cluster_id.clone(),
            node_id: broker.node_id,
            num_recovery_threads: broker.num_recovery_threads,
            max_open_segment_files: broker.log_max_open_segment_files,
            flush: broker.flush,
            producer_id_expiration_ms: broker.transactions.producer_id_expiration_ms,
            remote_log_enabled: broker.remote.enabled,
            remote_metadata_shared: broker.remote.enabled
                && !broker.cluster.etcd_endpoints.is_empty(),
            static_properties: broker.set_properties.clone(),
        }
    }
}

impl From<&BrokerConfig> for StorageConfig {
    fn from(broker: &BrokerConfig) -> Self {
        StorageConfig::from_broker(broker)
    }
}
