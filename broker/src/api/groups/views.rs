//! What operators see and do with groups: ListGroups, DescribeGroups, DeleteGroups.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;

use super::{durable, err_code, may_group, not_coordinator, s, GROUP_AUTH_FAILED};
use crate::acl::Operation;
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::group::Described;
use crate::session::Session;

answer!(ListGroupsResponse: [error_code]);
answer!(DescribeGroupsResponse: [groups => error_code]);
answer!(DeleteGroupsResponse: [results => error_code]);

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
            if let Some(e) = not_coordinator(broker, id) {
                g.error_code = e.code();
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
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in &req.groups_names {
        let error = if id.is_empty() {
            Some(ResponseError::InvalidGroupId)
        } else if !may_group(broker, session, Operation::Delete, id) {
            Some(ResponseError::GroupAuthorizationFailed)
        } else if let Some(e) = not_coordinator(broker, id) {
            Some(e)
        } else {
            match broker.groups.delete_group(id) {
                None => {
                    // A share group's share-partitions go with it: those in memory here,
                    // and the durable states this broker's share coordinator holds.
                    broker.shares.forget_group(id);
                    let mut failed = None;
                    for (key, _) in broker.share_coordinator.group_states(id) {
                        if let Err(e) = broker.share_coordinator.write(&key, None).await {
                            failed = Some(e);
                        }
                    }
                    match failed {
                        Some(e) => Some(e),
                        None => durable(broker, id).await.err(),
                    }
                }
                refused => refused,
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(err_code(error)),
        );
    }
    Reply::new(DeleteGroupsResponse::default().with_results(results))
}
