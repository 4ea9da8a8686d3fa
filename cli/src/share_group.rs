//! Share groups (KIP-932) at their coordinator: ShareGroupDescribe for `group describe`,
//! DescribeShareGroupOffsets for their start offsets, AlterShareGroupOffsets for
//! `group reset-offsets`.

use std::collections::BTreeMap;
use std::time::Instant;

use kafka_protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, DescribeShareGroupOffsetsRequest, ShareGroupDescribeRequest,
};

use crate::client::{coordinator_moved, group_id, topic_name, Client, Target};
use crate::error::CliError;
use crate::group_describe::{GroupDescription, Member};
use crate::offsets::Tp;

/// `protocol_type` of a share group.
pub(crate) const SHARE: &str = "share";

fn no_answer(coordinator: i32, api: &'static str, group: &str) -> CliError {
    CliError::Protocol {
        addr: format!("broker {coordinator}"),
        api,
        reason: format!("no answer for group {group}"),
    }
}

/// A share group's state and members; GROUP_ID_NOT_FOUND (as an error) for another kind.
pub(crate) async fn describe(
    client: &mut Client,
    group: &str,
) -> Result<GroupDescription, CliError> {
    let deadline = Instant::now() + client.request_timeout();
    loop {
        let coordinator = client.coordinator(group).await?;
        let (_, resp) = client
            .send(Target::Node(coordinator), |_| {
                ShareGroupDescribeRequest::default().with_group_ids(vec![group_id(group)])
            })
            .await?;
        let d = resp
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| no_answer(coordinator, "ShareGroupDescribe", group))?;
        if client
            .retry_coordinator(group, coordinator_moved(d.error_code), deadline)
            .await
        {
            continue;
        }
        CliError::check(d.error_code, d.error_message.as_ref(), || {
            format!("group {group}")
        })?;
        return Ok(GroupDescription {
            state: d.group_state.as_str().to_string(),
            protocol_type: SHARE.to_string(),
            protocol: d.assignor_name.as_str().to_string(),
            members: d
                .members
                .into_iter()
                .map(|m| Member {
                    id: m.member_id.as_str().to_string(),
                    client_id: m.client_id.as_str().to_string(),
                    host: m.client_host.as_str().to_string(),
                    partitions: m
                        .assignment
                        .topic_partitions
                        .into_iter()
                        .flat_map(|tp| {
                            let topic = tp.topic_name.0.as_str().to_string();
                            tp.partitions.into_iter().map(move |p| (topic.clone(), p))
                        })
                        .collect(),
                })
                .collect(),
        });
    }
}

/// The share-partition start offsets of `group` on `topics` (all partitions of each), or
/// on the topics its members subscribe to; partitions the group never read are left out.
pub(crate) async fn start_offsets(
    client: &mut Client,
    group: &str,
    topics: Option<&[String]>,
) -> Result<BTreeMap<Tp, i64>, CliError> {
    use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestTopic;
    let deadline = Instant::now() + client.request_timeout();
    let asked: Option<Vec<DescribeShareGroupOffsetsRequestTopic>> = match topics {
        None => None,
        Some(names) => {
            let cluster = client.metadata(Some(names)).await?;
            let mut out = Vec::new();
            for name in names {
                let t = cluster.require_topic(name)?;
                out.push(
                    DescribeShareGroupOffsetsRequestTopic::default()
                        .with_topic_name(topic_name(name))
                        .with_partitions(t.partitions.iter().map(|p| p.index).collect()),
                );
            }
            Some(out)
        }
    };
    loop {
        let coordinator = client.coordinator(group).await?;
        let asked = asked.clone();
        let (_, resp) = client
            .send(Target::Node(coordinator), move |_| {
                DescribeShareGroupOffsetsRequest::default().with_groups(vec![
                    DescribeShareGroupOffsetsRequestGroup::default()
                        .with_group_id(group_id(group))
                        .with_topics(asked.clone()),
                ])
            })
            .await?;
        let g = resp
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| no_answer(coordinator, "DescribeShareGroupOffsets", group))?;
        if client
            .retry_coordinator(group, coordinator_moved(g.error_code), deadline)
            .await
        {
            continue;
        }
        CliError::check(g.error_code, g.error_message.as_ref(), || {
            format!("share group {group}")
        })?;
        let mut out = BTreeMap::new();
        for t in g.topics {
            let topic = t.topic_name.0.as_str().to_string();
            for p in t.partitions {
                CliError::check(p.error_code, p.error_message.as_ref(), || {
                    format!("share group {group}, {topic}-{}", p.partition_index)
                })?;
                if p.start_offset >= 0 {
                    out.insert((topic.clone(), p.partition_index), p.start_offset);
                }
            }
        }
        return Ok(out);
    }
}

/// Starts the share group's share-partitions over at the planned offsets; the refused
/// partitions with their error codes.
pub(crate) async fn alter_start_offsets(
    client: &mut Client,
    group: &str,
    plan: &BTreeMap<Tp, i64>,
) -> Result<Vec<(Tp, i16)>, CliError> {
    let deadline = Instant::now() + client.request_timeout();
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for ((t, p), o) in plan {
        by_topic.entry(t.as_str()).or_default().push((*p, *o));
    }
    let topics: Vec<AlterShareGroupOffsetsRequestTopic> = by_topic
        .iter()
        .map(|(t, ps)| {
            AlterShareGroupOffsetsRequestTopic::default()
                .with_topic_name(topic_name(t))
                .with_partitions(
                    ps.iter()
                        .map(|(p, o)| {
                            AlterShareGroupOffsetsRequestPartition::default()
                                .with_partition_index(*p)
                                .with_start_offset(*o)
                        })
                        .collect(),
                )
        })
        .collect();
    loop {
        let coordinator = client.coordinator(group).await?;
        let topics = topics.clone();
        let (_, resp) = client
            .send(Target::Node(coordinator), move |_| {
                AlterShareGroupOffsetsRequest::default()
                    .with_group_id(group_id(group))
                    .with_topics(topics.clone())
            })
            .await?;
        if client
            .retry_coordinator(group, coordinator_moved(resp.error_code), deadline)
            .await
        {
            continue;
        }
        CliError::check(resp.error_code, resp.error_message.as_ref(), || {
            format!("altering the start offsets of share group {group}")
        })?;
        let mut refused = Vec::new();
        for t in resp.responses {
            for p in t.partitions {
                if p.error_code != 0 {
                    refused.push((
                        (t.topic_name.0.as_str().to_string(), p.partition_index),
                        p.error_code,
                    ));
                }
            }
        }
        return Ok(refused);
    }
}
