//! `sluice group list|describe|delete`: ListGroups at every broker; DescribeGroups,
//! OffsetFetch and DeleteGroups at the coordinator; ListOffsets at the leaders for lag.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest};
use kafka_protocol::protocol::{Decodable, Message};
use kafka_protocol::ResponseError;

use super::args::GroupAction;
use super::client::{group_id, Client, Target, RETRY_BACKOFF};
use super::error::CliError;
use super::offsets::{committed, list_offsets, topics_of, OffsetSpec, Tp, READ_UNCOMMITTED};
use super::output::{or_dash, print, Table};
use super::reset;

/// Runs one `sluice group` action.
pub(crate) async fn run(client: &mut Client, action: GroupAction) -> Result<(), CliError> {
    match action {
        GroupAction::List => list(client).await,
        GroupAction::Describe { group } => describe(client, &group).await,
        GroupAction::ResetOffsets(args) => reset::run(client, args).await,
        GroupAction::Delete { groups } => delete(client, &groups).await,
    }
}

async fn list(client: &mut Client) -> Result<(), CliError> {
    // Each broker lists only the groups it coordinates.
    let mut groups: BTreeMap<String, (Option<String>, String)> = BTreeMap::new();
    for id in client.broker_ids().await? {
        let (version, resp) = client
            .send(Target::Node(id), |_| ListGroupsRequest::default())
            .await?;
        CliError::check(resp.error_code, None, || {
            format!("ListGroups at broker {id}")
        })?;
        for g in resp.groups {
            // group_state is in v4+ only.
            let state = (version >= 4).then(|| g.group_state.as_str().to_string());
            groups.insert(
                g.group_id.0.as_str().to_string(),
                (state, g.protocol_type.as_str().to_string()),
            );
        }
    }
    let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
    for (group, (state, protocol_type)) in groups {
        let protocol_type = if protocol_type.is_empty() {
            "-".to_string()
        } else {
            protocol_type
        };
        table.row(vec![group, or_dash(state), protocol_type]);
    }
    print(&table.render())
}

/// DescribeGroups for one group at its coordinator.
pub(crate) async fn describe_group(
    client: &mut Client,
    group: &str,
) -> Result<DescribedGroup, CliError> {
    let deadline = Instant::now() + client.request_timeout();
    loop {
        let coordinator = client.coordinator(group).await?;
        let (_, resp) = client
            .send(Target::Node(coordinator), |_| {
                DescribeGroupsRequest::default().with_groups(vec![group_id(group)])
            })
            .await?;
        let described = resp
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Protocol {
                addr: format!("broker {coordinator}"),
                api: "DescribeGroups",
                reason: format!("no answer for group {group}"),
            })?;
        let moved = described.error_code == ResponseError::NotCoordinator.code()
            || described.error_code == ResponseError::CoordinatorLoadInProgress.code()
            || described.error_code == ResponseError::CoordinatorNotAvailable.code();
        if moved && Instant::now() < deadline {
            client.forget_coordinator(group);
            tokio::time::sleep(RETRY_BACKOFF).await;
            continue;
        }
        CliError::check(
            described.error_code,
            described.error_message.as_ref(),
            || format!("group {group}"),
        )?;
        return Ok(described);
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

/// A member as the describe table shows it.
struct Member {
    id: String,
    client_id: String,
    host: String,
    partitions: Vec<Tp>,
}

async fn describe(client: &mut Client, group: &str) -> Result<(), CliError> {
    let described = describe_group(client, group).await?;
    let offsets = committed(client, group).await?;
    let state = described.group_state.as_str().to_string();
    if state == "Dead" && offsets.is_empty() {
        return Err(CliError::Kafka {
            context: format!("group {group}"),
            code: ResponseError::GroupIdNotFound.code(),
            message: Some("the group does not exist".to_string()),
        });
    }
    let protocol_type = described.protocol_type.as_str().to_string();
    let members: Vec<Member> = described
        .members
        .iter()
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
        .collect();
    let mut owner: BTreeMap<&Tp, &Member> = BTreeMap::new();
    for m in &members {
        for tp in &m.partitions {
            owner.insert(tp, m);
        }
    }
    let partitions: BTreeSet<Tp> = offsets
        .keys()
        .cloned()
        .chain(owner.keys().map(|tp| (*tp).clone()))
        .collect();
    let topics = topics_of(&partitions);
    let end_offsets = if topics.is_empty() {
        BTreeMap::new()
    } else {
        let cluster = client.metadata(Some(&topics)).await?;
        // Partitions of deleted topics have no log end offset; they show "-".
        let live: Vec<Tp> = partitions
            .iter()
            .filter(|(t, p)| {
                cluster.topic(t).is_some_and(|m| {
                    m.error_code == 0 && m.partitions.iter().any(|x| x.index == *p)
                })
            })
            .cloned()
            .collect();
        list_offsets(
            client,
            &cluster,
            &live,
            OffsetSpec::Latest,
            READ_UNCOMMITTED,
        )
        .await?
    };

    let mut out = String::new();
    out.push_str(&format!("Group:          {group}\n"));
    out.push_str(&format!("State:          {state}\n"));
    out.push_str(&format!("Protocol type:  {}\n", or_empty(&protocol_type)));
    out.push_str(&format!(
        "Protocol:       {}\n",
        or_empty(described.protocol_data.as_str())
    ));
    out.push_str(&format!("Members:        {}\n", members.len()));
    if !members.is_empty() {
        let mut table = Table::new(&["MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"]);
        for m in &members {
            table.row(vec![
                m.id.clone(),
                m.client_id.clone(),
                m.host.clone(),
                assignment_text(&m.partitions),
            ]);
        }
        out.push('\n');
        out.push_str(&table.render());
    }
    out.push('\n');
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    for tp in &partitions {
        let current = offsets.get(tp).copied();
        let end = end_offsets.get(tp).copied();
        let lag = match (current, end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        };
        let m = owner.get(tp);
        table.row(vec![
            tp.0.clone(),
            tp.1.to_string(),
            or_dash(current),
            or_dash(end),
            or_dash(lag),
            or_dash(m.map(|m| m.id.clone())),
            or_dash(m.map(|m| m.host.clone())),
            or_dash(m.map(|m| m.client_id.clone())),
        ]);
    }
    out.push_str(&table.render());
    print(&out)
}

fn or_empty(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

/// `topic(0,1) other(3)`.
fn assignment_text(partitions: &[Tp]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t).or_default().push(*p);
    }
    if by_topic.is_empty() {
        return "-".to_string();
    }
    by_topic
        .into_iter()
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            format!(
                "{t}({})",
                ps.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn delete(client: &mut Client, groups: &[String]) -> Result<(), CliError> {
    let mut first_error = None;
    for group in groups {
        let coordinator = client.coordinator(group).await?;
        let (_, resp) = client
            .send(Target::Node(coordinator), |_| {
                DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)])
            })
            .await?;
        for r in resp.results {
            let name = r.group_id.0.as_str().to_string();
            match CliError::check(r.error_code, None, || format!("group {name}")) {
                Ok(()) => print(&format!("Deleted group {name}.\n"))?,
                Err(e) if first_error.is_none() => first_error = Some(e),
                Err(e) => eprintln!("error: {e}"),
            }
        }
    }
    first_error.map_or(Ok(()), Err)
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
                .with_topic(super::super::client::topic_name("orders"))
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
        assert_eq!(assignment_text(&got), "orders(0,2)");
        assert_eq!(assigned_partitions(&Bytes::new()), Some(vec![]));
    }
}
