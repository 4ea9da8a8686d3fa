//! Offsets of partitions: log start / log end / by timestamp (ListOffsets, at the
//! leaders) and a group's committed offsets (OffsetFetch, OffsetCommit, at the coordinator).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    BrokerId, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::ResponseError;

use crate::client::{
    coordinator_moved, group_id, str_bytes, topic_name, Client, Target, RETRY_BACKOFF,
};
use crate::error::{is_retriable, CliError};
use crate::metadata::Cluster;

/// A topic partition.
pub(crate) type Tp = (String, i32);

/// What ListOffsets looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset: the high watermark (read_uncommitted) or the last stable
    /// offset (read_committed).
    Latest,
    /// The first offset whose timestamp is at or after this (ms since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// READ_UNCOMMITTED, as kafka-consumer-groups and the admin client use for end offsets.
pub(crate) const READ_UNCOMMITTED: i8 = 0;
/// READ_COMMITTED.
pub(crate) const READ_COMMITTED: i8 = 1;

/// The distinct topics of `partitions`, sorted: what a Metadata request for them names.
pub(crate) fn topics_of<'a>(partitions: impl IntoIterator<Item = &'a Tp>) -> Vec<String> {
    partitions
        .into_iter()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The log start and log end (high watermark) offsets of `partitions`.
pub(crate) async fn log_bounds(
    client: &mut Client,
    cluster: &Cluster,
    partitions: &[Tp],
) -> Result<(BTreeMap<Tp, i64>, BTreeMap<Tp, i64>), CliError> {
    let start = list_offsets(
        client,
        cluster,
        partitions,
        OffsetSpec::Earliest,
        READ_UNCOMMITTED,
    )
    .await?;
    let end = list_offsets(
        client,
        cluster,
        partitions,
        OffsetSpec::Latest,
        READ_UNCOMMITTED,
    )
    .await?;
    Ok((start, end))
}

/// Looks up `spec` for each partition at its leader; retries partitions whose leader
/// moved or is not ready after refreshing metadata, until the request timeout. For a
/// timestamp past the last record the offset is -1, as Kafka answers.
pub(crate) async fn list_offsets(
    client: &mut Client,
    cluster: &Cluster,
    partitions: &[Tp],
    spec: OffsetSpec,
    isolation_level: i8,
) -> Result<BTreeMap<Tp, i64>, CliError> {
    let deadline = Instant::now() + client.request_timeout();
    let mut found = BTreeMap::new();
    let mut pending: BTreeSet<Tp> = partitions.iter().cloned().collect();
    let mut refreshed: Option<Cluster> = None;
    loop {
        let view = refreshed.as_ref().unwrap_or(cluster);
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        let mut last_error = None;
        for (topic, partition) in &pending {
            let Some(meta) = view.topic(topic) else {
                return Err(unknown_partition(topic, *partition));
            };
            if meta.error_code != 0 || !meta.partitions.iter().any(|p| p.index == *partition) {
                return Err(unknown_partition(topic, *partition));
            }
            match meta.leader(*partition) {
                Some(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .entry(topic.clone())
                    .or_default()
                    .push(*partition),
                None => {
                    last_error = Some(CliError::Kafka {
                        context: format!("{topic}-{partition}"),
                        code: ResponseError::LeaderNotAvailable.code(),
                        message: None,
                    })
                }
            }
        }
        for (leader, topics) in by_leader {
            let timeout_ms =
                i32::try_from(client.request_timeout().as_millis()).unwrap_or(i32::MAX);
            let (_, resp) = client
                .send(Target::Node(leader), |v| {
                    let mut req = ListOffsetsRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_topics(
                            topics
                                .iter()
                                .map(|(t, ps)| {
                                    ListOffsetsTopic::default()
                                        .with_name(topic_name(t))
                                        .with_partitions(
                                            ps.iter()
                                                .map(|p| {
                                                    ListOffsetsPartition::default()
                                                        .with_partition_index(*p)
                                                        .with_timestamp(spec.wire())
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        );
                    if v >= 2 {
                        req = req.with_isolation_level(isolation_level);
                    }
                    if v >= 10 {
                        req = req.with_timeout_ms(timeout_ms);
                    }
                    req
                })
                .await?;
            for t in resp.topics {
                let topic = t.name.0.as_str().to_string();
                for p in t.partitions {
                    let tp = (topic.clone(), p.partition_index);
                    if !pending.contains(&tp) {
                        continue;
                    }
                    let result = CliError::check(p.error_code, None, || {
                        format!("{topic}-{}", p.partition_index)
                    });
                    match result {
                        Ok(()) => {
                            pending.remove(&tp);
                            found.insert(tp, p.offset);
                        }
                        Err(e) if is_retriable(p.error_code) => last_error = Some(e),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if pending.is_empty() {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            return Err(last_error.unwrap_or_else(|| {
                CliError::Wait(format!(
                    "no offsets for {} partitions within the request timeout",
                    pending.len()
                ))
            }));
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
        let topics: Vec<String> = pending
            .iter()
            .map(|(t, _)| t.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        refreshed = Some(client.metadata(Some(&topics)).await?);
    }
}

fn unknown_partition(topic: &str, partition: i32) -> CliError {
    CliError::Kafka {
        context: format!("{topic}-{partition}"),
        code: ResponseError::UnknownTopicOrPartition.code(),
        message: None,
    }
}

/// Every committed offset of `group` (OffsetFetch for all topics); partitions without a
/// committed offset are left out.
pub(crate) async fn committed(
    client: &mut Client,
    group: &str,
) -> Result<BTreeMap<Tp, i64>, CliError> {
    let deadline = Instant::now() + client.request_timeout();
    loop {
        let coordinator = client.coordinator(group).await?;
        let (version, resp) = client
            .send(Target::Node(coordinator), |v| {
                if v >= 8 {
                    OffsetFetchRequest::default().with_groups(vec![
                        OffsetFetchRequestGroup::default()
                            .with_group_id(group_id(group))
                            .with_topics(None),
                    ])
                } else {
                    OffsetFetchRequest::default()
                        .with_group_id(group_id(group))
                        .with_topics(None)
                }
            })
            .await?;
        let mut out = BTreeMap::new();
        let mut partitions = Vec::new();
        let code = if version >= 8 {
            let Some(g) = resp.groups.into_iter().next() else {
                return Err(CliError::Protocol {
                    addr: format!("broker {coordinator}"),
                    api: "OffsetFetch",
                    reason: "no group in the answer".to_string(),
                });
            };
            for t in g.topics {
                for p in t.partitions {
                    partitions.push((
                        t.name.0.as_str().to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    ));
                }
            }
            g.error_code
        } else {
            for t in resp.topics {
                for p in t.partitions {
                    partitions.push((
                        t.name.0.as_str().to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    ));
                }
            }
            resp.error_code
        };
        if client
            .retry_coordinator(group, coordinator_moved(code), deadline)
            .await
        {
            continue;
        }
        CliError::check(code, None, || format!("committed offsets of group {group}"))?;
        for (topic, partition, offset, code) in partitions {
            CliError::check(code, None, || {
                format!("committed offset of {topic}-{partition}")
            })?;
            if offset >= 0 {
                out.insert((topic, partition), offset);
            }
        }
        return Ok(out);
    }
}

/// Commits `offsets` for `group` as a client outside the group does: generation -1 and no
/// member id, which the coordinator accepts only while the group has no members. Returns
/// the partitions the coordinator refused, with their error codes.
pub(crate) async fn commit(
    client: &mut Client,
    group: &str,
    offsets: &BTreeMap<Tp, i64>,
) -> Result<Vec<(Tp, i16)>, CliError> {
    let deadline = Instant::now() + client.request_timeout();
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for ((t, p), o) in offsets {
        by_topic.entry(t.as_str()).or_default().push((*p, *o));
    }
    loop {
        let coordinator = client.coordinator(group).await?;
        let (_, resp) = client
            .send(Target::Node(coordinator), |_| {
                OffsetCommitRequest::default()
                    .with_group_id(group_id(group))
                    .with_generation_id_or_member_epoch(-1)
                    .with_member_id(str_bytes(""))
                    .with_topics(
                        by_topic
                            .iter()
                            .map(|(t, ps)| {
                                OffsetCommitRequestTopic::default()
                                    .with_name(topic_name(t))
                                    .with_partitions(
                                        ps.iter()
                                            .map(|(p, o)| {
                                                OffsetCommitRequestPartition::default()
                                                    .with_partition_index(*p)
                                                    .with_committed_offset(*o)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    )
            })
            .await?;
        let mut refused = Vec::new();
        for t in resp.topics {
            for p in t.partitions {
                if p.error_code != 0 {
                    refused.push((
                        (t.name.0.as_str().to_string(), p.partition_index),
                        p.error_code,
                    ));
                }
            }
        }
        let moved = !refused.is_empty() && refused.iter().all(|(_, c)| coordinator_moved(*c));
        if client.retry_coordinator(group, moved, deadline).await {
            continue;
        }
        return Ok(refused);
    }
}
