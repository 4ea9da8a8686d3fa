//! The operator's side of share groups (KIP-932): ShareGroupDescribe, and the share-group
//! offsets (each share-partition's start offset) read, altered and deleted at the share
//! coordinators. Offsets change only while the group has no members.

use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::share_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;

use super::{may_group, not_coordinator, s};
use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::api::topic_name;
use crate::broker::Broker;
use crate::error::NONE;
use crate::session::Session;
use crate::share::records::ShareKey;

answer!(ShareGroupDescribeResponse: [groups => error_code]);
answer!(DescribeShareGroupOffsetsResponse: [groups => error_code], [groups => topics => partitions => error_code]);
answer!(AlterShareGroupOffsetsResponse: [error_code], [responses => partitions => error_code]);
answer!(DeleteShareGroupOffsetsResponse: [error_code], [responses => error_code]);

/// Kafka's "no authorized operations asked for".
const NO_OPERATIONS: i32 = i32::MIN;

/// Why a request about `group` is refused before it is looked at.
fn refused(
    broker: &Broker,
    session: &Session,
    op: Operation,
    group: &str,
) -> Option<ResponseError> {
    if group.is_empty() {
        Some(ResponseError::InvalidGroupId)
    } else if !may_group(broker, session, op, group) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        not_coordinator(broker, group)
    }
}

/// ShareGroupDescribe: each share group's state, epochs and members.
pub(crate) async fn share_group_describe(
    broker: &Broker,
    session: &Session,
    req: ShareGroupDescribeRequest,
    _version: i16,
) -> Reply<ShareGroupDescribeResponse> {
    let mut res = ShareGroupDescribeResponse::default();
    for id in &req.group_ids {
        let mut g = DescribedGroup::default()
            .with_group_id(id.clone())
            .with_authorized_operations(NO_OPERATIONS);
        if let Some(e) = refused(broker, session, Operation::Describe, id) {
            g.error_code = e.code();
            res.groups.push(g);
            continue;
        }
        match broker.groups.describe_share_group(id) {
            Err(e) => {
                g.error_code = e.code();
                g.error_message = Some(s(&format!("Group {} not found.", id.as_str())));
            }
            Ok(d) => {
                g.group_state = s(d.state);
                g.group_epoch = d.group_epoch;
                g.assignment_epoch = d.assignment_epoch;
                g.assignor_name = s("simple");
                g.members = d
                    .members
                    .into_iter()
                    .map(|m| {
                        let parts = m
                            .assignment
                            .into_iter()
                            .map(|(topic_id, ps)| {
                                let name = broker
                                    .storage
                                    .topic_by_id(topic_id)
                                    .map(|t| t.record.name.clone())
                                    .unwrap_or_default();
                                TopicPartitions::default()
                                    .with_topic_id(topic_id)
                                    .with_topic_name(topic_name(&name))
                                    .with_partitions(ps.into_iter().collect())
                            })
                            .collect();
                        Member::default()
                            .with_member_id(s(&m.member_id))
                            .with_rack_id(m.rack_id.as_deref().map(s))
                            .with_member_epoch(m.member_epoch)
                            .with_client_id(s(&m.client_id))
                            .with_client_host(s(&m.client_host))
                            .with_subscribed_topic_names(
                                m.subscribed_topic_names
                                    .iter()
                                    .map(|t| topic_name(t))
                                    .collect(),
                            )
                            .with_assignment(Assignment::default().with_topic_partitions(parts))
                    })
                    .collect();
            }
        }
        res.groups.push(g);
    }
    Reply::new(res)
}

/// DescribeShareGroupOffsets: each share-partition's start offset (-1 before the group
/// first read it). Without topics: those the group's members subscribe to, and those it
/// has state of at this broker's share coordinator (every one on a single node).
pub(crate) async fn describe_share_group_offsets(
    broker: &Broker,
    session: &Session,
    req: DescribeShareGroupOffsetsRequest,
    _version: i16,
) -> Reply<DescribeShareGroupOffsetsResponse> {
    let mut res = DescribeShareGroupOffsetsResponse::default();
    for g in &req.groups {
        let group = g.group_id.to_string();
        let mut out =
            DescribeShareGroupOffsetsResponseGroup::default().with_group_id(g.group_id.clone());
        if let Some(e) = refused(broker, session, Operation::Describe, &group) {
            out.error_code = e.code();
            res.groups.push(out);
            continue;
        }
        let asked: Vec<(String, Option<Vec<i32>>)> = match &g.topics {
            Some(topics) => topics
                .iter()
                .map(|t| (t.topic_name.to_string(), Some(t.partitions.clone())))
                .collect(),
            None => {
                // The topics its members subscribe to, and those whose state this
                // broker's share coordinator holds for it.
                let mut topics: std::collections::BTreeSet<String> = broker
                    .groups
                    .share_group_topics(&group)
                    .into_iter()
                    .collect();
                for (key, _) in broker.share_coordinator.group_states(&group) {
                    if let Some(t) = broker.storage.topic_by_id(key.topic_id) {
                        topics.insert(t.record.name.clone());
                    }
                }
                topics.into_iter().map(|t| (t, None)).collect()
            }
        };
        for (name, partitions) in asked {
            let topic = broker.storage.topic(&name);
            let mut t = DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(topic_name(&name))
                .with_topic_id(topic.as_ref().map_or(uuid::Uuid::nil(), |t| t.record.id));
            let indexes = partitions.unwrap_or_else(|| {
                (0..topic.as_ref().map_or(0, |t| t.partitions.len() as i32)).collect()
            });
            for index in indexes {
                let mut p = DescribeShareGroupOffsetsResponsePartition::default()
                    .with_partition_index(index)
                    .with_start_offset(-1)
                    .with_leader_epoch(-1);
                let exists = topic
                    .as_ref()
                    .is_some_and(|t| index >= 0 && (index as usize) < t.partitions.len());
                if !session.may(broker, Operation::Describe, Resource::Topic, &name) {
                    p.error_code = ResponseError::TopicAuthorizationFailed.code();
                } else if let (true, Some(tp)) = (exists, &topic) {
                    let key = ShareKey {
                        group: group.clone(),
                        topic_id: tp.record.id,
                        partition: index,
                    };
                    match broker.shares.read_state(&key).await {
                        Ok(state) => p.start_offset = state.map_or(-1, |st| st.start_offset),
                        Err(e) => p.error_code = e.code(),
                    }
                } else {
                    p.error_code = ResponseError::UnknownTopicOrPartition.code();
                }
                t.partitions.push(p);
            }
            out.topics.push(t);
        }
        res.groups.push(out);
    }
    Reply::new(res)
}

/// AlterShareGroupOffsets: starts share-partitions of an empty share group over at the
/// given offsets (creating the group, as Kafka does).
pub(crate) async fn alter_share_group_offsets(
    broker: &Broker,
    session: &Session,
    req: AlterShareGroupOffsetsRequest,
    _version: i16,
) -> Reply<AlterShareGroupOffsetsResponse> {
    let group = req.group_id.to_string();
    let mut res = AlterShareGroupOffsetsResponse::default();
    let mut refusal = refused(broker, session, Operation::Read, &group)
        .or_else(|| broker.groups.check_share_group_empty(&group, true).err());
    if refusal.is_none() {
        // The group it may have created.
        refusal = super::durable(broker, &group).await.err();
    }
    if let Some(e) = refusal {
        res.error_code = e.code();
        res.error_message = Some(s(&e.to_string()));
        return Reply::new(res);
    }
    for t in &req.topics {
        let name = t.topic_name.to_string();
        let topic = broker.storage.topic(&name);
        let mut out = AlterShareGroupOffsetsResponseTopic::default()
            .with_topic_name(t.topic_name.clone())
            .with_topic_id(topic.as_ref().map_or(uuid::Uuid::nil(), |t| t.record.id));
        for p in &t.partitions {
            let index = p.partition_index;
            let code = match &topic {
                _ if !session.may(broker, Operation::Read, Resource::Topic, &name) => {
                    ResponseError::TopicAuthorizationFailed.code()
                }
                Some(tp) if index >= 0 && (index as usize) < tp.partitions.len() => {
                    let key = ShareKey {
                        group: group.clone(),
                        topic_id: tp.record.id,
                        partition: index,
                    };
                    match broker.shares.reset_state(&key, p.start_offset).await {
                        Ok(()) => NONE,
                        Err(e) => e.code(),
                    }
                }
                _ => ResponseError::UnknownTopicOrPartition.code(),
            };
            let mut r =
                AlterShareGroupOffsetsResponsePartition::default().with_partition_index(index);
            r.error_code = code;
            out.partitions.push(r);
        }
        res.responses.push(out);
    }
    Reply::new(res)
}

/// DeleteShareGroupOffsets: an empty share group's share-partitions of whole topics
/// start over as `share.auto.offset.reset` says when a member next reads them.
pub(crate) async fn delete_share_group_offsets(
    broker: &Broker,
    session: &Session,
    req: DeleteShareGroupOffsetsRequest,
    _version: i16,
) -> Reply<DeleteShareGroupOffsetsResponse> {
    let group = req.group_id.to_string();
    let mut res = DeleteShareGroupOffsetsResponse::default();
    let refusal = refused(broker, session, Operation::Delete, &group)
        .or_else(|| broker.groups.check_share_group_empty(&group, false).err());
    if let Some(e) = refusal {
        res.error_code = e.code();
        res.error_message = Some(s(&e.to_string()));
        return Reply::new(res);
    }
    for t in &req.topics {
        let name = t.topic_name.to_string();
        let topic = broker.storage.topic(&name);
        let mut out = DeleteShareGroupOffsetsResponseTopic::default()
            .with_topic_name(t.topic_name.clone())
            .with_topic_id(topic.as_ref().map_or(uuid::Uuid::nil(), |t| t.record.id));
        out.error_code = match &topic {
            _ if !session.may(broker, Operation::Read, Resource::Topic, &name) => {
                ResponseError::TopicAuthorizationFailed.code()
            }
            None => ResponseError::UnknownTopicOrPartition.code(),
            Some(tp) => {
                let mut code = NONE;
                for index in 0..tp.partitions.len() as i32 {
                    let key = ShareKey {
                        group: group.clone(),
                        topic_id: tp.record.id,
                        partition: index,
                    };
                    if let Err(e) = broker.shares.reset_state(&key, -1).await {
                        code = e.code();
                    }
                }
                code
            }
        };
        res.responses.push(out);
    }
    Reply::new(res)
}
