//! Describing a group as Kafka's admin client does: ConsumerGroupDescribe first (KIP-848
//! groups), then ShareGroupDescribe (share groups), and DescribeGroups when those answer
//! GROUP_ID_NOT_FOUND (a classic group, or none) or the broker does not speak them.

use std::time::Instant;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, DescribeGroupsRequest};
use kafka_protocol::protocol::{Decodable, Message};
use kafka_protocol::ResponseError;

use crate::client::{coordinator_moved, group_id, Client, Target};
use crate::error::CliError;
use crate::offsets::Tp;

/// A group as `group describe` and `reset-offsets` see it, from either API.
#[derive(Debug, Default)]
pub(crate) struct GroupDescription {
    /// Kafka's state name (`Stable`, `Empty`, `Dead`, `Reconciling`...).
    pub(crate) state: String,
    /// `consumer` for both kinds of consumer group, `share` for a share group; empty for none.
    pub(crate) protocol_type: String,
    /// The classic group's protocol, or the KIP-848 group's server-side assignor.
    pub(crate) protocol: String,
    pub(crate) members: Vec<Member>,
}

/// One member of a group.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) host: String,
    pub(crate) partitions: Vec<Tp>,
}

/// Describes `group` at its coordinator.
pub(crate) async fn describe_group(
    client: &mut Client,
    group: &str,
) -> Result<GroupDescription, CliError> {
    let other_kind = |e: &CliError| {
        e.is(ResponseError::GroupIdNotFound) || matches!(e, CliError::Unsupported { .. })
    };
    match consumer_group_describe(client, group).await {
        Err(e) if other_kind(&e) => match crate::share_group::describe(client, group).await {
            Err(e) if other_kind(&e) => describe_classic(client, group).await,
            other => other,
        },
        other => other,
    }
}

async fn consumer_group_describe(
    client: &mut Client,
    group: &str,
) -> Result<GroupDescription, CliError> {
    let deadline = Instant::now() + client.request_timeout();
    loop {
        let coordinator = client.coordinator(group).await?;
        let (_, resp) = client
            .send(Target::Node(coordinator), |_| {
                ConsumerGroupDescribeRequest::default().with_group_ids(vec![group_id(group)])
            })
            .await?;
        let d = resp
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| no_answer(coordinator, "ConsumerGroupDescribe", group))?;
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
            protocol_type: "consumer".to_string(),
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

async fn describe_classic(client: &mut Client, group: &str) -> Result<GroupDescription, CliError> {
    let deadline = Instant::now() + client.request_timeout();
    loop {
        let coordinator = client.coordinator(group).await?;
        let (_, resp) = client
            .send(Target::Node(coordinator), |_| {
                DescribeGroupsRequest::default().with_groups(vec![group_id(group)])
            })
            .await?;
        let d = resp
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| no_answer(coordinator, "DescribeGroups", group))?;
        if client
            .retry_coordinator(group, coordinator_moved(d.error_code), deadline)
            .await
        {
            continue;
        }
        CliError::check(d.error_code, d.error_message.as_ref(), || {
            format!("group {group}")
        })?;
        let protocol_type = d.protocol_type.as_str().to_string();
        return Ok(GroupDescription {
            state: d.group_state.as_str().to_string(),
            protocol: d.protocol_data.as_str().to_string(),
            members: d
                .members
                .into_iter()
                .map(|m| Member {
                    id: m.member_id.as_str().to_string(),
                    client_id: m.client_id.as_str().to_string(),
                    host: m.client_host.as_str().to_string(),
                    partitions: if protocol_type == "consumer" {
                        assigned_partitions(&m.member_assignment).unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            protocol_type,
        });
    }
}

fn no_answer(coordinator: i32, api: &'static str, group: &str) -> CliError {
    CliError::Protocol {
        addr: format!("broker {coordinator}"),
        api,
        reason: format!("no answer for group {group}"),
    }
}

/// The partitions in a consumer-protocol assignment: a version, then the assignment at
/// that version. `None` for bytes that do not decode (another protocol's, say).
fn assigned_partitions(assignment: &Bytes) -> Option<Vec<Tp>> {
    let mut buf = assignment.clone();
    if buf.remaining() < 2 {
        return Some(Vec::new());
    }
    // Newer versions only add fields at the end: read them at the newest we know.
    let version = buf
        .get_i16()
        .clamp(0, ConsumerProtocolAssignment::VERSIONS.max);
    let decoded = ConsumerProtocolAssignment::decode(&mut buf, version).ok()?;
    Some(
        decoded
            .assigned_partitions
            .into_iter()
            .flat_map(|tp| {
                let topic = tp.topic.0.as_str().to_string();
                tp.partitions.into_iter().map(move |p| (topic.clone(), p))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn consumer_assignments_decode_at_their_version() {
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default()
                .with_topic(crate::client::topic_name("orders"))
                .with_partitions(vec![0, 2]),
        ]);
        let mut buf = bytes::BytesMut::new();
        buf.extend_from_slice(&1i16.to_be_bytes());
        a.encode(&mut buf, 1).expect("encodes");
        let got = assigned_partitions(&buf.freeze()).expect("decodes");
        assert_eq!(
            got,
            vec![("orders".to_string(), 0), ("orders".to_string(), 2)]
        );
        assert_eq!(assigned_partitions(&Bytes::new()), Some(vec![]));
    }
}
