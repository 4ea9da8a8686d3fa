//! Group APIs: FindCoordinator and classic membership (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) here; committed offsets, operator views and the KIP-848 protocol beside it.
//! Each maps the request at its version onto the group coordinator and back.

mod consumer;
mod offsets;
mod share;
mod share_admin;
mod views;

pub(crate) use consumer::{consumer_group_describe, consumer_group_heartbeat};
pub(crate) use offsets::{offset_commit, offset_delete, offset_fetch};
pub(crate) use share::share_group_heartbeat;
pub(crate) use share_admin::{
    alter_share_group_offsets, delete_share_group_offsets, describe_share_group_offsets,
    share_group_describe,
};
pub(crate) use views::{delete_groups, describe_groups, list_groups};

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, QuotaUse, Reply};
use crate::broker::Broker;
use crate::error::NONE;
use crate::group::{JoinParams, SyncParams};
use crate::internal_topics;
use crate::metrics::timed;
use crate::session::Session;

answer!(FindCoordinatorResponse: [error_code], [coordinators => error_code]);
answer!(JoinGroupResponse: [error_code]);
answer!(SyncGroupResponse: [error_code]);
answer!(HeartbeatResponse: [error_code]);
answer!(LeaveGroupResponse: [error_code], [members => error_code]);

pub(super) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub(super) fn err_code(e: Option<ResponseError>) -> i16 {
    e.map_or(NONE, |e| e.code())
}

/// Waits until every write to the group's partition of `__consumer_offsets` so far is
/// flushed here and on the ISR, as Kafka's coordinator does before it answers.
pub(super) async fn durable(broker: &Broker, group_id: &str) -> Result<(), ResponseError> {
    broker
        .coordinator_log
        .wait_durable(
            internal_topics::GROUP_METADATA_TOPIC,
            broker.groups.partition_of(group_id),
        )
        .await
}

/// The error of a request for a group this broker does not coordinate (now).
pub(super) fn not_coordinator(broker: &Broker, group_id: &str) -> Option<ResponseError> {
    broker.groups.check_coordinator(group_id).err()
}

/// The error of a membership request (JoinGroup, SyncGroup, Heartbeat, LeaveGroup): an
/// empty group id is INVALID_GROUP_ID before the coordinator is looked at, as in Kafka.
fn membership_refused(broker: &Broker, group_id: &str) -> Option<ResponseError> {
    if group_id.is_empty() {
        return Some(ResponseError::InvalidGroupId);
    }
    not_coordinator(broker, group_id)
}

/// Whether the client may do `op` on the group.
pub(super) fn may_group(broker: &Broker, session: &Session, op: Operation, group: &str) -> bool {
    session.may(broker, op, Resource::Group, group)
}

pub(super) const GROUP_AUTH_FAILED: i16 = ResponseError::GroupAuthorizationFailed.code();
pub(super) const TOPIC_AUTH_FAILED: i16 = ResponseError::TopicAuthorizationFailed.code();

/// The error FindCoordinator gives a key the client may not describe.
fn coordinator_denied(broker: &Broker, session: &Session, key_type: i8, key: &str) -> Option<i16> {
    match key_type {
        KEY_TYPE_GROUP if !may_group(broker, session, Operation::Describe, key) => {
            Some(GROUP_AUTH_FAILED)
        }
        KEY_TYPE_TRANSACTION
            if !session.may(broker, Operation::Describe, Resource::TransactionalId, key) =>
        {
            Some(ResponseError::TransactionalIdAuthorizationFailed.code())
        }
        _ => None,
    }
}

/// Creates the coordinator's internal topic on first use, as Kafka does; a failure is
/// COORDINATOR_NOT_AVAILABLE, which clients retry.
fn internal_topic_missing(broker: &Broker, key_type: i8) -> Option<i16> {
    let topic = if key_type == KEY_TYPE_TRANSACTION {
        internal_topics::TRANSACTION_STATE_TOPIC
    } else {
        internal_topics::GROUP_METADATA_TOPIC
    };
    internal_topics::ensure(broker, topic)
        .err()
        .map(|_| ResponseError::CoordinatorNotAvailable.code())
}

/// Coordinator key types of FindCoordinator.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// FindCoordinator: on a single node this node coordinates every group and transactional
/// id; in a cluster, the leader of the key's partition of the internal topic does.
pub(crate) async fn find_coordinator(
    broker: &Broker,
    session: &Session,
    req: FindCoordinatorRequest,
    version: i16,
) -> Reply<FindCoordinatorResponse> {
    let mut res = FindCoordinatorResponse::default();
    if version < 4 {
        match locate(broker, session, req.key_type, &req.key).await {
            Ok((node_id, host, port)) => {
                res.node_id = BrokerId(node_id);
                res.host = s(&host);
                res.port = port;
                if version >= 1 {
                    res.error_message = Some(s(NONE_MESSAGE));
                }
            }
            Err((error_code, message)) => {
                res.error_code = error_code;
                res.node_id = BrokerId(-1);
                if version >= 1 {
                    res.error_message = message.map(s);
                }
            }
        }
        return Reply::new(res);
    }
    for key in &req.coordinator_keys {
        let mut c = Coordinator::default().with_key(key.clone());
        match locate(broker, session, req.key_type, key).await {
            Ok((node_id, host, port)) => {
                c.node_id = BrokerId(node_id);
                c.host = s(&host);
                c.port = port;
                c.error_message = Some(s(NONE_MESSAGE));
            }
            Err((error_code, message)) => {
                c.node_id = BrokerId(-1);
                c.error_code = error_code;
                c.error_message = message.map(s);
            }
        }
        res.coordinators.push(c);
    }
    Reply::new(res)
}

/// The coordinator of one key: its node id, host and port on the client's listener.
async fn locate(
    broker: &Broker,
    session: &Session,
    key_type: i8,
    key: &str,
) -> Result<(i32, String, i32), (i16, Option<&'static str>)> {
    if let Some(e) = coordinator_denied(broker, session, key_type, key) {
        return Err((e, None));
    }
    if !matches!(key_type, KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION) {
        return Err((
            ResponseError::InvalidRequest.code(),
            Some("unknown coordinator key type"),
        ));
    }
    let not_available = (ResponseError::CoordinatorNotAvailable.code(), None);
    let Some(node) = &broker.cluster else {
        if let Some(e) = internal_topic_missing(broker, key_type) {
            return Err((e, None));
        }
        let (host, port) = broker.endpoint_for(&session.listener);
        return Ok((broker.node_id(), host.to_string(), port));
    };
    let topic = if key_type == KEY_TYPE_TRANSACTION {
        internal_topics::TRANSACTION_STATE_TOPIC
    } else {
        internal_topics::GROUP_METADATA_TOPIC
    };
    let leader = match node.coordinator(topic, key) {
        Some(leader) => leader,
        None if !node.topic_exists(topic) => {
            if let Some(why) = internal_topics::too_few_brokers(broker, topic) {
                tracing::info!("{why}");
                return Err(not_available);
            }
            // Created on first use, as Kafka does; the client asks again.
            let (partitions, rf, configs) = internal_topics::placement(broker, topic);
            if let Ok(assignment) = node.place(partitions, rf, None) {
                let _ = node.create_topic(topic, assignment, configs).await;
            }
            node.coordinator(topic, key).ok_or(not_available)?
        }
        None => return Err(not_available),
    };
    broker
        .node_endpoint(leader, &session.listener)
        .map(|(id, host, port, _)| (id, host, port))
        .ok_or(not_available)
}

/// What Kafka's FindCoordinator carries as the message of a success: `Errors.NONE.message()`,
/// which is the error's name, not null.
const NONE_MESSAGE: &str = "NONE";

/// JoinGroup: waits for the join phase of the rebalance to complete.
pub(crate) async fn join_group(
    broker: &Broker,
    session: &Session,
    req: JoinGroupRequest,
    version: i16,
) -> Reply<JoinGroupResponse> {
    let refused = if !may_group(broker, session, Operation::Read, &req.group_id) {
        Some(GROUP_AUTH_FAILED)
    } else {
        membership_refused(broker, &req.group_id).map(|e| e.code())
    };
    if let Some(error_code) = refused {
        let mut res = JoinGroupResponse::default()
            .with_error_code(error_code)
            .with_generation_id(-1)
            .with_member_id(req.member_id.clone());
        // Kafka's JoinGroup error answer: an empty name before v7, null from v7 on.
        res.protocol_name = (version < 7).then(|| s(""));
        return Reply::new(res);
    }
    let params = JoinParams {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|i| i.to_string()),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            -1
        },
        client_id: session.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", session.peer.ip()),
        require_known_member_id: version >= 4,
        version,
    };
    let (r, waited) = timed(broker.groups.join_group(params)).await;
    let mut res = JoinGroupResponse::default()
        .with_error_code(err_code(r.error))
        .with_generation_id(r.generation_id)
        .with_leader(s(&r.leader))
        .with_member_id(s(&r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|m| {
                    let mut member = JoinGroupResponseMember::default()
                        .with_member_id(s(&m.member_id))
                        .with_metadata(m.metadata);
                    if version >= 5 {
                        member.group_instance_id = m.group_instance_id.map(|i| s(&i));
                    }
                    member
                })
                .collect(),
        );
    if version >= 7 {
        res.protocol_type = r.protocol_type.map(|t| s(&t));
        res.protocol_name = r.protocol_name.map(|n| s(&n));
    } else {
        res.protocol_name = Some(s(r.protocol_name.as_deref().unwrap_or("")));
    }
    if version >= 9 {
        res.skip_assignment = r.skip_assignment;
    }
    Reply::new(res).quota(QuotaUse::Waits).waited(waited)
}

/// SyncGroup: the leader hands out assignments; every member gets its own.
pub(crate) async fn sync_group(
    broker: &Broker,
    session: &Session,
    req: SyncGroupRequest,
    version: i16,
) -> Reply<SyncGroupResponse> {
    if !may_group(broker, session, Operation::Read, &req.group_id) {
        return Reply::new(SyncGroupResponse::default().with_error_code(GROUP_AUTH_FAILED));
    }
    if let Some(e) = membership_refused(broker, &req.group_id) {
        return Reply::new(SyncGroupResponse::default().with_error_code(e.code()));
    }
    let group_id = req.group_id.to_string();
    let params = SyncParams {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|i| i.to_string()),
        generation_id: req.generation_id,
        protocol_type: req.protocol_type.map(|t| t.to_string()),
        protocol_name: req.protocol_name.map(|n| n.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let (r, waited) = timed(async {
        let mut r = broker.groups.sync_group(params).await;
        // The generation's assignment is stored once the leader syncs: answer when it is
        // on the ISR.
        if r.error.is_none() {
            if let Err(e) = durable(broker, &group_id).await {
                r.error = Some(e);
                r.assignment = Default::default();
            }
        }
        r
    })
    .await;
    let mut res = SyncGroupResponse::default()
        .with_error_code(err_code(r.error))
        .with_assignment(r.assignment);
    if version >= 5 {
        res.protocol_type = r.protocol_type.map(|t| s(&t));
        res.protocol_name = r.protocol_name.map(|n| s(&n));
    }
    Reply::new(res).quota(QuotaUse::Waits).waited(waited)
}

/// Heartbeat.
pub(crate) async fn heartbeat(
    broker: &Broker,
    session: &Session,
    req: HeartbeatRequest,
    _version: i16,
) -> Reply<HeartbeatResponse> {
    if !may_group(broker, session, Operation::Read, &req.group_id) {
        return Reply::new(HeartbeatResponse::default().with_error_code(GROUP_AUTH_FAILED));
    }
    if let Some(e) = membership_refused(broker, &req.group_id) {
        return Reply::new(HeartbeatResponse::default().with_error_code(e.code()));
    }
    let error = broker.groups.heartbeat(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
    );
    Reply::new(HeartbeatResponse::default().with_error_code(err_code(error)))
}

/// LeaveGroup: one member (v0-2) or a batch of members (v3+).
pub(crate) async fn leave_group(
    broker: &Broker,
    session: &Session,
    req: LeaveGroupRequest,
    version: i16,
) -> Reply<LeaveGroupResponse> {
    if !may_group(broker, session, Operation::Read, &req.group_id) {
        return Reply::new(LeaveGroupResponse::default().with_error_code(GROUP_AUTH_FAILED));
    }
    if let Some(e) = membership_refused(broker, &req.group_id) {
        return Reply::new(LeaveGroupResponse::default().with_error_code(e.code()));
    }
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let mut res = LeaveGroupResponse::default();
    match broker.groups.leave_group(&req.group_id, &leaving) {
        Err(e) => res.error_code = e.code(),
        Ok(results) if version >= 3 => {
            res.members = leaving
                .into_iter()
                .zip(results)
                .map(|((member_id, instance), e)| {
                    MemberResponse::default()
                        .with_member_id(s(&member_id))
                        .with_group_instance_id(instance.map(|i| s(&i)))
                        .with_error_code(err_code(e))
                })
                .collect();
        }
        Ok(results) => res.error_code = err_code(results.into_iter().next().flatten()),
    }
    Reply::new(res)
}
