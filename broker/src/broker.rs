//! State shared by every connection: configuration, storage, fetch sessions.

use std::sync::Arc;

use sluice_config::{BrokerConfig, Listener};
use sluice_storage::Storage;

use crate::acl::Authorizer;
use crate::fetch_session::FetchSessionCache;
use crate::group::GroupCoordinator;
use crate::metrics::Metrics;
use crate::quota::QuotaManager;
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
    /// ACLs and the decisions made from them.
    pub(crate) authorizer: Authorizer,
    /// Client quota configs and measured rates.
    pub(crate) quotas: QuotaManager,
    /// Prometheus metrics.
    pub(crate) metrics: Arc<Metrics>,
}

impl Broker {
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
}
