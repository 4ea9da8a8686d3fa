//! `sluice group list|describe|delete`: ListGroups at every broker; ConsumerGroupDescribe,
//! ShareGroupDescribe or DescribeGroups (see `group_describe`), OffsetFetch (share groups:
//! DescribeShareGroupOffsets) and DeleteGroups at the coordinator; ListOffsets at the
//! leaders for lag.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::{DeleteGroupsRequest, ListGroupsRequest};
use kafka_protocol::ResponseError;

use crate::args::GroupAction;
use crate::client::{group_id, Client, Target};
use crate::error::CliError;
use crate::group_describe::{describe_group, GroupDescription, Member};
use crate::offsets::{committed, list_offsets, topics_of, OffsetSpec, Tp, READ_UNCOMMITTED};
use crate::output::{or_dash, print, Table};
use crate::reset;
use crate::share_group;

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

async fn describe(client: &mut Client, group: &str) -> Result<(), CliError> {
    let described = describe_group(client, group).await?;
    if described.protocol_type == share_group::SHARE {
        return describe_share(client, group, &described).await;
    }
    let offsets = committed(client, group).await?;
    let state = described.state.clone();
    if state == "Dead" && offsets.is_empty() {
        return Err(CliError::Kafka {
            context: format!("group {group}"),
            code: ResponseError::GroupIdNotFound.code(),
            message: Some("the group does not exist".to_string()),
        });
    }
    let protocol_type = described.protocol_type.clone();
    let members: &[Member] = &described.members;
    let mut owner: BTreeMap<&Tp, &Member> = BTreeMap::new();
    for m in members {
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
        or_empty(&described.protocol)
    ));
    out.push_str(&format!("Members:        {}\n", members.len()));
    if !members.is_empty() {
        let mut table = Table::new(&["MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"]);
        for m in members {
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

/// A share group: its members (each may read every partition it is assigned), and per
/// partition the share-partition start offset (records before it are all done), the log
/// end offset and the records between them.
async fn describe_share(
    client: &mut Client,
    group: &str,
    described: &GroupDescription,
) -> Result<(), CliError> {
    let starts = share_group::start_offsets(client, group, None).await?;
    let mut members_of: BTreeMap<Tp, usize> = BTreeMap::new();
    for m in &described.members {
        for tp in &m.partitions {
            *members_of.entry(tp.clone()).or_default() += 1;
        }
    }
    let partitions: BTreeSet<Tp> = starts.keys().chain(members_of.keys()).cloned().collect();
    let topics = topics_of(&partitions);
    let end_offsets = if topics.is_empty() {
        BTreeMap::new()
    } else {
        let cluster = client.metadata(Some(&topics)).await?;
        let live: Vec<Tp> = partitions.iter().cloned().collect();
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
    out.push_str(&format!("State:          {}\n", described.state));
    out.push_str("Protocol type:  share\n");
    out.push_str(&format!(
        "Assignor:       {}\n",
        or_empty(&described.protocol)
    ));
    out.push_str(&format!("Members:        {}\n", described.members.len()));
    if !described.members.is_empty() {
        let mut table = Table::new(&["MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"]);
        for m in &described.members {
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
        "START-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "MEMBERS",
    ]);
    for tp in &partitions {
        let start = starts.get(tp).copied();
        let end = end_offsets.get(tp).copied();
        let lag = match (start, end) {
            (Some(s), Some(e)) => Some((e - s).max(0)),
            _ => None,
        };
        table.row(vec![
            tp.0.clone(),
            tp.1.to_string(),
            or_dash(start),
            or_dash(end),
            or_dash(lag),
            members_of.get(tp).copied().unwrap_or(0).to_string(),
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

    #[test]
    fn assignments_print_by_topic() {
        let got = vec![
            ("orders".to_string(), 2),
            ("audit".to_string(), 1),
            ("orders".to_string(), 0),
        ];
        assert_eq!(assignment_text(&got), "audit(1) orders(0,2)");
        assert_eq!(assignment_text(&[]), "-");
    }
}
