//! The cluster-wide default of the dynamic broker configs (AlterConfigs on the BROKER
//! resource with an empty name, Kafka's `--entity-default`): in a cluster it lives in the
//! cluster metadata (the `broker_defaults` shared set) and every broker applies it from its
//! view. Per-broker dynamic configs stay with their broker, which alone may change them.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_cluster::ClusterView;
use sluice_storage::Storage;
use tokio::sync::watch;

use super::node::{metadata_refusal, Refusal};
use super::ClusterNode;

/// The kind of the cluster's shared set that holds the default broker configs.
const BROKER_DEFAULTS: &str = "broker_defaults";

/// The default broker configs a view holds.
fn defaults_in(view: &ClusterView) -> BTreeMap<String, String> {
    view.entries
        .get(BROKER_DEFAULTS)
        .map(|set| {
            set.iter()
                .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

impl ClusterNode {
    /// Replaces the cluster's default broker configs and waits until this broker's view
    /// has them.
    pub(crate) async fn set_broker_defaults(
        &self,
        configs: BTreeMap<String, String>,
    ) -> Result<(), Refusal> {
        let current = defaults_in(&self.view.borrow());
        let deletes = current
            .keys()
            .filter(|k| !configs.contains_key(*k))
            .cloned()
            .collect();
        let puts = configs
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        if let Err(e) = self
            .meta
            .apply_entries(BROKER_DEFAULTS, puts, deletes)
            .await
        {
            return Err(metadata_refusal(e, "the default broker configs"));
        }
        self.wait_view(
            |v| defaults_in(v) == configs,
            "the default broker configs were changed",
        )
        .await
    }
}

/// Applies the cluster's default broker configs of every new view to `storage` until
/// `stop` (including the first: the cluster's defaults replace a data directory's own).
pub(crate) async fn follow(
    storage: Arc<Storage>,
    view: watch::Receiver<Arc<ClusterView>>,
    stop: watch::Receiver<bool>,
) {
    crate::shared_set::follow(BROKER_DEFAULTS, view, stop, |v| {
        let defaults = defaults_in(v);
        if storage.broker_layers().cluster_default == defaults {
            return;
        }
        match storage.set_dynamic_broker_configs("", defaults) {
            Ok(()) => tracing::info!("applied the cluster's default broker configs"),
            Err(e) => {
                tracing::error!(error = %e, "the cluster's default broker configs cannot be applied here")
            }
        }
    })
    .await;
}
