//! What operators see and do with groups: ListGroups, DescribeGroups, DeleteGroups.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::assignor::Assignment;
use super::state::GroupState;
use super::GroupCoordinator;

/// One group in a ListGroups answer.
pub(crate) struct ListedGroup {
    pub(crate) group_id: String,
    pub(crate) protocol_type: String,
    pub(crate) state: &'static str,
    pub(crate) group_type: &'static str,
}

/// What DescribeGroups finds under a group id.
pub(crate) enum Described {
    Missing,
    /// A KIP-848 consumer group: described by ConsumerGroupDescribe.
    NotClassic,
    Classic(GroupDescription),
}

/// A ConsumerGroupDescribe answer for one group.
pub(crate) struct ConsumerGroupDescription {
    pub(crate) state: &'static str,
    pub(crate) group_epoch: i32,
    pub(crate) assignment_epoch: i32,
    pub(crate) assignor: String,
    pub(crate) members: Vec<ConsumerMemberDescription>,
}

/// One member in a ConsumerGroupDescribe answer.
pub(crate) struct ConsumerMemberDescription {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) member_epoch: i32,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) subscribed_topic_names: Vec<String>,
    pub(crate) subscribed_topic_regex: Option<String>,
    pub(crate) assignment: Assignment,
    pub(crate) target_assignment: Assignment,
}

/// A DescribeGroups answer for one group.
pub(crate) struct GroupDescription {
    pub(crate) state: &'static str,
    pub(crate) protocol_type: String,
    pub(crate) protocol: String,
    pub(crate) members: Vec<DescribedMember>,
}

/// One member in a DescribeGroups answer.
pub(crate) struct DescribedMember {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) metadata: Bytes,
    pub(crate) assignment: Bytes,
}

impl GroupCoordinator {
    /// Groups whose state and type pass the filters (empty filter: all; case-insensitive).
    pub(crate) fn list_groups(&self, states: &[String], types: &[String]) -> Vec<ListedGroup> {
        let groups = self.lock();
        let mut out: Vec<ListedGroup> = groups
            .values()
            .map(|g| match (&g.consumer, &g.share) {
                (_, Some(sg)) => ListedGroup {
                    group_id: g.group_id.clone(),
                    protocol_type: "share".into(),
                    state: sg.state_name(),
                    group_type: "share",
                },
                (Some(cg), None) => ListedGroup {
                    group_id: g.group_id.clone(),
                    protocol_type: "consumer".into(),
                    state: cg.state_name(),
                    group_type: "consumer",
                },
                (None, None) => ListedGroup {
                    group_id: g.group_id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state.name(),
                    group_type: "classic",
                },
            })
            .filter(|g| states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(g.state)))
            .filter(|g| {
                types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(g.group_type))
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// A classic group's state and members. Member metadata and assignments are shown
    /// only for a stable group, as Kafka does.
    pub(crate) fn describe_group(&self, group_id: &str) -> Described {
        let groups = self.lock();
        let Some(g) = groups.get(group_id) else {
            return Described::Missing;
        };
        if g.consumer.is_some() || g.share.is_some() {
            return Described::NotClassic;
        }
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol_name.clone().unwrap_or_default();
        Described::Classic(GroupDescription {
            state: g.state.name(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata_for(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        })
    }

    /// DeleteGroups: only empty groups go, with their committed offsets.
    pub(crate) fn delete_group(&self, group_id: &str) -> Option<ResponseError> {
        let mut groups = self.lock();
        let Some(g) = groups.get(group_id) else {
            return Some(ResponseError::GroupIdNotFound);
        };
        if !g.is_empty() {
            return Some(ResponseError::NonEmptyGroup);
        }
        let offsets: Vec<(String, i32)> = g.offsets.keys().cloned().collect();
        let Some(g) = groups.get_mut(group_id) else {
            return Some(ResponseError::GroupIdNotFound);
        };
        let share_tombstone = g
            .share
            .is_some()
            .then(|| vec![(super::share_records::key(group_id), None)]);
        let deleted = self
            .forget_consumer_records(g)
            .and_then(|()| match share_tombstone {
                Some(t) => self.store.store_records(group_id, t),
                None => Ok(()),
            })
            .and_then(|()| self.store.delete_group(group_id, &offsets));
        if let Err(e) = deleted {
            tracing::error!(group = %group_id, error = %e, "deleting group failed");
            return Some(ResponseError::CoordinatorNotAvailable);
        }
        groups.remove(group_id);
        tracing::info!(group = %group_id, "deleted group");
        None
    }

    /// ConsumerGroupDescribe: `Err` when the id names no group or a classic one.
    pub(crate) fn describe_consumer_group(
        &self,
        group_id: &str,
    ) -> Result<ConsumerGroupDescription, (ResponseError, String)> {
        let groups = self.lock();
        let Some(g) = groups.get(group_id) else {
            return Err((
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} not found."),
            ));
        };
        let Some(cg) = &g.consumer else {
            return Err((
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} is not a consumer group."),
            ));
        };
        Ok(ConsumerGroupDescription {
            state: cg.state_name(),
            group_epoch: cg.group_epoch,
            assignment_epoch: cg.assignment_epoch,
            assignor: cg
                .members
                .values()
                .find_map(|m| m.server_assignor.clone())
                .unwrap_or_else(|| super::assignor::ASSIGNORS[0].to_string()),
            members: cg
                .members
                .values()
                .map(|m| ConsumerMemberDescription {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.member_epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed_topic_names.clone(),
                    subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                    assignment: m.assigned.clone(),
                    target_assignment: cg.target.get(&m.member_id).cloned().unwrap_or_default(),
                })
                .collect(),
        })
    }
}
