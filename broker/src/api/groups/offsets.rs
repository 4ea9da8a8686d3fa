//! Committed offsets: OffsetCommit, OffsetFetch (one group, or several from v8) and
//! OffsetDelete.

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

use super::{
    durable, err_code, may_group, not_coordinator, s, GROUP_AUTH_FAILED, TOPIC_AUTH_FAILED,
};
use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::api::topic_name;
use crate::broker::Broker;
use crate::group::OffsetCommitEntry;
use crate::session::Session;

answer!(OffsetCommitResponse: [topics => partitions => error_code]);
answer!(OffsetFetchResponse: [topics => partitions => error_code], [error_code], [groups => topics => partitions => error_code], [groups => error_code]);
answer!(OffsetDeleteResponse: [error_code], [topics => partitions => error_code]);

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
    let outcome = if !group_allowed {
        Err(ResponseError::GroupAuthorizationFailed)
    } else if let Some(e) = not_coordinator(broker, &req.group_id) {
        Err(e)
    } else {
        let committed = broker.groups.commit_offsets(
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id_or_member_epoch,
            &entries,
        );
        // Acknowledged once on the ISR: a commit survives the coordinator's death.
        match committed {
            Ok(per) => durable(broker, &req.group_id).await.map(|()| per),
            Err(e) => Err(e),
        }
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

/// The partitions an OffsetFetch v0-1 named, each with `error`.
fn requested_with_error(
    req: &OffsetFetchRequest,
    error: ResponseError,
) -> Vec<OffsetFetchResponseTopic> {
    req.topics
        .iter()
        .flatten()
        .map(|t| {
            OffsetFetchResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|p| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(-1)
                                .with_metadata(Some(StrBytes::default()))
                                .with_error_code(error.code())
                        })
                        .collect(),
                )
        })
        .collect()
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
        if let Some(e) = not_coordinator(broker, &req.group_id) {
            // Before v2 the error has no place but the partitions; clients of v0-1 retry
            // on any of them.
            if version >= 2 {
                res.error_code = e.code();
            } else {
                res.topics = requested_with_error(&req, e);
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
                                    && unstable_offset(broker, &req.group_id, &topic, p);
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
            if let Some(e) = not_coordinator(broker, &g.group_id) {
                return OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(e.code());
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
                                                && unstable_offset(broker, &g.group_id, &topic, p);
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
    let deleted = match not_coordinator(broker, &req.group_id) {
        Some(e) => Err(e),
        None => match broker.groups.delete_offsets(&req.group_id, &topics) {
            Ok(results) => durable(broker, &req.group_id).await.map(|()| results),
            Err(e) => Err(e),
        },
    };
    match deleted {
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

/// Whether an open transaction holds an offset of the group for the partition.
fn unstable_offset(broker: &Broker, group: &str, topic: &str, partition: i32) -> bool {
    broker.groups.has_open_txn_offset(group, topic, partition)
}
