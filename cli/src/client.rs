//! A small Kafka client: bootstrap, then route each request to the broker a real client
//! would send it to (any broker, a partition leader, a group coordinator, the controller).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{FindCoordinatorRequest, GroupId, MetadataRequest, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;

use crate::connection::{Connection, Timeouts};
use crate::error::{is_retriable, CliError};
use crate::metadata::{host_port, Cluster};
use crate::security::Security;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Any broker (the bootstrap connection): Metadata, FindCoordinator.
    Any,
    /// One broker by node id: partition leaders, group coordinators.
    Node(i32),
    /// The controller from Metadata (any broker if the cluster names none).
    Controller,
}

/// Pause between tries of something that is expected to settle (a coordinator loading).
pub(crate) const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Connections to a cluster, opened as requests need them.
pub(crate) struct Client {
    bootstrap: Vec<String>,
    timeouts: Timeouts,
    /// TLS and SASL settings from `--command-config`, for every connection.
    security: Security,
    /// The connection to whichever bootstrap server answered.
    any: Option<Connection>,
    nodes: HashMap<i32, Connection>,
    /// host:port per broker id, from Metadata and FindCoordinator.
    brokers: HashMap<i32, String>,
    controller_id: Option<i32>,
    coordinators: HashMap<String, i32>,
}

impl Client {
    /// Connects to the first bootstrap server (of a comma-separated list) that answers.
    pub(crate) async fn connect(
        bootstrap: &str,
        timeouts: Timeouts,
        security: Security,
    ) -> Result<Client, CliError> {
        let servers: Vec<String> = bootstrap
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() {
            return Err(CliError::Usage(
                "--bootstrap-server needs at least one host:port".to_string(),
            ));
        }
        if let Some(bad) = servers.iter().find(|s| !s.contains(':')) {
            return Err(CliError::Usage(format!(
                "bootstrap server {bad}: expected host:port"
            )));
        }
        let mut client = Client {
            bootstrap: servers,
            timeouts,
            security,
            any: None,
            nodes: HashMap::new(),
            brokers: HashMap::new(),
            controller_id: None,
            coordinators: HashMap::new(),
        };
        client.any_connection().await?;
        Ok(client)
    }

    /// The time limit for one request.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.timeouts.request
    }

    /// Sends the request `build` makes for the negotiated version; returns the version
    /// with the response, for fields that depend on it.
    pub(crate) async fn send<R: Request>(
        &mut self,
        target: Target,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(i16, R::Response), CliError> {
        self.send_waiting(target, Duration::ZERO, build).await
    }

    /// Like [`Client::send`], for requests the broker may hold up to `broker_wait`.
    pub(crate) async fn send_waiting<R: Request>(
        &mut self,
        target: Target,
        broker_wait: Duration,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(i16, R::Response), CliError> {
        let conn = self.connection(target).await?;
        let version = conn.version::<R>()?;
        let req = build(version);
        let result = conn.send_waiting(&req, version, broker_wait).await;
        self.forget_if_broken(target, &result);
        result.map(|r| (version, r))
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub(crate) async fn send_one_way<R: Request>(
        &mut self,
        target: Target,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(), CliError> {
        let conn = self.connection(target).await?;
        let version = conn.version::<R>()?;
        let req = build(version);
        let result = conn.send_one_way(&req, version).await;
        self.forget_if_broken(target, &result);
        result
    }

    /// Metadata for `topics` (every topic when `None`), without creating any.
    pub(crate) async fn metadata(
        &mut self,
        topics: Option<&[String]>,
    ) -> Result<Cluster, CliError> {
        // Straight to the bootstrap connection: routing to a node needs this very answer.
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let conn = self.any_connection().await?;
        let version = conn.version::<MetadataRequest>()?;
        let result = conn.send(&req, version).await;
        self.forget_if_broken(Target::Any, &result);
        let resp = result?;
        if version >= 13 {
            CliError::check(resp.error_code, None, || "Metadata".to_string())?;
        }
        let cluster = Cluster::from_response(resp);
        for (id, addr) in &cluster.brokers {
            self.brokers.insert(*id, addr.clone());
        }
        self.controller_id = Some(cluster.controller_id);
        Ok(cluster)
    }

    /// The node id of `group`'s coordinator (FindCoordinator, retried while the
    /// coordinator is loading or not yet available).
    pub(crate) async fn coordinator(&mut self, group: &str) -> Result<i32, CliError> {
        if let Some(id) = self.coordinators.get(group) {
            return Ok(*id);
        }
        let deadline = Instant::now() + self.timeouts.request;
        loop {
            let (version, resp) = self
                .send(Target::Any, |v| {
                    if v >= 4 {
                        FindCoordinatorRequest::default()
                            .with_coordinator_keys(vec![str_bytes(group)])
                    } else {
                        FindCoordinatorRequest::default().with_key(str_bytes(group))
                    }
                })
                .await?;
            let found = if version >= 4 {
                let c = resp
                    .coordinators
                    .into_iter()
                    .next()
                    .ok_or_else(|| CliError::Protocol {
                        addr: self.bootstrap.join(","),
                        api: "FindCoordinator",
                        reason: "no coordinator in the answer".to_string(),
                    })?;
                (
                    c.error_code,
                    c.error_message,
                    c.node_id.0,
                    host_port(&c.host, c.port),
                )
            } else {
                (
                    resp.error_code,
                    resp.error_message,
                    resp.node_id.0,
                    host_port(&resp.host, resp.port),
                )
            };
            let (code, message, node, addr) = found;
            if code != 0 && is_retriable(code) && Instant::now() < deadline {
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
            CliError::check(code, message.as_ref(), || {
                format!("finding the coordinator of group {group}")
            })?;
            self.brokers.insert(node, addr);
            self.coordinators.insert(group.to_string(), node);
            return Ok(node);
        }
    }

    /// Every broker id the cluster lists.
    pub(crate) async fn broker_ids(&mut self) -> Result<Vec<i32>, CliError> {
        let cluster = self.metadata(Some(&[])).await?;
        Ok(cluster.brokers.keys().copied().collect())
    }

    async fn connection(&mut self, target: Target) -> Result<&mut Connection, CliError> {
        let node = match target {
            Target::Any => return self.any_connection().await,
            Target::Node(id) => id,
            Target::Controller => {
                if self.controller_id.is_none() {
                    self.metadata(Some(&[])).await?;
                }
                match self.controller_id {
                    Some(id) if id >= 0 => id,
                    // No controller named: any broker forwards (KRaft) or answers.
                    _ => return self.any_connection().await,
                }
            }
        };
        if self.nodes.get(&node).is_some_and(|c| !c.usable()) {
            self.nodes.remove(&node);
        }
        if !self.nodes.contains_key(&node) {
            if !self.brokers.contains_key(&node) {
                self.metadata(Some(&[])).await?;
            }
            let addr = self
                .brokers
                .get(&node)
                .cloned()
                .ok_or_else(|| CliError::Kafka {
                    context: format!("broker {node}"),
                    code: kafka_protocol::ResponseError::BrokerNotAvailable.code(),
                    message: Some("the cluster metadata does not list it".to_string()),
                })?;
            let conn = Connection::open(&addr, self.timeouts, &self.security).await?;
            self.nodes.insert(node, conn);
        }
        self.nodes
            .get_mut(&node)
            .ok_or_else(|| CliError::Wait(format!("broker {node} went away")))
    }

    async fn any_connection(&mut self) -> Result<&mut Connection, CliError> {
        if self.any.as_ref().is_some_and(|c| !c.usable()) {
            self.any = None;
        }
        if self.any.is_none() {
            let mut failures = Vec::new();
            for addr in &self.bootstrap {
                match Connection::open(addr, self.timeouts, &self.security).await {
                    Ok(conn) => {
                        self.any = Some(conn);
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(addr = %addr, error = %e, "bootstrap server did not answer");
                        failures.push(e);
                    }
                }
            }
            if self.any.is_none() {
                return Err(match failures.len() {
                    1 => failures.remove(0),
                    _ => CliError::Unreachable {
                        addr: "any bootstrap server".to_string(),
                        reason: failures
                            .iter()
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join("; "),
                    },
                });
            }
        }
        self.any
            .as_mut()
            .ok_or_else(|| CliError::Wait("no bootstrap connection".to_string()))
    }

    /// Drops a connection whose request failed on the wire, so the next request reconnects
    /// instead of reading a stale answer.
    fn forget_if_broken<T>(&mut self, target: Target, result: &Result<T, CliError>) {
        let broken = matches!(
            result,
            Err(CliError::RequestTimeout { .. }
                | CliError::Disconnected { .. }
                | CliError::Protocol { .. })
        );
        if !broken {
            return;
        }
        match target {
            Target::Any => self.any = None,
            Target::Node(id) => {
                self.nodes.remove(&id);
            }
            Target::Controller => {
                if let Some(id) = self.controller_id {
                    self.nodes.remove(&id);
                }
                self.any = None;
            }
        }
    }

    /// Forgets the controller id (after NOT_CONTROLLER), so the next request asks Metadata.
    pub(crate) fn forget_controller(&mut self) {
        self.controller_id = None;
    }

    /// After an error that `moved` says is the coordinator's (see [`coordinator_moved`]):
    /// forgets the cached coordinator of `group`, waits a moment and returns true, so the
    /// request is sent again; false once `deadline` has passed or for any other error.
    pub(crate) async fn retry_coordinator(
        &mut self,
        group: &str,
        moved: bool,
        deadline: Instant,
    ) -> bool {
        if !moved || Instant::now() >= deadline {
            return false;
        }
        self.coordinators.remove(group);
        tokio::time::sleep(RETRY_BACKOFF).await;
        true
    }
}

/// True for the errors that mean "ask FindCoordinator again" or "try again shortly".
pub(crate) fn coordinator_moved(code: i16) -> bool {
    code == ResponseError::NotCoordinator.code()
        || code == ResponseError::CoordinatorNotAvailable.code()
        || code == ResponseError::CoordinatorLoadInProgress.code()
}

/// A `StrBytes` holding `s`.
pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A `TopicName` holding `s`.
pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// A `GroupId` holding `s`.
pub(crate) fn group_id(s: &str) -> GroupId {
    GroupId(str_bytes(s))
}
