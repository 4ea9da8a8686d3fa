//! Who is on the other end of a connection: the peer, the listener it came through, its
//! client id and its principal. Only authentication changes a session: TLS at accept,
//! SaslHandshake/SaslAuthenticate afterwards; every other handler reads it.

use std::net::SocketAddr;

use crate::acl::{Operation, Resource};
use crate::broker::Broker;
use crate::sasl::SaslSession;

/// A connection's identity, as the handlers see it.
pub(crate) struct Session {
    pub(crate) peer: SocketAddr,
    pub(crate) listener: String,
    /// The client id of the latest request header that carried one.
    pub(crate) client_id: Option<String>,
    /// `User:ANONYMOUS`, the principal of the client's TLS certificate, or the principal
    /// it authenticated as by SASL.
    pub(crate) principal: String,
    /// The SASL exchange of a connection to a SASL listener.
    pub(crate) sasl: Option<SaslSession>,
    /// This connection's number, unique while the broker runs: share sessions end with
    /// the connection that opened them.
    pub(crate) connection: u64,
}

/// Numbers connections.
static NEXT_CONNECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Session {
    /// A session before its first request.
    pub(crate) fn new(
        peer: SocketAddr,
        listener: String,
        principal: String,
        sasl: Option<SaslSession>,
    ) -> Self {
        Session {
            peer,
            listener,
            client_id: None,
            principal,
            sasl,
            connection: NEXT_CONNECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Whether this client may do `op` on the named resource.
    pub(crate) fn may(
        &self,
        broker: &Broker,
        op: Operation,
        resource: Resource,
        name: &str,
    ) -> bool {
        broker
            .authorizer
            .authorize(&self.principal, self.peer.ip(), op, resource, name)
    }

    /// Whether this client may do `op` on the cluster.
    pub(crate) fn may_cluster(&self, broker: &Broker, op: Operation) -> bool {
        self.may(broker, op, Resource::Cluster, crate::acl::CLUSTER_NAME)
    }

    /// The client id for logs: empty when the client sent none.
    pub(crate) fn client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or("")
    }

    /// The user part of the principal (`alice` of `User:alice`), as quotas name it.
    pub(crate) fn user(&self) -> &str {
        self.principal
            .split_once(':')
            .map_or(self.principal.as_str(), |(_, name)| name)
    }
}
