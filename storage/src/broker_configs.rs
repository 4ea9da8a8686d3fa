//! Dynamic broker configs (KIP-226), kept in the meta column family next to the cluster id,
//! and the configuration in force that they make with the static properties: topic
//! defaults changed here reach every partition without a restart.

use std::collections::BTreeMap;
use std::sync::Arc;

use rocksdb::{Direction, IteratorMode, WriteBatch};
use sluice_config::{BrokerConfig, BrokerLayers, TopicConfig};

use crate::db::{Db, CF_META};
use crate::{Storage, StorageConfig, StorageError, Topic};

/// Key prefix of a dynamic broker config: prefix ‖ entity ‖ 0 ‖ name → value, the entity
/// being "" for the cluster default or a node id.
const PREFIX: &[u8] = b"dynamic.broker.config\0";

/// The layers of broker properties and the configuration they make.
pub(crate) struct DynamicState {
    pub(crate) layers: BrokerLayers,
    pub(crate) effective: Arc<BrokerConfig>,
}

fn key(entity: &str, name: &str) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(entity.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Every stored dynamic config of `entity`.
fn load_entity(db: &Db, entity: &str) -> Result<BTreeMap<String, String>, StorageError> {
    let meta = db.cf(CF_META)?;
    let start = key(entity, "");
    let mut out = BTreeMap::new();
    for item in db
        .db
        .iterator_cf(meta, IteratorMode::From(&start, Direction::Forward))
    {
        let (k, v) = item?;
        let Some(name) = k.strip_prefix(start.as_slice()) else {
            break;
        };
        let bad = || StorageError::Corrupt("dynamic broker config".into());
        out.insert(
            String::from_utf8(name.to_vec()).map_err(|_| bad())?,
            String::from_utf8(v.to_vec()).map_err(|_| bad())?,
        );
    }
    Ok(out)
}

/// The layers stored for this node, and the configuration in force. Stored values the
/// broker can no longer parse are logged and left out of it, as Kafka ignores invalid
/// dynamic configs at start-up.
pub(crate) fn load(db: &Db, config: &StorageConfig) -> Result<DynamicState, StorageError> {
    let layers = BrokerLayers {
        static_props: config.static_properties.clone(),
        cluster_default: load_entity(db, "")?,
        per_broker: load_entity(db, &config.node_id.to_string())?,
    };
    let effective = match layers.effective() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "stored dynamic broker configs are invalid; using the static configuration");
            BrokerLayers {
                static_props: layers.static_props.clone(),
                ..BrokerLayers::default()
            }
            .effective()
            .map_err(|e| StorageError::Corrupt(format!("static broker properties: {e}")))?
        }
    };
    if !layers.cluster_default.is_empty() || !layers.per_broker.is_empty() {
        tracing::info!(cluster_default = ?layers.cluster_default, per_broker = ?layers.per_broker, "dynamic broker configs loaded");
    }
    Ok(DynamicState {
        layers,
        effective: Arc::new(effective),
    })
}

impl Storage {
    /// The broker configuration in force: static properties with the dynamic configs.
    pub fn effective_config(&self) -> Arc<BrokerConfig> {
        self.dynamic
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .effective
            .clone()
    }

    /// Where each broker property in force comes from.
    pub fn broker_layers(&self) -> BrokerLayers {
        self.dynamic
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .layers
            .clone()
    }

    /// Replaces the dynamic configs of `entity` ("" for the cluster default, else this
    /// node's id), validated by the caller: stored durably, then in force for every topic
    /// when this returns.
    pub fn set_dynamic_broker_configs(
        &self,
        entity: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), StorageError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let mut layers = self.broker_layers();
        let old = if entity.is_empty() {
            &mut layers.cluster_default
        } else {
            &mut layers.per_broker
        };
        let meta = self.db.cf(CF_META)?;
        let mut wb = WriteBatch::default();
        for name in old.keys() {
            wb.delete_cf(meta, key(entity, name));
        }
        for (name, value) in &configs {
            wb.put_cf(meta, key(entity, name), value.as_bytes());
        }
        *old = configs;
        let effective = Arc::new(
            layers
                .effective()
                .map_err(|e| StorageError::Corrupt(format!("dynamic broker configs: {e}")))?,
        );
        self.db.write(wb, true)?;
        tracing::info!(entity, cluster_default = ?layers.cluster_default, per_broker = ?layers.per_broker, "altered dynamic broker configs");
        *self.dynamic.write().unwrap_or_else(|p| p.into_inner()) = DynamicState {
            layers,
            effective: effective.clone(),
        };
        for old in self.topics() {
            let config = TopicConfig::resolve(&effective, &old.record.configs);
            for p in &old.partitions {
                p.set_config(config.clone());
            }
            self.insert_topic(Arc::new(Topic {
                record: old.record.clone(),
                config,
                partitions: old.partitions.clone(),
            }));
        }
        Ok(())
    }
}
