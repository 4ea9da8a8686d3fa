//! The one match from API key to handler, the supported-versions table that feeds
//! ApiVersions, and request/response framing around the handlers.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use sluice_protocol::names::{api_name, error_name};
use sluice_protocol::request::{decode_body, decode_header, RequestDecodeError};
use sluice_storage::FileRegion;

use crate::acl::{Operation, Resource};
use crate::api;
use crate::broker::Broker;
use crate::metrics::WaitClock;
use crate::response::Response;

/// Who is asking, through which listener.
pub(crate) struct RequestContext {
    pub(crate) peer: SocketAddr,
    pub(crate) listener: String,
    pub(crate) client_id: Option<String>,
    /// Who the client is: `User:ANONYMOUS`, the principal of its TLS certificate, or the
    /// principal it authenticated as by SASL.
    pub(crate) principal: String,
    /// The SASL session of a connection to a SASL listener.
    pub(crate) sasl: Option<crate::sasl::SaslSession>,
    /// Set by a handler whose answer must be the connection's last: the connection
    /// waits this long, sends the answer and closes.
    pub(crate) close_after: Option<std::time::Duration>,
    /// How long the connection is not read after this answer: the client's quota
    /// throttle (KIP-219).
    pub(crate) throttle: std::time::Duration,
    /// The time the request in hand has spent waiting by design (its remote time).
    pub(crate) waited: WaitClock,
    /// Set when the request in hand is one to count: the connection records its times
    /// once the answer is sent.
    pub(crate) served: Option<ApiKey>,
}

impl RequestContext {
    /// A connection's context before its first request.
    pub(crate) fn new(
        peer: SocketAddr,
        listener: String,
        principal: String,
        sasl: Option<crate::sasl::SaslSession>,
    ) -> Self {
        RequestContext {
            peer,
            listener,
            client_id: None,
            principal,
            sasl,
            close_after: None,
            throttle: std::time::Duration::ZERO,
            waited: WaitClock::default(),
            served: None,
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
}

/// Why a connection is closed instead of answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DispatchError {
    #[error("request too short for a header")]
    Short,
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode {api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

impl DispatchError {
    /// The API the request named, when it named a known one.
    pub(crate) fn api(&self) -> Option<ApiKey> {
        match self {
            DispatchError::UnsupportedVersion { api, .. }
            | DispatchError::Malformed { api, .. }
            | DispatchError::Encode { api, .. } => Some(*api),
            _ => None,
        }
    }
}

/// The APIs and versions this broker implements; ApiVersions answers from this table,
/// and requests outside it are refused.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    // Transactions v1: EndTxn v5, TxnOffsetCommit v5 and Produce v12 mean transactions
    // v2 (KIP-890 part 2) and stay unadvertised, as does `transaction.version`.
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    // v0 is followed by bare SASL tokens; librdkafka needs it in the range.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

/// The supported version range of an API, if it is supported at all.
pub(crate) fn supported_range(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == api)
        .map(|(_, min, max)| (*min, *max))
}

/// An answer that is ready once a Produce's fsyncs are done.
pub(crate) type LaterResponse =
    Pin<Box<dyn Future<Output = Result<Option<Response>, DispatchError>> + Send>>;

/// What handling a request gave.
pub(crate) enum Handled {
    /// The answer to send now; `None` when none is sent (acks=0).
    Now(Option<Response>),
    /// A Produce's answer, waiting for the fsyncs of its flush policy: the connection may
    /// take the next Produce meanwhile and sends the answers in order.
    Later(LaterResponse),
}

impl Handled {
    /// The answer, waiting for it if need be.
    #[cfg(test)]
    pub(crate) async fn response(self) -> Result<Option<Response>, DispatchError> {
        match self {
            Handled::Now(r) => Ok(r),
            Handled::Later(f) => f.await,
        }
    }
}

/// Handles one request frame.
pub(crate) async fn handle(
    broker: &Broker,
    ctx: &mut RequestContext,
    mut frame: Bytes,
) -> Result<Handled, DispatchError> {
    if ctx.sasl.as_ref().is_some_and(|s| s.expects_raw_token()) {
        return Ok(Handled::Now(Some(
            api::sasl::raw_token(broker, ctx, &frame).into(),
        )));
    }
    if frame.len() < 8 {
        return Err(DispatchError::Short);
    }
    let started = std::time::Instant::now();
    let request_bytes = frame.len();
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(raw_key).map_err(|_| DispatchError::UnknownApi(raw_key))?;
    let supported = supported_range(api).is_some_and(|(min, max)| (min..=max).contains(&version));
    if !supported {
        if api == ApiKey::ApiVersions {
            // A client newer than us: answer at v0 with the table, so it can pick a version.
            let response = api::api_versions::unsupported_version_response();
            return encode(api, 0, correlation_id, &ResponseKind::ApiVersions(response))
                .map(|b| Handled::Now(Some(b.into())));
        }
        return Err(DispatchError::UnsupportedVersion { api, version });
    }
    if let Some(session) = &ctx.sasl {
        session.admit(api).map_err(DispatchError::Unauthenticated)?;
    }
    let malformed = |e: RequestDecodeError| DispatchError::Malformed {
        api,
        version,
        reason: e.to_string(),
    };
    let header = decode_header(api, version, &mut frame).map_err(malformed)?;
    if let Some(id) = &header.client_id {
        if ctx.client_id.as_deref() != Some(id.as_str()) {
            ctx.client_id = Some(id.to_string());
        }
    }
    tracing::trace!(peer = %ctx.peer, ?api, version, correlation_id, "request");
    let request = decode_body(api, version, &mut frame).map_err(malformed)?;
    // A Fetch answer's records, left in their segment files until it is written.
    let mut fetch_regions: Vec<Option<FileRegion>> = Vec::new();
    // A Produce answer's fsyncs, still to wait for.
    let mut produce_flushes = None;
    let mut response = match request {
        RequestKind::ApiVersions(r) => Some(ResponseKind::ApiVersions(api::api_versions::handle(
            &r, version,
        ))),
        RequestKind::SaslHandshake(r) => Some(ResponseKind::SaslHandshake(
            api::sasl::sasl_handshake(ctx, r, version),
        )),
        RequestKind::SaslAuthenticate(r) => Some(ResponseKind::SaslAuthenticate(
            api::sasl::sasl_authenticate(broker, ctx, r, version),
        )),
        RequestKind::DescribeUserScramCredentials(r) => Some(
            ResponseKind::DescribeUserScramCredentials(api::scram::describe(broker, ctx, r)),
        ),
        RequestKind::AlterUserScramCredentials(r) => Some(ResponseKind::AlterUserScramCredentials(
            api::scram::alter(broker, ctx, r),
        )),
        RequestKind::CreateAcls(r) => Some(ResponseKind::CreateAcls(api::acls::create_acls(
            broker, ctx, r,
        ))),
        RequestKind::DescribeAcls(r) => Some(ResponseKind::DescribeAcls(api::acls::describe_acls(
            broker, ctx, r,
        ))),
        RequestKind::DeleteAcls(r) => Some(ResponseKind::DeleteAcls(api::acls::delete_acls(
            broker, ctx, r,
        ))),
        RequestKind::DescribeClientQuotas(r) => Some(ResponseKind::DescribeClientQuotas(
            api::quotas::describe(broker, ctx, r),
        )),
        RequestKind::AlterClientQuotas(r) => Some(ResponseKind::AlterClientQuotas(
            api::quotas::alter(broker, ctx, r),
        )),
        RequestKind::Metadata(r) => Some(ResponseKind::Metadata(api::metadata::handle(
            broker, ctx, r, version,
        ))),
        RequestKind::Produce(r) => {
            let (response, flushes) = api::produce::append(broker, ctx, r, version);
            if flushes.is_empty() {
                flushes.ready(response).map(ResponseKind::Produce)
            } else {
                produce_flushes = Some(flushes);
                Some(ResponseKind::Produce(response))
            }
        }
        RequestKind::Fetch(r) => {
            let reply = api::fetch::handle(broker, ctx, r, version).await;
            fetch_regions = reply.regions;
            Some(ResponseKind::Fetch(reply.response))
        }
        RequestKind::ListOffsets(r) => Some(ResponseKind::ListOffsets(api::list_offsets::handle(
            broker, ctx, r, version,
        ))),
        RequestKind::CreateTopics(r) => Some(ResponseKind::CreateTopics(
            api::admin::create_topics(broker, ctx, r, version).await,
        )),
        RequestKind::DeleteTopics(r) => Some(ResponseKind::DeleteTopics(
            api::admin::delete_topics(broker, ctx, r, version).await,
        )),
        RequestKind::DescribeCluster(r) => Some(ResponseKind::DescribeCluster(
            api::admin::describe_cluster(broker, ctx, r, version),
        )),
        RequestKind::InitProducerId(r) => Some(ResponseKind::InitProducerId(
            api::producer_id::init_producer_id(broker, ctx, r, version).await,
        )),
        RequestKind::AddPartitionsToTxn(r) => Some(ResponseKind::AddPartitionsToTxn(
            api::txn::add_partitions_to_txn(broker, ctx, r, version).await,
        )),
        RequestKind::AddOffsetsToTxn(r) => Some(ResponseKind::AddOffsetsToTxn(
            api::txn::add_offsets_to_txn(broker, ctx, r, version).await,
        )),
        RequestKind::EndTxn(r) => Some(ResponseKind::EndTxn(
            api::txn::end_txn(broker, ctx, r, version).await,
        )),
        RequestKind::TxnOffsetCommit(r) => Some(ResponseKind::TxnOffsetCommit(
            api::txn::txn_offset_commit(broker, ctx, r, version).await,
        )),
        RequestKind::DescribeTransactions(r) => Some(ResponseKind::DescribeTransactions(
            api::txn::describe_transactions(broker, ctx, r),
        )),
        RequestKind::ListTransactions(r) => Some(ResponseKind::ListTransactions(
            api::txn::list_transactions(broker, ctx, r, version),
        )),
        RequestKind::DescribeProducers(r) => Some(ResponseKind::DescribeProducers(
            api::txn::describe_producers(broker, ctx, r),
        )),
        RequestKind::WriteTxnMarkers(r) => Some(ResponseKind::WriteTxnMarkers(
            api::txn::write_txn_markers(broker, ctx, r).await,
        )),
        RequestKind::DescribeConfigs(r) => Some(ResponseKind::DescribeConfigs(
            api::configs::describe_configs(broker, ctx, r, version),
        )),
        RequestKind::AlterConfigs(r) => Some(ResponseKind::AlterConfigs(
            api::configs::alter_configs(broker, ctx, r),
        )),
        RequestKind::IncrementalAlterConfigs(r) => Some(ResponseKind::IncrementalAlterConfigs(
            api::configs::incremental_alter_configs(broker, ctx, r),
        )),
        RequestKind::CreatePartitions(r) => Some(ResponseKind::CreatePartitions(
            api::partitions::create_partitions(broker, ctx, r),
        )),
        RequestKind::DeleteRecords(r) => Some(ResponseKind::DeleteRecords(
            api::partitions::delete_records(broker, ctx, r).await,
        )),
        RequestKind::DescribeLogDirs(r) => Some(ResponseKind::DescribeLogDirs(
            api::log_dirs::describe_log_dirs(broker, ctx, r, version),
        )),
        RequestKind::AlterReplicaLogDirs(r) => Some(ResponseKind::AlterReplicaLogDirs(
            api::log_dirs::alter_replica_log_dirs(broker, ctx, r),
        )),
        RequestKind::DescribeQuorum(r) => Some(ResponseKind::DescribeQuorum(
            api::quorum::describe_quorum(broker, ctx, r, version),
        )),
        RequestKind::OffsetForLeaderEpoch(r) => Some(ResponseKind::OffsetForLeaderEpoch(
            api::leadership::offset_for_leader_epoch(broker, ctx, r),
        )),
        RequestKind::ElectLeaders(r) => Some(ResponseKind::ElectLeaders(
            api::leadership::elect_leaders(broker, ctx, r, version),
        )),
        RequestKind::ListPartitionReassignments(r) => {
            Some(ResponseKind::ListPartitionReassignments(
                api::leadership::list_partition_reassignments(broker, ctx, r),
            ))
        }
        RequestKind::DescribeTopicPartitions(r) => Some(ResponseKind::DescribeTopicPartitions(
            api::topic_partitions::handle(broker, ctx, r),
        )),
        RequestKind::AlterPartitionReassignments(r) => {
            Some(ResponseKind::AlterPartitionReassignments(
                api::leadership::alter_partition_reassignments(broker, ctx, r),
            ))
        }
        RequestKind::FindCoordinator(r) => Some(ResponseKind::FindCoordinator(
            api::groups::find_coordinator(broker, ctx, r, version),
        )),
        RequestKind::JoinGroup(r) => Some(ResponseKind::JoinGroup(
            api::groups::join_group(broker, ctx, r, version).await,
        )),
        RequestKind::SyncGroup(r) => Some(ResponseKind::SyncGroup(
            api::groups::sync_group(broker, ctx, r, version).await,
        )),
        RequestKind::Heartbeat(r) => Some(ResponseKind::Heartbeat(api::groups::heartbeat(
            broker, ctx, r,
        ))),
        RequestKind::LeaveGroup(r) => Some(ResponseKind::LeaveGroup(api::groups::leave_group(
            broker, ctx, r, version,
        ))),
        RequestKind::OffsetCommit(r) => Some(ResponseKind::OffsetCommit(
            api::groups::offset_commit(broker, ctx, r, version),
        )),
        RequestKind::OffsetFetch(r) => Some(ResponseKind::OffsetFetch(api::groups::offset_fetch(
            broker, ctx, r, version,
        ))),
        RequestKind::OffsetDelete(r) => Some(ResponseKind::OffsetDelete(
            api::groups::offset_delete(broker, ctx, r),
        )),
        RequestKind::ListGroups(r) => Some(ResponseKind::ListGroups(api::groups::list_groups(
            broker, ctx, r, version,
        ))),
        RequestKind::DescribeGroups(r) => Some(ResponseKind::DescribeGroups(
            api::groups::describe_groups(broker, ctx, r, version),
        )),
        RequestKind::DeleteGroups(r) => Some(ResponseKind::DeleteGroups(
            api::groups::delete_groups(broker, ctx, r),
        )),
        RequestKind::ConsumerGroupHeartbeat(r) => Some(ResponseKind::ConsumerGroupHeartbeat(
            api::groups::consumer_group_heartbeat(broker, ctx, r, version),
        )),
        RequestKind::ConsumerGroupDescribe(r) => Some(ResponseKind::ConsumerGroupDescribe(
            api::groups::consumer_group_describe(broker, ctx, r),
        )),
        // The table above admits only the APIs matched here.
        _ => return Err(DispatchError::UnsupportedVersion { api, version }),
    };
    let throttle = quota_throttle(
        broker,
        ctx,
        api,
        request_bytes,
        &response,
        &fetch_regions,
        started,
    );
    record_metrics(broker, api, &response, &fetch_regions);
    ctx.served = Some(api);
    if !throttle.is_zero() {
        let ms = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
        match &mut response {
            Some(ResponseKind::Produce(r)) if version >= 1 => r.throttle_time_ms = ms,
            Some(ResponseKind::Fetch(r)) if version >= 1 => r.throttle_time_ms = ms,
            _ => {}
        }
        ctx.throttle = ctx.throttle.max(throttle);
    }
    match (response, produce_flushes) {
        (Some(ResponseKind::Produce(r)), Some(flushes)) => {
            Ok(Handled::Later(Box::pin(async move {
                match flushes.finish(r).await {
                    Some(r) => encode(api, version, correlation_id, &ResponseKind::Produce(r))
                        .map(|b| Some(b.into())),
                    None => Ok(None),
                }
            })))
        }
        (Some(ResponseKind::Fetch(r)), _) => {
            api::fetch::encode(&r, &fetch_regions, version, correlation_id)
                .map(|r| Handled::Now(Some(r)))
                .map_err(|e| DispatchError::Encode {
                    api,
                    version,
                    reason: e.to_string(),
                })
        }
        (Some(r), _) => {
            encode(api, version, correlation_id, &r).map(|b| Handled::Now(Some(b.into())))
        }
        (None, _) => Ok(Handled::Now(None)),
    }
}

/// Counts the error codes in an answer and, for Fetch, the bytes sent per topic; the
/// request itself and its times are counted once the answer is sent.
fn record_metrics(
    broker: &Broker,
    api: ApiKey,
    response: &Option<ResponseKind>,
    fetch_regions: &[Option<FileRegion>],
) {
    let m = &broker.metrics;
    // Errors are counted as they are met: no list is built for the usual all-zero answer.
    let note = |code: i16| {
        if code != 0 {
            m.error(api_name(api), &error_name(code));
        }
    };
    match response {
        Some(ResponseKind::Produce(r)) => r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .for_each(|p| note(p.error_code)),
        Some(ResponseKind::Fetch(r)) => {
            note(r.error_code);
            for (t, bytes) in api::fetch::bytes_per_topic(r, fetch_regions) {
                if bytes > 0 {
                    // Fetch v13+ names topics by id only.
                    let topic = if t.topic.is_empty() {
                        std::borrow::Cow::Owned(
                            broker
                                .storage
                                .topic_by_id(t.topic_id)
                                .map(|x| x.record.name.clone())
                                .unwrap_or_default(),
                        )
                    } else {
                        std::borrow::Cow::Borrowed(&**t.topic)
                    };
                    m.fetched(&topic, bytes);
                }
                t.partitions.iter().for_each(|p| note(p.error_code));
            }
        }
        Some(ResponseKind::Metadata(r)) => r.topics.iter().for_each(|t| note(t.error_code)),
        Some(ResponseKind::ListOffsets(r)) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| note(p.error_code)),
        Some(ResponseKind::JoinGroup(r)) => note(r.error_code),
        Some(ResponseKind::SyncGroup(r)) => note(r.error_code),
        Some(ResponseKind::Heartbeat(r)) => note(r.error_code),
        Some(ResponseKind::OffsetCommit(r)) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| note(p.error_code)),
        Some(ResponseKind::InitProducerId(r)) => note(r.error_code),
        Some(ResponseKind::EndTxn(r)) => note(r.error_code),
        Some(ResponseKind::SaslAuthenticate(r)) => note(r.error_code),
        Some(ResponseKind::CreateTopics(r)) => r.topics.iter().for_each(|t| note(t.error_code)),
        Some(ResponseKind::DeleteTopics(r)) => r.responses.iter().for_each(|t| note(t.error_code)),
        _ => {}
    }
}

/// Records a request against the client's quotas; the longest throttle it earned.
fn quota_throttle(
    broker: &Broker,
    ctx: &RequestContext,
    api: ApiKey,
    request_bytes: usize,
    response: &Option<ResponseKind>,
    fetch_regions: &[Option<FileRegion>],
    started: std::time::Instant,
) -> std::time::Duration {
    use crate::quota::QuotaKind;
    if matches!(
        api,
        ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
    ) {
        return std::time::Duration::ZERO;
    }
    let user = ctx
        .principal
        .split_once(':')
        .map_or(ctx.principal.as_str(), |(_, name)| name);
    let client = ctx.client_id.as_deref().unwrap_or("");
    let q = &broker.quotas;
    let mut throttle = std::time::Duration::ZERO;
    match (api, response) {
        (ApiKey::Produce, _) => {
            throttle = q.record(user, client, QuotaKind::Produce, request_bytes as f64)
        }
        (ApiKey::Fetch, Some(ResponseKind::Fetch(r))) => {
            let bytes: usize = api::fetch::bytes_per_topic(r, fetch_regions)
                .map(|(_, b)| b)
                .sum();
            throttle = q.record(user, client, QuotaKind::Fetch, bytes as f64);
        }
        _ => {}
    }
    // Handling time, for request_percentage; requests that wait by design (long-poll
    // fetches, rebalances) are left out, as Kafka counts thread time, not waiting.
    if !matches!(api, ApiKey::Fetch | ApiKey::JoinGroup | ApiKey::SyncGroup) {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        throttle = throttle.max(q.record(user, client, QuotaKind::Request, ms));
    }
    throttle
}

fn encode(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<Bytes, DispatchError> {
    let err = |e: anyhow::Error| DispatchError::Encode {
        api,
        version,
        reason: e.to_string(),
    };
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header
        .encode(&mut buf, api.response_header_version(version))
        .map_err(err)?;
    response.encode(&mut buf, version).map_err(err)?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    //! Every supported API at every supported version answers a typical request with a
    //! response that encodes: a field set outside its version would fail here.

    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Decodable;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn batch() -> Bytes {
        let records = [Record {
            transactional: false,
            delete_horizon: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        }];
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode batch");
        buf.freeze()
    }

    fn request(api: ApiKey, version: i16, topic_id: uuid::Uuid) -> RequestKind {
        let name = |s: &str| TopicName(StrBytes::from_string(s.to_string()));
        match api {
            ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
            ApiKey::Metadata => {
                let mut t = MetadataRequestTopic::default();
                t.name = Some(name("t"));
                let mut r = MetadataRequest::default();
                r.topics = Some(vec![t]);
                RequestKind::Metadata(r)
            }
            ApiKey::Produce => {
                let mut p = PartitionProduceData::default();
                p.records = Some(batch());
                let mut t = TopicProduceData::default();
                t.name = name("t");
                t.partition_data = vec![p];
                let mut r = ProduceRequest::default();
                r.acks = 1;
                r.timeout_ms = 1000;
                r.topic_data = vec![t];
                RequestKind::Produce(r)
            }
            ApiKey::Fetch => {
                let mut p = FetchPartition::default();
                p.partition_max_bytes = 1 << 20;
                let mut t = FetchTopic::default();
                if version >= 13 {
                    t.topic_id = topic_id;
                } else {
                    t.topic = name("t");
                }
                t.partitions = vec![p];
                let mut r = FetchRequest::default();
                r.max_bytes = 1 << 20;
                r.topics = vec![t];
                RequestKind::Fetch(r)
            }
            ApiKey::ListOffsets => {
                let mut p = ListOffsetsPartition::default();
                p.timestamp = -2;
                let mut t = ListOffsetsTopic::default();
                t.name = name("t");
                t.partitions = vec![p];
                let mut r = ListOffsetsRequest::default();
                r.topics = vec![t];
                RequestKind::ListOffsets(r)
            }
            ApiKey::CreateTopics => {
                let mut t = CreatableTopic::default();
                t.name = name(&format!("c{version}"));
                t.num_partitions = 2;
                t.replication_factor = 1;
                let mut r = CreateTopicsRequest::default();
                r.topics = vec![t];
                RequestKind::CreateTopics(r)
            }
            ApiKey::DeleteTopics => {
                let mut r = DeleteTopicsRequest::default();
                if version >= 6 {
                    let mut t = DeleteTopicState::default();
                    t.name = Some(name("missing"));
                    r.topics = vec![t];
                } else {
                    r.topic_names = vec![name("missing")];
                }
                RequestKind::DeleteTopics(r)
            }
            ApiKey::InitProducerId => {
                let mut r = InitProducerIdRequest::default();
                r.transactional_id = None;
                r.transaction_timeout_ms = 60_000;
                RequestKind::InitProducerId(r)
            }
            ApiKey::DescribeCluster => {
                RequestKind::DescribeCluster(DescribeClusterRequest::default())
            }
            ApiKey::FindCoordinator => {
                let mut r = FindCoordinatorRequest::default();
                if version >= 4 {
                    r.coordinator_keys = vec![StrBytes::from_static_str("g")];
                } else {
                    r.key = StrBytes::from_static_str("g");
                }
                RequestKind::FindCoordinator(r)
            }
            ApiKey::JoinGroup => {
                let mut p = join_group_request::JoinGroupRequestProtocol::default();
                p.name = StrBytes::from_static_str("range");
                p.metadata = Bytes::from_static(b"\x00\xffmeta");
                let mut r = JoinGroupRequest::default();
                r.group_id = GroupId(StrBytes::from_string(format!("join{version}")));
                r.session_timeout_ms = 10_000;
                r.rebalance_timeout_ms = 10_000;
                r.protocol_type = StrBytes::from_static_str("consumer");
                r.protocols = vec![p];
                RequestKind::JoinGroup(r)
            }
            ApiKey::SyncGroup => {
                let mut r = SyncGroupRequest::default();
                r.group_id = GroupId(StrBytes::from_static_str("missing"));
                r.member_id = StrBytes::from_static_str("m");
                RequestKind::SyncGroup(r)
            }
            ApiKey::Heartbeat => {
                let mut r = HeartbeatRequest::default();
                r.group_id = GroupId(StrBytes::from_static_str("missing"));
                r.member_id = StrBytes::from_static_str("m");
                RequestKind::Heartbeat(r)
            }
            ApiKey::LeaveGroup => {
                let mut r = LeaveGroupRequest::default();
                r.group_id = GroupId(StrBytes::from_static_str("missing"));
                if version >= 3 {
                    let mut m = leave_group_request::MemberIdentity::default();
                    m.member_id = StrBytes::from_static_str("m");
                    r.members = vec![m];
                } else {
                    r.member_id = StrBytes::from_static_str("m");
                }
                RequestKind::LeaveGroup(r)
            }
            ApiKey::OffsetCommit => {
                let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
                p.committed_offset = 5;
                p.committed_metadata = Some(StrBytes::from_static_str("meta"));
                let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
                t.name = name("t");
                t.partitions = vec![p];
                let mut r = OffsetCommitRequest::default();
                r.group_id = GroupId(StrBytes::from_static_str("offsets"));
                r.generation_id_or_member_epoch = -1;
                r.topics = vec![t];
                RequestKind::OffsetCommit(r)
            }
            ApiKey::OffsetFetch => {
                let mut r = OffsetFetchRequest::default();
                if version >= 8 {
                    let mut t = offset_fetch_request::OffsetFetchRequestTopics::default();
                    t.name = name("t");
                    t.partition_indexes = vec![0];
                    let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
                    g.group_id = GroupId(StrBytes::from_static_str("offsets"));
                    g.topics = Some(vec![t]);
                    r.groups = vec![g];
                } else {
                    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
                    t.name = name("t");
                    t.partition_indexes = vec![0];
                    r.group_id = GroupId(StrBytes::from_static_str("offsets"));
                    r.topics = Some(vec![t]);
                }
                RequestKind::OffsetFetch(r)
            }
            ApiKey::OffsetDelete => {
                let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
                p.partition_index = 0;
                let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
                t.name = name("t");
                t.partitions = vec![p];
                let mut r = OffsetDeleteRequest::default();
                r.group_id = GroupId(StrBytes::from_static_str("missing"));
                r.topics = vec![t];
                RequestKind::OffsetDelete(r)
            }
            ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
            ApiKey::DescribeGroups => {
                let mut r = DescribeGroupsRequest::default();
                r.groups = vec![GroupId(StrBytes::from_static_str("offsets"))];
                RequestKind::DescribeGroups(r)
            }
            ApiKey::DeleteGroups => {
                let mut r = DeleteGroupsRequest::default();
                r.groups_names = vec![GroupId(StrBytes::from_static_str("missing"))];
                RequestKind::DeleteGroups(r)
            }
            ApiKey::ConsumerGroupHeartbeat => {
                let mut r = ConsumerGroupHeartbeatRequest::default();
                r.group_id = GroupId(StrBytes::from_string(format!("cg{version}")));
                if version >= 1 {
                    r.member_id = StrBytes::from_static_str("member-1");
                }
                r.member_epoch = 0;
                r.rebalance_timeout_ms = 10_000;
                r.subscribed_topic_names = Some(vec![name("t")]);
                r.topic_partitions = Some(vec![]);
                RequestKind::ConsumerGroupHeartbeat(r)
            }
            ApiKey::ConsumerGroupDescribe => {
                let mut r = ConsumerGroupDescribeRequest::default();
                r.group_ids = vec![GroupId(StrBytes::from_static_str("cg1"))];
                RequestKind::ConsumerGroupDescribe(r)
            }
            ApiKey::AddPartitionsToTxn => {
                let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
                t.name = name("t");
                t.partitions = vec![0];
                let mut r = AddPartitionsToTxnRequest::default();
                if version >= 4 {
                    let mut x =
                        add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default();
                    x.transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
                    x.producer_id = ProducerId(77);
                    x.topics = vec![t];
                    r.transactions = vec![x];
                } else {
                    r.v3_and_below_transactional_id =
                        TransactionalId(StrBytes::from_static_str("tx"));
                    r.v3_and_below_producer_id = ProducerId(77);
                    r.v3_and_below_topics = vec![t];
                }
                RequestKind::AddPartitionsToTxn(r)
            }
            ApiKey::AddOffsetsToTxn => {
                let mut r = AddOffsetsToTxnRequest::default();
                r.transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
                r.producer_id = ProducerId(77);
                r.group_id = GroupId(StrBytes::from_static_str("g"));
                RequestKind::AddOffsetsToTxn(r)
            }
            ApiKey::EndTxn => {
                let mut r = EndTxnRequest::default();
                r.transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
                r.producer_id = ProducerId(77);
                r.committed = true;
                RequestKind::EndTxn(r)
            }
            ApiKey::TxnOffsetCommit => {
                let mut p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
                p.committed_offset = 3;
                let mut t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
                t.name = name("t");
                t.partitions = vec![p];
                let mut r = TxnOffsetCommitRequest::default();
                r.transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
                r.group_id = GroupId(StrBytes::from_static_str("g"));
                r.producer_id = ProducerId(77);
                r.generation_id = -1;
                r.topics = vec![t];
                RequestKind::TxnOffsetCommit(r)
            }
            ApiKey::DescribeTransactions => {
                let mut r = DescribeTransactionsRequest::default();
                r.transactional_ids = vec![TransactionalId(StrBytes::from_static_str("tx"))];
                RequestKind::DescribeTransactions(r)
            }
            ApiKey::ListTransactions => {
                RequestKind::ListTransactions(ListTransactionsRequest::default())
            }
            ApiKey::DescribeProducers => {
                let mut t = describe_producers_request::TopicRequest::default();
                t.name = name("t");
                t.partition_indexes = vec![0];
                let mut r = DescribeProducersRequest::default();
                r.topics = vec![t];
                RequestKind::DescribeProducers(r)
            }
            ApiKey::WriteTxnMarkers => {
                let mut t = write_txn_markers_request::WritableTxnMarkerTopic::default();
                t.name = name("t");
                t.partition_indexes = vec![0, 9];
                let mut m = write_txn_markers_request::WritableTxnMarker::default();
                m.producer_id = ProducerId(77);
                m.transaction_result = false;
                m.topics = vec![t];
                let mut r = WriteTxnMarkersRequest::default();
                r.markers = vec![m];
                RequestKind::WriteTxnMarkers(r)
            }
            ApiKey::DescribeConfigs => {
                let mut t = describe_configs_request::DescribeConfigsResource::default();
                t.resource_type = 2;
                t.resource_name = StrBytes::from_static_str("t");
                t.configuration_keys = Some(vec![StrBytes::from_static_str("retention.ms")]);
                let mut r = DescribeConfigsRequest::default();
                r.resources = vec![t];
                r.include_synonyms = true;
                r.include_documentation = version >= 3;
                RequestKind::DescribeConfigs(r)
            }
            ApiKey::AlterConfigs => {
                let mut c = alter_configs_request::AlterableConfig::default();
                c.name = StrBytes::from_static_str("retention.ms");
                c.value = Some(StrBytes::from_static_str("forever"));
                let mut t = alter_configs_request::AlterConfigsResource::default();
                t.resource_type = 2;
                t.resource_name = StrBytes::from_static_str("t");
                t.configs = vec![c];
                let mut r = AlterConfigsRequest::default();
                r.resources = vec![t];
                RequestKind::AlterConfigs(r)
            }
            ApiKey::IncrementalAlterConfigs => {
                let mut c = incremental_alter_configs_request::AlterableConfig::default();
                c.name = StrBytes::from_static_str("retention.ms");
                c.config_operation = 0;
                c.value = Some(StrBytes::from_static_str("60000"));
                let mut t = incremental_alter_configs_request::AlterConfigsResource::default();
                t.resource_type = 2;
                t.resource_name = StrBytes::from_static_str("t");
                t.configs = vec![c];
                let mut r = IncrementalAlterConfigsRequest::default();
                r.resources = vec![t];
                r.validate_only = true;
                RequestKind::IncrementalAlterConfigs(r)
            }
            ApiKey::CreatePartitions => {
                let mut t = create_partitions_request::CreatePartitionsTopic::default();
                t.name = name("t");
                t.count = 1;
                let mut r = CreatePartitionsRequest::default();
                r.topics = vec![t];
                RequestKind::CreatePartitions(r)
            }
            ApiKey::DeleteRecords => {
                let mut p = delete_records_request::DeleteRecordsPartition::default();
                p.partition_index = 0;
                p.offset = 0;
                let mut t = delete_records_request::DeleteRecordsTopic::default();
                t.name = name("t");
                t.partitions = vec![p];
                let mut r = DeleteRecordsRequest::default();
                r.topics = vec![t];
                RequestKind::DeleteRecords(r)
            }
            ApiKey::DescribeLogDirs => {
                let mut r = DescribeLogDirsRequest::default();
                r.topics = None;
                RequestKind::DescribeLogDirs(r)
            }
            ApiKey::AlterReplicaLogDirs => {
                let mut t = alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default();
                t.name = TopicName(StrBytes::from_static_str("t"));
                t.partitions = vec![0];
                let mut d = alter_replica_log_dirs_request::AlterReplicaLogDir::default();
                d.path = StrBytes::from_static_str("/nowhere");
                d.topics = vec![t];
                let mut r = AlterReplicaLogDirsRequest::default();
                r.dirs = vec![d];
                RequestKind::AlterReplicaLogDirs(r)
            }
            ApiKey::DescribeQuorum => {
                let mut p = describe_quorum_request::PartitionData::default();
                p.partition_index = 0;
                let mut t = describe_quorum_request::TopicData::default();
                t.topic_name = TopicName(StrBytes::from_static_str("__cluster_metadata"));
                t.partitions = vec![p];
                let mut r = DescribeQuorumRequest::default();
                r.topics = vec![t];
                RequestKind::DescribeQuorum(r)
            }
            ApiKey::OffsetForLeaderEpoch => {
                let p = |partition, current, epoch| {
                    let mut x =
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
                    x.partition = partition;
                    x.current_leader_epoch = current;
                    x.leader_epoch = epoch;
                    x
                };
                let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
                t.topic = name("t");
                t.partitions = vec![p(0, 0, 0), p(0, -1, 3), p(0, 1, 0), p(5, -1, 0)];
                let mut r = OffsetForLeaderEpochRequest::default();
                r.replica_id = BrokerId(-1);
                r.topics = vec![t];
                RequestKind::OffsetForLeaderEpoch(r)
            }
            ApiKey::ElectLeaders => {
                let mut t = elect_leaders_request::TopicPartitions::default();
                t.topic = name("t");
                t.partitions = vec![0, 7];
                let mut r = ElectLeadersRequest::default();
                r.topic_partitions = Some(vec![t]);
                RequestKind::ElectLeaders(r)
            }
            ApiKey::ListPartitionReassignments => {
                RequestKind::ListPartitionReassignments(ListPartitionReassignmentsRequest::default())
            }
            ApiKey::AlterPartitionReassignments => {
                let p = |index, replicas: Option<Vec<i32>>| {
                    let mut x =
                        alter_partition_reassignments_request::ReassignablePartition::default();
                    x.partition_index = index;
                    x.replicas = replicas.map(|r| r.into_iter().map(BrokerId).collect());
                    x
                };
                let mut t = alter_partition_reassignments_request::ReassignableTopic::default();
                t.name = name("t");
                t.partitions = vec![p(0, Some(vec![1])), p(0, Some(vec![1, 2])), p(0, None)];
                let mut r = AlterPartitionReassignmentsRequest::default();
                r.topics = vec![t];
                RequestKind::AlterPartitionReassignments(r)
            }
            ApiKey::DescribeTopicPartitions => {
                let t = |n: &str| {
                    let mut x = describe_topic_partitions_request::TopicRequest::default();
                    x.name = name(n);
                    x
                };
                let mut r = DescribeTopicPartitionsRequest::default();
                r.topics = vec![t("t"), t("zz-missing")];
                r.response_partition_limit = 10;
                RequestKind::DescribeTopicPartitions(r)
            }
            ApiKey::SaslHandshake => {
                let mut r = SaslHandshakeRequest::default();
                r.mechanism = StrBytes::from_static_str("PLAIN");
                RequestKind::SaslHandshake(r)
            }
            ApiKey::SaslAuthenticate => {
                RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default())
            }
            ApiKey::DescribeUserScramCredentials => RequestKind::DescribeUserScramCredentials(
                DescribeUserScramCredentialsRequest::default(),
            ),
            ApiKey::AlterUserScramCredentials => {
                let mut u =
                    alter_user_scram_credentials_request::ScramCredentialUpsertion::default();
                u.name = StrBytes::from_static_str("alice");
                u.mechanism = 1;
                u.iterations = 4096;
                u.salt = Bytes::from_static(b"salt");
                u.salted_password = Bytes::from_static(&[7; 32]);
                let mut r = AlterUserScramCredentialsRequest::default();
                r.upsertions = vec![u];
                RequestKind::AlterUserScramCredentials(r)
            }
            ApiKey::DescribeAcls => {
                let mut r = DescribeAclsRequest::default();
                r.resource_type_filter = 1;
                r.pattern_type_filter = 1;
                r.operation = 1;
                r.permission_type = 1;
                RequestKind::DescribeAcls(r)
            }
            ApiKey::CreateAcls => {
                let mut c = create_acls_request::AclCreation::default();
                c.resource_type = 2;
                c.resource_name = StrBytes::from_static_str("t");
                c.resource_pattern_type = 3;
                c.principal = StrBytes::from_static_str("User:alice");
                c.host = StrBytes::from_static_str("*");
                c.operation = 3;
                c.permission_type = 3;
                let mut r = CreateAclsRequest::default();
                r.creations = vec![c];
                RequestKind::CreateAcls(r)
            }
            ApiKey::DeleteAcls => {
                let mut f = delete_acls_request::DeleteAclsFilter::default();
                f.resource_type_filter = 2;
                f.pattern_type_filter = 3;
                f.operation = 1;
                f.permission_type = 1;
                let mut r = DeleteAclsRequest::default();
                r.filters = vec![f];
                RequestKind::DeleteAcls(r)
            }
            ApiKey::DescribeClientQuotas => {
                RequestKind::DescribeClientQuotas(DescribeClientQuotasRequest::default())
            }
            ApiKey::AlterClientQuotas => {
                let mut e = alter_client_quotas_request::EntityData::default();
                e.entity_type = StrBytes::from_static_str("user");
                e.entity_name = Some(StrBytes::from_static_str("alice"));
                let mut op = alter_client_quotas_request::OpData::default();
                op.key = StrBytes::from_static_str("producer_byte_rate");
                op.value = 1e9;
                let mut entry = alter_client_quotas_request::EntryData::default();
                entry.entity = vec![e];
                entry.ops = vec![op];
                let mut r = AlterClientQuotasRequest::default();
                r.entries = vec![entry];
                RequestKind::AlterClientQuotas(r)
            }
            other => panic!("no sample request for {other:?}"),
        }
    }

    fn frame(api: ApiKey, version: i16, body: &RequestKind) -> Bytes {
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = 7;
        header.client_id = Some(StrBytes::from_static_str("versions-test"));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api.request_header_version(version))
            .expect("header");
        body.encode(&mut buf, version).expect("body");
        buf.freeze()
    }

    /// The fields of a decoded response that hold `Some("")`, except those Kafka does fill
    /// with an empty string (config values of an empty list, offset metadata, a JoinGroup
    /// protocol name before v7) and fields the version does not have, which decode as "".
    fn empty_nullable_strings(api: ApiKey, version: i16, debug: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = debug;
        while let Some(at) = rest.find(": Some(\"\")") {
            let field = rest[..at]
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default();
            let allowed = matches!(field, "value" | "metadata")
                || (field == "protocol_name" && api == ApiKey::JoinGroup && version < 7)
                || (field == "error_message"
                    && api == ApiKey::FindCoordinator
                    && !(1..4).contains(&version))
                || (field == "documentation" && api == ApiKey::DescribeConfigs && version < 3)
                // Kafka's DescribeQuorum leaves its generated default, "", in place.
                || (field == "error_message" && api == ApiKey::DescribeQuorum);
            if !allowed {
                found.push(field.to_string());
            }
            rest = &rest[at + 1..];
        }
        found
    }

    #[tokio::test]
    async fn every_supported_version_answers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_dir = dir.path().to_string_lossy().into_owned();
        let config = sluice_config::BrokerConfig::from_properties([
            ("listeners", "PLAINTEXT://127.0.0.1:0"),
            ("log.dirs", log_dir.as_str()),
            ("group.initial.rebalance.delay.ms", "0"),
        ])
        .expect("config");
        let (broker, _listeners) = crate::server::bind(
            config,
            std::sync::Arc::new(crate::metrics::Metrics::new().expect("metrics")),
        )
        .await
        .expect("bind");
        let topic = broker
            .storage
            .create_topic("t", 1, Default::default())
            .expect("create");
        let mut ctx = RequestContext::new(
            "127.0.0.1:1".parse().expect("addr"),
            "PLAINTEXT".into(),
            "User:ANONYMOUS".into(),
            None,
        );
        for (api, min, max) in SUPPORTED {
            for version in *min..=*max {
                let req = request(*api, version, topic.record.id);
                let out = handle(&broker, &mut ctx, frame(*api, version, &req))
                    .await
                    .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"))
                    .response()
                    .await
                    .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"))
                    .unwrap_or_else(|| panic!("{api:?} v{version}: no response"));
                let mut body = out.to_bytes().expect("readable").slice(4..);
                let header =
                    ResponseHeader::decode(&mut body, api.response_header_version(version))
                        .unwrap_or_else(|e| panic!("{api:?} v{version} header: {e}"));
                assert_eq!(header.correlation_id, 7);
                let response = ResponseKind::decode(*api, &mut body, version)
                    .unwrap_or_else(|e| panic!("{api:?} v{version} body: {e}"));
                assert_eq!(body.remaining(), 0, "{api:?} v{version}: trailing bytes");
                let empty = empty_nullable_strings(*api, version, &format!("{response:?}"));
                assert!(
                    empty.is_empty(),
                    "{api:?} v{version}: \"\" where Kafka sends null: {empty:?}"
                );
                match response {
                    ResponseKind::Produce(r) => {
                        assert_eq!(
                            r.responses[0].partition_responses[0].error_code, 0,
                            "produce v{version}"
                        )
                    }
                    ResponseKind::Fetch(r) => {
                        assert_eq!(r.error_code, 0);
                        assert_eq!(
                            r.responses[0].partitions[0].error_code, 0,
                            "fetch v{version}"
                        );
                        assert!(!r.responses[0].partitions[0]
                            .records
                            .as_ref()
                            .expect("records")
                            .is_empty());
                    }
                    ResponseKind::CreateTopics(r) => {
                        assert_eq!(r.topics[0].error_code, 0, "create v{version}")
                    }
                    ResponseKind::DeleteTopics(r) => {
                        assert_eq!(r.responses[0].error_code, 3, "delete v{version}")
                    }
                    ResponseKind::ListOffsets(r) => {
                        assert_eq!(r.topics[0].partitions[0].error_code, 0);
                        assert_eq!(r.topics[0].partitions[0].offset, 0);
                    }
                    ResponseKind::Metadata(r) => assert_eq!(r.topics[0].error_code, 0),
                    ResponseKind::ApiVersions(r) => assert_eq!(r.error_code, 0),
                    ResponseKind::InitProducerId(r) => assert_eq!(r.error_code, 0),
                    ResponseKind::DescribeCluster(r) => assert_eq!(r.error_code, 0),
                    ResponseKind::FindCoordinator(r) if version >= 4 => {
                        assert_eq!(r.coordinators[0].error_code, 0);
                        assert_eq!(r.coordinators[0].node_id.0, 1);
                    }
                    ResponseKind::FindCoordinator(r) => {
                        assert_eq!((r.error_code, r.node_id.0), (0, 1))
                    }
                    ResponseKind::JoinGroup(r) if version >= 4 => {
                        // KIP-394: a dynamic member first gets its id.
                        assert_eq!(r.error_code, 79, "join v{version}");
                        assert!(!r.member_id.is_empty());
                    }
                    ResponseKind::JoinGroup(r) => {
                        // Sole member, no initial delay: leader of generation 1.
                        assert_eq!(r.error_code, 0, "join v{version}");
                        assert_eq!(r.generation_id, 1);
                        assert_eq!(r.leader, r.member_id);
                        assert_eq!(r.members.len(), 1);
                        assert_eq!(&r.members[0].metadata[..], b"\x00\xffmeta");
                    }
                    ResponseKind::SyncGroup(r) => assert_eq!(r.error_code, 25),
                    ResponseKind::Heartbeat(r) => assert_eq!(r.error_code, 25),
                    ResponseKind::LeaveGroup(r) if version >= 3 => {
                        assert_eq!(r.members[0].error_code, 25)
                    }
                    ResponseKind::LeaveGroup(r) => assert_eq!(r.error_code, 25),
                    ResponseKind::OffsetCommit(r) => {
                        assert_eq!(r.topics[0].partitions[0].error_code, 0)
                    }
                    ResponseKind::OffsetFetch(r) if version >= 8 => {
                        let p = &r.groups[0].topics[0].partitions[0];
                        assert_eq!((p.error_code, p.committed_offset), (0, 5));
                        assert_eq!(p.metadata.as_deref(), Some("meta"));
                    }
                    ResponseKind::OffsetFetch(r) => {
                        let p = &r.topics[0].partitions[0];
                        assert_eq!((p.error_code, p.committed_offset), (0, 5));
                    }
                    ResponseKind::OffsetDelete(r) => assert_eq!(r.error_code, 69),
                    ResponseKind::ListGroups(r) => assert_eq!(r.error_code, 0),
                    ResponseKind::DescribeGroups(r) => {
                        assert_eq!(r.groups[0].error_code, 0);
                        assert_eq!(r.groups[0].group_state.as_str(), "Empty");
                    }
                    ResponseKind::DeleteGroups(r) => assert_eq!(r.results[0].error_code, 69),
                    ResponseKind::ConsumerGroupHeartbeat(r) => {
                        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
                        assert_eq!(r.member_epoch, 1);
                        let a = r.assignment.expect("assignment");
                        assert_eq!(a.topic_partitions[0].topic_id, topic.record.id);
                        assert_eq!(a.topic_partitions[0].partitions, vec![0]);
                    }
                    ResponseKind::ConsumerGroupDescribe(r) => {
                        assert_eq!(r.groups[0].error_code, 0);
                        assert_eq!(r.groups[0].members.len(), 1);
                    }
                    // No transactional id is known: its producer id maps to nothing.
                    ResponseKind::AddPartitionsToTxn(r) if version >= 4 => {
                        assert_eq!(r.error_code, 0);
                        let p =
                            &r.results_by_transaction[0].topic_results[0].results_by_partition[0];
                        assert_eq!(p.partition_error_code, 49);
                    }
                    ResponseKind::AddPartitionsToTxn(r) => {
                        let p = &r.results_by_topic_v3_and_below[0].results_by_partition[0];
                        assert_eq!(p.partition_error_code, 49);
                    }
                    ResponseKind::AddOffsetsToTxn(r) => assert_eq!(r.error_code, 49),
                    ResponseKind::EndTxn(r) => assert_eq!(r.error_code, 49),
                    ResponseKind::TxnOffsetCommit(r) => {
                        assert_eq!(r.topics[0].partitions[0].error_code, 49)
                    }
                    ResponseKind::DescribeTransactions(r) => {
                        assert_eq!(r.transaction_states[0].error_code, 105)
                    }
                    ResponseKind::ListTransactions(r) => {
                        assert_eq!(r.error_code, 0);
                        assert!(r.transaction_states.is_empty());
                    }
                    ResponseKind::DescribeProducers(r) => {
                        assert_eq!(r.topics[0].partitions[0].error_code, 0);
                        assert!(r.topics[0].partitions[0].active_producers.is_empty());
                    }
                    ResponseKind::WriteTxnMarkers(r) => {
                        let codes: Vec<i16> = r.markers[0].topics[0]
                            .partitions
                            .iter()
                            .map(|p| p.error_code)
                            .collect();
                        assert_eq!(codes, vec![0, 3]);
                    }
                    ResponseKind::DescribeConfigs(r) => {
                        let res = &r.results[0];
                        assert_eq!(res.error_code, 0);
                        assert_eq!(res.configs.len(), 1);
                        let c = &res.configs[0];
                        assert_eq!(c.value.as_deref(), Some("604800000"));
                        assert_eq!(c.config_source, 5);
                        assert_eq!(c.synonyms.len(), 1, "the default, log.retention.hours");
                        if version >= 3 {
                            assert_eq!(c.config_type, 5);
                            assert!(c.documentation.as_deref().is_some_and(|d| !d.is_empty()));
                        }
                    }
                    ResponseKind::AlterConfigs(r) => {
                        assert_eq!(r.responses[0].error_code, 40);
                        assert!(r.responses[0]
                            .error_message
                            .as_deref()
                            .is_some_and(|m| m.contains("retention.ms")));
                    }
                    ResponseKind::IncrementalAlterConfigs(r) => {
                        assert_eq!(r.responses[0].error_code, 0)
                    }
                    ResponseKind::CreatePartitions(r) => {
                        assert_eq!(r.results[0].error_code, 37, "t already has 1 partition")
                    }
                    ResponseKind::DeleteRecords(r) => {
                        let p = &r.topics[0].partitions[0];
                        assert_eq!((p.error_code, p.low_watermark), (0, 0));
                    }
                    ResponseKind::DescribeLogDirs(r) => {
                        let dir = &r.results[0];
                        assert_eq!(dir.error_code, 0);
                        let t = dir
                            .topics
                            .iter()
                            .find(|t| t.name.as_str() == "t")
                            .expect("t");
                        assert!(t.partitions[0].partition_size > 0);
                    }
                    ResponseKind::OffsetForLeaderEpoch(r) => {
                        let got: Vec<(i16, i32, i64)> = r.topics[0]
                            .partitions
                            .iter()
                            .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
                            .collect();
                        let leo = topic.partitions[0].high_watermark();
                        // epoch 0 ends at the log end; epoch 3 does not exist; a newer
                        // current epoch is unknown (75); a missing partition is 3.
                        assert_eq!(
                            got,
                            vec![(0, 0, leo), (0, -1, -1), (75, -1, -1), (3, -1, -1)]
                        );
                    }
                    ResponseKind::ElectLeaders(r) => {
                        let codes: Vec<i16> = r.replica_election_results[0]
                            .partition_result
                            .iter()
                            .map(|p| p.error_code)
                            .collect();
                        assert_eq!(codes, vec![84, 3]);
                    }
                    ResponseKind::ListPartitionReassignments(r) => {
                        assert_eq!(r.error_code, 0);
                        assert!(r.topics.is_empty());
                    }
                    ResponseKind::AlterPartitionReassignments(r) => {
                        let codes: Vec<i16> = r.responses[0]
                            .partitions
                            .iter()
                            .map(|p| p.error_code)
                            .collect();
                        assert_eq!(codes, vec![0, 39, 85]);
                    }
                    ResponseKind::DescribeTopicPartitions(r) => {
                        let got: Vec<(i16, usize)> = r
                            .topics
                            .iter()
                            .map(|t| (t.error_code, t.partitions.len()))
                            .collect();
                        assert_eq!(got, vec![(0, 1), (3, 0)]);
                        assert!(r.next_cursor.is_none());
                    }
                    // A PLAINTEXT listener has no SASL: Kafka's ILLEGAL_SASL_STATE.
                    ResponseKind::SaslHandshake(r) => assert_eq!(r.error_code, 34),
                    ResponseKind::SaslAuthenticate(r) => assert_eq!(r.error_code, 34),
                    ResponseKind::DescribeUserScramCredentials(r) => {
                        assert_eq!(r.error_code, 0);
                        assert!(r.results.is_empty());
                    }
                    ResponseKind::DescribeAcls(r) => assert_eq!(r.error_code, 0),
                    ResponseKind::DescribeClientQuotas(r) => assert_eq!(r.error_code, 0),
                    ResponseKind::AlterClientQuotas(r) => {
                        assert_eq!(r.entries.len(), 1);
                        assert_eq!(r.entries[0].error_code, 0);
                    }
                    ResponseKind::CreateAcls(r) => {
                        assert_eq!(r.results.len(), 1);
                        assert_eq!(r.results[0].error_code, 0);
                    }
                    ResponseKind::DeleteAcls(r) => {
                        assert_eq!(r.filter_results.len(), 1);
                        assert_eq!(r.filter_results[0].error_code, 0);
                    }
                    ResponseKind::AlterUserScramCredentials(r) => {
                        assert_eq!(r.results.len(), 1);
                        assert_eq!(r.results[0].user.as_str(), "alice");
                        assert_eq!(r.results[0].error_code, 0);
                    }
                    // The sample names a directory that is not log.dirs: LOG_DIR_NOT_FOUND.
                    ResponseKind::AlterReplicaLogDirs(r) => {
                        assert_eq!(r.results[0].partitions[0].error_code, 57)
                    }
                    ResponseKind::DescribeQuorum(r) => {
                        assert_eq!(r.error_code, 0);
                        let p = &r.topics[0].partitions[0];
                        assert_eq!((p.error_code, p.leader_id.0), (0, 1));
                        assert_eq!(r.nodes.len(), usize::from(version >= 2));
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }

    #[tokio::test]
    async fn unknown_api_versions_version_gets_the_v0_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_dir = dir.path().to_string_lossy().into_owned();
        let config = sluice_config::BrokerConfig::from_properties([
            ("log.dirs", log_dir.as_str()),
            ("listeners", "PLAINTEXT://127.0.0.1:0"),
        ])
        .expect("config");
        let (broker, _l) = crate::server::bind(
            config,
            std::sync::Arc::new(crate::metrics::Metrics::new().expect("metrics")),
        )
        .await
        .expect("bind");
        let mut ctx = RequestContext::new(
            "127.0.0.1:1".parse().expect("addr"),
            "PLAINTEXT".into(),
            "User:ANONYMOUS".into(),
            None,
        );
        // ApiVersions v99 with a correlation id and a body we cannot parse.
        let raw = Bytes::from_static(&[0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff, 1, 2, 3]);
        let out = handle(&broker, &mut ctx, raw)
            .await
            .expect("answered")
            .response()
            .await
            .expect("answered")
            .expect("response");
        let mut body = out.to_bytes().expect("readable").slice(4..);
        assert_eq!(
            ResponseHeader::decode(&mut body, 0)
                .expect("header")
                .correlation_id,
            5
        );
        let r = ApiVersionsResponse::decode(&mut body, 0).expect("v0 body");
        assert_eq!(r.error_code, 35);
        assert!(r
            .api_keys
            .iter()
            .any(|k| k.api_key == 0 && k.max_version == 11));
    }
}
