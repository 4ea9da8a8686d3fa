//! Group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, OffsetDelete, ListGroups, DescribeGroups, DeleteGroups.
//! Each maps the request at its version onto the group coordinator and back.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::topic_name;
use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, QuotaUse, Reply};
use crate::broker::Broker;
use crate::error::NONE;
use crate::group::{ConsumerHeartbeat, Described, JoinParams, OffsetCommitEntry, SyncParams};
use crate::internal_topics;
use crate::metrics::timed;
use crate::session::Session;

answer!(FindCoordinatorResponse: [error_code], [coordinators => error_code]);
answer!(JoinGroupResponse: [error_code]);
answer!(SyncGroupResponse: [error_code]);
answer!(HeartbeatResponse: [error_code]);
answer!(LeaveGroupResponse: [error_code], [members => error_code]);
answer!(OffsetCommitResponse: [topics => partitions => error_code]);
answer!(OffsetFetchResponse: [topics => partitions => error_code], [error_code], [groups => topics => partitions => error_code], [groups => error_code]);
answer!(OffsetDeleteResponse: [error_code], [topics => partitions => error_code]);
answer!(ListGroupsResponse: [error_code]);
answer!(DescribeGroupsResponse: [groups => error_code]);
answer!(DeleteGroupsResponse: [results => error_code]);
answer!(ConsumerGroupHeartbeatResponse: [error_code]);
answer!(ConsumerGroupDescribeResponse: [groups => error_code]);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn err_code(e: Option<ResponseError>) -> i16 {
    e.map_or(NONE, |e| e.code())
}

/// Whether the client may do `op` on the group.
fn may_group(broker: &Broker, session: &Session, op: Operation, group: &str) -> bool {
    session.may(broker, op, Resource::Group, group)
}

const GROUP_AUTH_FAILED: i16 = ResponseError::GroupAuthorizationFailed.code();
const TOPIC_AUTH_FAILED: i16 = ResponseError::TopicAuthorizationFailed.code();

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

/// FindCoordinator: this node coordinates every group and transactional id.
pub(crate) async fn find_coordinator(
    broker: &Broker,
    session: &Session,
    req: FindCoordinatorRequest,
    version: i16,
) -> Reply<FindCoordinatorResponse> {
    let (host, port) = broker.endpoint_for(&session.listener);
    let node_id = BrokerId(broker.node_id());
    let valid_type = matches!(req.key_type, KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION);
    let mut res = FindCoordinatorResponse::default();
    if version < 4 {
        if let Some(e) = coordinator_denied(broker, session, req.key_type, &req.key) {
            res.error_code = e;
            res.node_id = BrokerId(-1);
        } else if let Some(e) = valid_type
            .then(|| internal_topic_missing(broker, req.key_type))
            .flatten()
        {
            res.error_code = e;
            res.node_id = BrokerId(-1);
        } else if valid_type {
            res.node_id = node_id;
            res.host = s(host);
            res.port = port;
            if version >= 1 {
                res.error_message = Some(s(NONE_MESSAGE));
            }
        } else {
            res.error_code = ResponseError::InvalidRequest.code();
            res.node_id = BrokerId(-1);
            if version >= 1 {
                res.error_message = Some(s("unknown coordinator key type"));
            }
        }
        return Reply::new(res);
    }
    res.coordinators = req
        .coordinator_keys
        .iter()
        .map(|key| {
            let mut c = Coordinator::default().with_key(key.clone());
            if let Some(e) = coordinator_denied(broker, session, req.key_type, key) {
                c.node_id = BrokerId(-1);
                c.error_code = e;
            } else if let Some(e) = valid_type
                .then(|| internal_topic_missing(broker, req.key_type))
                .flatten()
            {
                c.node_id = BrokerId(-1);
                c.error_code = e;
            } else if valid_type {
                c.node_id = node_id;
                c.host = s(host);
                c.port = port;
                c.error_message = Some(s(NONE_MESSAGE));
            } else {
                c.node_id = BrokerId(-1);
                c.error_code = ResponseError::InvalidRequest.code();
                c.error_message = Some(s("unknown coordinator key type"));
            }
            c
        })
        .collect();
    Reply::new(res)
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
    if !may_group(broker, session, Operation::Read, &req.group_id) {
        let mut res = JoinGroupResponse::default()
            .with_error_code(GROUP_AUTH_FAILED)
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
    let (r, waited) = timed(broker.groups.sync_group(params)).await;
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

/// OffsetCommit.
pub(crate) async fn offset_commit(
    broker: &Broker,
    session: &Session,
    req: OffsetCommitRequest,
    version: i16,
) -> Reply<OffsetCommitResponse> {
    let group_allowed = may_group(broker, session, Operation::Read, &req.group_id);
    let topic_allowed: Vec<bool> = req
        .topics
        .iter()
        .map(|t| session.may(broker, Operation::Read, Resource::Topic, &t.name))
        .collect();
    let entries: Vec<OffsetCommitEntry> = req
        .topics
        .iter()
        .zip(&topic_allowed)
        .filter(|(_, allowed)| **allowed)
        .flat_map(|(t, _)| {
            t.partitions.iter().map(move |p| OffsetCommitEntry {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let outcome = if group_allowed {
        broker.groups.commit_offsets(
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id_or_member_epoch,
            &entries,
        )
    } else {
        Err(ResponseError::GroupAuthorizationFailed)
    };
    let mut errors = entries.iter().enumerate().map(|(i, _)| match &outcome {
        Err(e) => Some(*e),
        Ok(per) => per.get(i).copied().flatten(),
    });
    let topics = req
        .topics
        .iter()
        .zip(&topic_allowed)
        .map(|(t, allowed)| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let error = match (group_allowed, allowed) {
                                (false, _) => GROUP_AUTH_FAILED,
                                (true, false) => TOPIC_AUTH_FAILED,
                                (true, true) => err_code(errors.next().flatten()),
                            };
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error)
                        })
                        .collect(),
                )
        })
        .collect();
    Reply::new(OffsetCommitResponse::default().with_topics(topics))
}

/// A committed offset as OffsetFetch reports it: -1 and empty metadata when none.
fn fetched(committed: Option<sluice_storage::CommittedOffset>) -> (i64, i32, StrBytes) {
    match committed {
        Some(c) => (c.offset, c.leader_epoch, s(&c.metadata)),
        None => (-1, -1, StrBytes::default()),
    }
}

/// OffsetFetch: one group (v1-7) or several (v8+).
pub(crate) async fn offset_fetch(
    broker: &Broker,
    session: &Session,
    req: OffsetFetchRequest,
    version: i16,
) -> Reply<OffsetFetchResponse> {
    let mut res = OffsetFetchResponse::default();
    // Topics the client may not describe: an error where named, left out otherwise.
    let topic_denied =
        |topic: &str| !session.may(broker, Operation::Describe, Resource::Topic, topic);
    if version < 8 {
        if !may_group(broker, session, Operation::Describe, &req.group_id) {
            if version >= 2 {
                res.error_code = GROUP_AUTH_FAILED;
            }
            return Reply::new(res);
        }
        let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        let named = wanted.is_some();
        let offsets = broker
            .groups
            .fetch_offsets(&req.group_id, wanted.as_deref());
        res.topics = offsets
            .into_iter()
            .filter(|(topic, _)| named || !topic_denied(topic))
            .map(|(topic, parts)| {
                let denied = topic_denied(&topic);
                OffsetFetchResponseTopic::default()
                    .with_name(topic_name(&topic))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, c)| {
                                let unstable = req.require_stable
                                    && broker.txns.has_pending_offset(&req.group_id, &topic, p);
                                let (offset, epoch, metadata) =
                                    fetched(if unstable || denied { None } else { c });
                                let mut part = OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_metadata(Some(metadata));
                                if unstable {
                                    part.error_code = ResponseError::UnstableOffsetCommit.code();
                                }
                                if denied {
                                    part.error_code = TOPIC_AUTH_FAILED;
                                }
                                if version >= 5 {
                                    part.committed_leader_epoch = epoch;
                                }
                                part
                            })
                            .collect(),
                    )
            })
            .collect();
        return Reply::new(res);
    }
    res.groups = req
        .groups
        .iter()
        .map(|g| {
            let wanted: Option<Vec<(String, Vec<i32>)>> = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            if !may_group(broker, session, Operation::Describe, &g.group_id) {
                return OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(GROUP_AUTH_FAILED);
            }
            if version >= 9 {
                let member_id = g.member_id.as_deref();
                if let Some(e) =
                    broker
                        .groups
                        .check_fetch_member(&g.group_id, member_id, g.member_epoch)
                {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_error_code(e.code());
                }
            }
            let named = wanted.is_some();
            let offsets = broker.groups.fetch_offsets(&g.group_id, wanted.as_deref());
            OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id.clone())
                .with_topics(
                    offsets
                        .into_iter()
                        .filter(|(topic, _)| named || !topic_denied(topic))
                        .map(|(topic, parts)| {
                            let denied = topic_denied(&topic);
                            OffsetFetchResponseTopics::default()
                                .with_name(topic_name(&topic))
                                .with_partitions(
                                    parts
                                        .into_iter()
                                        .map(|(p, c)| {
                                            let unstable = req.require_stable
                                                && broker.txns.has_pending_offset(
                                                    &g.group_id,
                                                    &topic,
                                                    p,
                                                );
                                            let (offset, epoch, metadata) =
                                                fetched(if unstable || denied { None } else { c });
                                            let mut part = OffsetFetchResponsePartitions::default()
                                                .with_partition_index(p)
                                                .with_committed_offset(offset)
                                                .with_committed_leader_epoch(epoch)
                                                .with_metadata(Some(metadata));
                                            if unstable {
                                                part.error_code =
                                                    ResponseError::UnstableOffsetCommit.code();
                                            }
                                            if denied {
                                                part.error_code = TOPIC_AUTH_FAILED;
                                            }
                                            part
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                )
        })
        .collect();
    Reply::new(res)
}

/// OffsetDelete.
pub(crate) async fn offset_delete(
    broker: &Broker,
    session: &Session,
    req: OffsetDeleteRequest,
    _version: i16,
) -> Reply<OffsetDeleteResponse> {
    if !may_group(broker, session, Operation::Delete, &req.group_id) {
        let mut res = OffsetDeleteResponse::default();
        res.error_code = GROUP_AUTH_FAILED;
        return Reply::new(res);
    }
    let (allowed, denied): (Vec<_>, Vec<_>) = req
        .topics
        .iter()
        .partition(|t| session.may(broker, Operation::Read, Resource::Topic, &t.name));
    let topics: Vec<(String, Vec<i32>)> = allowed
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let mut res = OffsetDeleteResponse::default();
    match broker.groups.delete_offsets(&req.group_id, &topics) {
        Err(e) => res.error_code = e.code(),
        Ok(results) => {
            res.topics = results
                .into_iter()
                .map(|(topic, parts)| {
                    OffsetDeleteResponseTopic::default()
                        .with_name(topic_name(&topic))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, e)| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(err_code(e))
                                })
                                .collect(),
                        )
                })
                .collect();
            for t in denied {
                res.topics.push(
                    OffsetDeleteResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(TOPIC_AUTH_FAILED)
                                })
                                .collect(),
                        ),
                );
            }
        }
    }
    Reply::new(res)
}

/// ListGroups, with the state (v4+) and type (v5+) filters.
pub(crate) async fn list_groups(
    broker: &Broker,
    session: &Session,
    req: ListGroupsRequest,
    version: i16,
) -> Reply<ListGroupsResponse> {
    // Describe on the cluster lists every group; otherwise those the client may describe.
    let all = session.may_cluster(broker, Operation::Describe);
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|t| t.to_string()).collect();
    let groups = broker
        .groups
        .list_groups(&states, &types)
        .into_iter()
        .filter(|g| all || may_group(broker, session, Operation::Describe, &g.group_id))
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(s(&g.group_id)))
                .with_protocol_type(s(&g.protocol_type));
            if version >= 4 {
                listed.group_state = s(g.state);
            }
            if version >= 5 {
                listed.group_type = s(g.group_type);
            }
            listed
        })
        .collect();
    Reply::new(ListGroupsResponse::default().with_groups(groups))
}

/// DescribeGroups. A group that does not exist is `Dead`; from v6 it is GROUP_ID_NOT_FOUND.
pub(crate) async fn describe_groups(
    broker: &Broker,
    session: &Session,
    req: DescribeGroupsRequest,
    version: i16,
) -> Reply<DescribeGroupsResponse> {
    let groups = req
        .groups
        .iter()
        .map(|id| {
            let mut g = DescribedGroup::default().with_group_id(id.clone());
            if !may_group(broker, session, Operation::Describe, id) {
                g.error_code = GROUP_AUTH_FAILED;
                return g;
            }
            match broker.groups.describe_group(id) {
                Described::Missing | Described::NotClassic => {
                    g.group_state = s("Dead");
                    if version >= 6 {
                        g.error_code = ResponseError::GroupIdNotFound.code();
                        g.error_message = Some(s(&format!("Group {} not found.", id.as_str())));
                    }
                }
                Described::Classic(d) => {
                    g.group_state = s(d.state);
                    g.protocol_type = s(&d.protocol_type);
                    g.protocol_data = s(&d.protocol);
                    g.members = d
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut member = DescribedGroupMember::default()
                                .with_member_id(s(&m.member_id))
                                .with_client_id(s(&m.client_id))
                                .with_client_host(s(&m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment);
                            if version >= 4 {
                                member.group_instance_id = m.group_instance_id.map(|i| s(&i));
                            }
                            member
                        })
                        .collect();
                }
            }
            g
        })
        .collect();
    Reply::new(DescribeGroupsResponse::default().with_groups(groups))
}

/// DeleteGroups.
pub(crate) async fn delete_groups(
    broker: &Broker,
    session: &Session,
    req: DeleteGroupsRequest,
    _version: i16,
) -> Reply<DeleteGroupsResponse> {
    let results = req
        .groups_names
        .iter()
        .map(|id| {
            let error = if id.is_empty() {
                Some(ResponseError::InvalidGroupId)
            } else if !may_group(broker, session, Operation::Delete, id) {
                Some(ResponseError::GroupAuthorizationFailed)
            } else {
                broker.groups.delete_group(id)
            };
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(err_code(error))
        })
        .collect();
    Reply::new(DeleteGroupsResponse::default().with_results(results))
}

/// Partitions by topic id, for the consumer protocol's messages.
type TopicPartitionSets = std::collections::BTreeMap<uuid::Uuid, std::collections::BTreeSet<i32>>;

/// ConsumerGroupHeartbeat (KIP-848).
pub(crate) async fn consumer_group_heartbeat(
    broker: &Broker,
    session: &Session,
    req: ConsumerGroupHeartbeatRequest,
    version: i16,
) -> Reply<ConsumerGroupHeartbeatResponse> {
    use kafka_protocol::messages::consumer_group_heartbeat_response::{
        Assignment, TopicPartitions,
    };
    if !may_group(broker, session, Operation::Read, &req.group_id) {
        let mut res = ConsumerGroupHeartbeatResponse::default();
        res.error_code = GROUP_AUTH_FAILED;
        return Reply::new(res);
    }
    // KIP-848: subscribing to a topic needs Describe on it.
    let hidden = req
        .subscribed_topic_names
        .iter()
        .flatten()
        .find(|t| !session.may(broker, Operation::Describe, Resource::Topic, t.as_str()));
    if let Some(t) = hidden {
        let mut res = ConsumerGroupHeartbeatResponse::default();
        res.error_code = TOPIC_AUTH_FAILED;
        res.error_message = Some(s(&format!(
            "not authorized to describe topic {}",
            t.as_str()
        )));
        return Reply::new(res);
    }
    let owned: Option<TopicPartitionSets> = req.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .filter(|tp| !tp.partitions.is_empty())
            .map(|tp| (tp.topic_id, tp.partitions.iter().cloned().collect()))
            .collect()
    });
    let hb = ConsumerHeartbeat {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|i| i.to_string()),
        rack_id: req.rack_id.as_ref().map(|r| r.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.as_ref().map(|r| r.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|a| a.to_string()),
        owned,
        client_id: session.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", session.peer.ip()),
        version,
    };
    let mut res = ConsumerGroupHeartbeatResponse::default();
    match broker.groups.consumer_heartbeat(hb) {
        Err((e, message)) => {
            res.error_code = e.code();
            res.error_message = (!message.is_empty()).then(|| s(&message));
        }
        Ok(r) => {
            res.member_id = Some(s(&r.member_id));
            res.member_epoch = r.member_epoch;
            res.heartbeat_interval_ms = broker.groups.consumer_heartbeat_interval_ms();
            res.assignment = r.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(topic_id, parts)| {
                            TopicPartitions::default()
                                .with_topic_id(topic_id)
                                .with_partitions(parts.into_iter().collect())
                        })
                        .collect(),
                )
            });
        }
    }
    Reply::new(res)
}

/// ConsumerGroupDescribe (KIP-848).
pub(crate) async fn consumer_group_describe(
    broker: &Broker,
    session: &Session,
    req: ConsumerGroupDescribeRequest,
    _version: i16,
) -> Reply<ConsumerGroupDescribeResponse> {
    use kafka_protocol::messages::consumer_group_describe_response::{
        Assignment, DescribedGroup, Member, TopicPartitions,
    };
    let to_assignment = |a: TopicPartitionSets| {
        Assignment::default().with_topic_partitions(
            a.into_iter()
                .map(|(topic_id, parts)| {
                    let name = broker
                        .storage
                        .topic_by_id(topic_id)
                        .map(|t| t.record.name.clone())
                        .unwrap_or_default();
                    TopicPartitions::default()
                        .with_topic_id(topic_id)
                        .with_topic_name(topic_name(&name))
                        .with_partitions(parts.into_iter().collect())
                })
                .collect(),
        )
    };
    let groups = req
        .group_ids
        .iter()
        .map(|id| {
            let g = DescribedGroup::default().with_group_id(id.clone());
            if !may_group(broker, session, Operation::Describe, id) {
                return g.with_error_code(GROUP_AUTH_FAILED);
            }
            match broker.groups.describe_consumer_group(id) {
                Err((e, message)) => g
                    .with_error_code(e.code())
                    .with_error_message(Some(s(&message))),
                Ok(d) => g
                    .with_group_state(s(d.state))
                    .with_group_epoch(d.group_epoch)
                    .with_assignment_epoch(d.assignment_epoch)
                    .with_assignor_name(s(&d.assignor))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                Member::default()
                                    .with_member_id(s(&m.member_id))
                                    .with_instance_id(m.instance_id.map(|i| s(&i)))
                                    .with_rack_id(m.rack_id.map(|r| s(&r)))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(s(&m.client_id))
                                    .with_client_host(s(&m.client_host))
                                    .with_subscribed_topic_names(
                                        m.subscribed_topic_names
                                            .iter()
                                            .map(|n| topic_name(n))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(
                                        m.subscribed_topic_regex.map(|r| s(&r)),
                                    )
                                    .with_assignment(to_assignment(m.assignment))
                                    .with_target_assignment(to_assignment(m.target_assignment))
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    Reply::new(ConsumerGroupDescribeResponse::default().with_groups(groups))
}
