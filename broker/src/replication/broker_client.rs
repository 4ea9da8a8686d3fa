//! Requests from this broker to another one (transaction markers, transaction
//! verification): one connection per broker on the inter-broker listener, opened on first
//! use and dropped after a failure, one request at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::protocol::Request;
use sluice_cli::{Connection, Security, Timeouts};
use sluice_cluster::ClusterView;
use tokio::sync::watch;

/// Why a request to another broker got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BrokerClientError {
    /// The broker is not in the cluster view, or has no inter-broker endpoint.
    #[error("broker {0} is not reachable on the inter-broker listener")]
    Unknown(i32),
    /// The connection or the request failed.
    #[error("request to broker {node}: {error}")]
    Failed {
        /// The broker.
        node: i32,
        /// What went wrong.
        error: sluice_cli::CliError,
    },
}

type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

/// Connections to the other brokers.
pub(crate) struct BrokerClient {
    /// The inter-broker listener.
    listener: String,
    /// Its TLS and SASL settings, as a client.
    security: Arc<Security>,
    view: watch::Receiver<Arc<ClusterView>>,
    connections: Mutex<HashMap<i32, Slot>>,
}

/// How long a connection to another broker may take to open, and a request to answer.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    request: Duration::from_secs(15),
};

impl BrokerClient {
    /// A client that finds brokers in `view`.
    pub(crate) fn new(
        listener: String,
        security: Arc<Security>,
        view: watch::Receiver<Arc<ClusterView>>,
    ) -> Self {
        BrokerClient {
            listener,
            security,
            view,
            connections: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `request` at `version` to broker `node` and returns its answer.
    pub(crate) async fn send<R: Request>(
        &self,
        node: i32,
        request: &R,
        version: i16,
    ) -> Result<R::Response, BrokerClientError> {
        let slot = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(node)
            .or_default()
            .clone();
        let mut conn = slot.lock().await;
        if conn.as_ref().is_none_or(|c| !c.usable()) {
            let addr = inter_broker_address(&self.view.borrow(), node, &self.listener)
                .ok_or(BrokerClientError::Unknown(node))?;
            let opened = Connection::open(&addr, TIMEOUTS, &self.security)
                .await
                .map_err(|error| BrokerClientError::Failed { node, error })?;
            *conn = Some(opened);
        }
        let Some(c) = conn.as_mut() else {
            return Err(BrokerClientError::Unknown(node));
        };
        match c.send(request, version).await {
            Ok(r) => Ok(r),
            Err(error) => {
                // The stream may be out of step: the next request opens a new one.
                *conn = None;
                Err(BrokerClientError::Failed { node, error })
            }
        }
    }
}

/// A broker's address on the inter-broker listener, from the cluster view.
pub(crate) fn inter_broker_address(
    view: &ClusterView,
    node: i32,
    listener: &str,
) -> Option<String> {
    let broker = view.brokers.get(&node)?;
    let endpoint = broker.endpoints.iter().find(|e| e.listener == listener)?;
    Some(format!("{}:{}", endpoint.host, endpoint.port))
}
