//! State shared by every connection: configuration, storage, fetch sessions.

use std::sync::Arc;

use sluice_config::{BrokerConfig, Listener};
use sluice_storage::Storage;

use crate::acl::Authorizer;
use crate::coordinator_log::CoordinatorLog;
use crate::fetch_session::FetchSessionCache;
use crate::group::ports::TopicCatalog;
use crate::group::GroupCoordinator;
use crate::metrics::Metrics;
use crate::quota::QuotaManager;
use crate::replication::ClusterNode;
use crate::scram_store::ScramStore;
use crate::txn::cluster::ClusterMarkers;
use crate::txn::TxnCoordinator;

/// The broker: what every handler reads and changes.
pub struct Broker {
    /// Configuration in force.
    pub(crate) config: BrokerConfig,
    /// The data directory.
    pub(crate) storage: Arc<Storage>,
    /// Incremental fetch sessions (KIP-227).
    pub(crate) fetch_sessions: FetchSessionCache,
    /// Advertised listeners with ephemeral ports resolved to the bound ones.
    pub(crate) advertised: Vec<Listener>,
    /// Consumer groups and committed offsets.
    pub(crate) groups: Arc<GroupCoordinator>,
    /// Transactional ids and their transactions.
    pub(crate) txns: Arc<TxnCoordinator>,
    /// Share groups' records on the partitions this broker leads (KIP-932).
    pub(crate) shares: Arc<crate::share::ShareManager>,
    /// Group configs (resource type GROUP), which share groups read.
    pub(crate) group_configs: Arc<crate::group_configs::GroupConfigs>,
    /// The share coordinator of the `__share_group_state` partitions this broker leads.
    pub(crate) share_coordinator: Arc<crate::share::coordinator::ShareCoordinator>,
    /// The coordinators' partitions of `__consumer_offsets` and `__transaction_state`.
    pub(crate) coordinator_log: Arc<CoordinatorLog>,
    /// In a cluster: where transaction markers are written, for WriteTxnMarkers.
    pub(crate) txn_markers: Option<Arc<ClusterMarkers>>,
    /// SCRAM credentials (the data directory's, or the cluster's).
    pub(crate) scram: Arc<ScramStore>,
    /// ACLs and the decisions made from them.
    pub(crate) authorizer: Arc<Authorizer>,
    /// Client quota configs and measured rates.
    pub(crate) quotas: Arc<QuotaManager>,
    /// Prometheus metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// The cluster this broker is a member of; `None` on a single node.
    pub(crate) cluster: Option<Arc<ClusterNode>>,
    /// Every topic and its partition count: the cluster's in a cluster (this broker may
    /// host no replica of some), else this broker's.
    pub(crate) topics: Arc<dyn TopicCatalog>,
    /// The remote tier (tiered storage); `None` unless `remote.log.storage.system.enable`.
    pub(crate) tier: Option<Arc<crate::tier::Tier>>,
    /// The built-in Schema Registry; `None` unless `schema.registry.listeners` is set.
    pub(crate) schema_registry: Option<Arc<crate::schema_registry::SchemaRegistry>>,
}

impl Broker {
    /// The coordinators whose state is in the internal topics.
    pub(crate) fn coordinators(&self) -> crate::coordinator_loader::Coordinators<'_> {
        crate::coordinator_loader::Coordinators {
            groups: &self.groups,
            txns: &self.txns,
            shares: &self.share_coordinator,
        }
    }

    /// This node's id.
    pub(crate) fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The advertised endpoint of the listener a client connected through.
    pub(crate) fn endpoint_for(&self, listener: &str) -> (&str, i32) {
        let l = self
            .advertised
            .iter()
            .find(|l| l.name == listener)
            .or_else(|| self.advertised.first());
        match l {
            Some(l) => (
                if l.host.is_empty() {
                    "localhost"
                } else {
                    l.host.as_str()
                },
                i32::from(l.port),
            ),
            None => ("localhost", 9092),
        }
    }

    /// The cluster id: the cluster's (from its metadata) or this data directory's.
    pub(crate) fn cluster_id(&self) -> String {
        match &self.cluster {
            Some(c) => c.view.borrow().cluster_id.clone(),
            None => self.storage.cluster_id().to_string(),
        }
    }

    /// A broker's id, host, port and rack on `listener`, for KIP-951 answers: from the
    /// cluster view, or this node's own endpoint on a single node.
    pub(crate) fn node_endpoint(
        &self,
        node_id: i32,
        listener: &str,
    ) -> Option<(i32, String, i32, Option<String>)> {
        match &self.cluster {
            Some(c) => {
                let view = c.view.borrow();
                let b = view.brokers.get(&node_id)?;
                let e = b.endpoints.iter().find(|e| e.listener == listener)?;
                Some((node_id, e.host.clone(), i32::from(e.port), b.rack.clone()))
            }
            None if node_id == self.node_id() => {
                let (host, port) = self.endpoint_for(listener);
                Some((node_id, host.to_string(), port, None))
            }
            None => None,
        }
    }
}
