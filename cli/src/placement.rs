//! `sluice topic reassign|reassignments|elect`: where a partition's replicas live and
//! which of them leads (AlterPartitionReassignments, ListPartitionReassignments and
//! ElectLeaders at the controller).

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ElectLeadersRequest,
    ListPartitionReassignmentsRequest,
};
use kafka_protocol::ResponseError;
use sluice_protocol::names::error_name;

use crate::client::{topic_name, Client, Target, RETRY_BACKOFF};
use crate::error::CliError;
use crate::output::print;

/// ElectLeaders election types.
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

fn join(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts (or cancels, `target` `None`) the move of one partition; with `wait`, returns
/// once the move is complete.
pub(crate) async fn reassign(
    client: &mut Client,
    name: &str,
    partition: i32,
    target: Option<Vec<i32>>,
    wait: bool,
) -> Result<(), CliError> {
    let timeout_ms = i32::try_from(client.request_timeout().as_millis()).unwrap_or(i32::MAX);
    let replicas = target
        .as_ref()
        .map(|t| t.iter().map(|id| BrokerId(*id)).collect());
    let (_, resp) = client
        .send(Target::Controller, |_| {
            AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(timeout_ms)
                .with_topics(vec![ReassignableTopic::default()
                    .with_name(topic_name(name))
                    .with_partitions(vec![ReassignablePartition::default()
                        .with_partition_index(partition)
                        .with_replicas(replicas)])])
        })
        .await?;
    CliError::check(resp.error_code, resp.error_message.as_ref(), || {
        "reassignment".to_string()
    })?;
    for p in resp.responses.iter().flat_map(|t| &t.partitions) {
        CliError::check(p.error_code, p.error_message.as_ref(), || {
            format!("{name}-{partition}")
        })?;
    }
    let Some(target) = target else {
        return print(&format!("Reassignment of {name}-{partition} cancelled.\n"));
    };
    if !wait {
        return print(&format!(
            "Reassignment of {name}-{partition} to replicas {} started.\n",
            join(&target)
        ));
    }
    let deadline = tokio::time::Instant::now() + client.request_timeout();
    while !ongoing(client, Some((name, partition))).await?.is_empty() {
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::Kafka {
                context: format!("{name}-{partition}"),
                code: ResponseError::RequestTimedOut.code(),
                message: Some("the new replicas have not caught up yet".to_string()),
            });
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
    print(&format!(
        "Reassignment of {name}-{partition} to replicas {} completed.\n",
        join(&target)
    ))
}

/// One line per moving partition: topic, partition, replicas, adding, removing.
type Ongoing = Vec<(String, i32, Vec<i32>, Vec<i32>, Vec<i32>)>;

async fn ongoing(client: &mut Client, only: Option<(&str, i32)>) -> Result<Ongoing, CliError> {
    use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    let timeout_ms = i32::try_from(client.request_timeout().as_millis()).unwrap_or(i32::MAX);
    let (_, resp) = client
        .send(Target::Controller, |_| {
            ListPartitionReassignmentsRequest::default()
                .with_timeout_ms(timeout_ms)
                .with_topics(only.map(|(t, p)| {
                    vec![ListPartitionReassignmentsTopics::default()
                        .with_name(topic_name(t))
                        .with_partition_indexes(vec![p])]
                }))
        })
        .await?;
    CliError::check(resp.error_code, resp.error_message.as_ref(), || {
        "reassignments".to_string()
    })?;
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    Ok(resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.to_string(),
                    p.partition_index,
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )
            })
        })
        .collect())
}

/// Prints the partitions being moved.
pub(crate) async fn list(client: &mut Client) -> Result<(), CliError> {
    let mut out = String::new();
    for (topic, partition, replicas, adding, removing) in ongoing(client, None).await? {
        out.push_str(&format!(
            "Topic: {topic}\tPartition: {partition}\tReplicas: {}\tAdding: {}\tRemoving: {}\n",
            join(&replicas),
            join(&adding),
            join(&removing)
        ));
    }
    print(&out)
}

/// Elects leaders of a topic's partitions and prints what happened to each.
pub(crate) async fn elect(
    client: &mut Client,
    name: &str,
    partitions: &[i32],
    unclean: bool,
) -> Result<(), CliError> {
    let partitions = if partitions.is_empty() {
        let cluster = client.metadata(Some(&[name.to_string()])).await?;
        let topic = cluster.topics.into_iter().find(|t| t.name == name);
        match topic {
            Some(t) if t.error_code == 0 => t.partitions.iter().map(|p| p.index).collect(),
            Some(t) => {
                return CliError::check(t.error_code, None, || format!("topic {name}"));
            }
            None => {
                return CliError::check(ResponseError::UnknownTopicOrPartition.code(), None, || {
                    format!("topic {name}")
                })
            }
        }
    } else {
        partitions.to_vec()
    };
    let timeout_ms = i32::try_from(client.request_timeout().as_millis()).unwrap_or(i32::MAX);
    let (_, resp) = client
        .send(Target::Controller, |_| {
            ElectLeadersRequest::default()
                .with_election_type(if unclean { UNCLEAN } else { PREFERRED })
                .with_timeout_ms(timeout_ms)
                .with_topic_partitions(Some(vec![TopicPartitions::default()
                    .with_topic(topic_name(name))
                    .with_partitions(partitions.clone())]))
        })
        .await?;
    CliError::check(resp.error_code, None, || "leader election".to_string())?;
    let mut out = String::new();
    let mut failed = None;
    for r in resp
        .replica_election_results
        .iter()
        .flat_map(|t| &t.partition_result)
    {
        let code = r.error_code;
        let outcome = if code == 0 {
            "leader elected".to_string()
        } else {
            let name = error_name(code);
            match &r.error_message {
                Some(m) if !m.is_empty() => format!("{name}: {}", m.as_str()),
                _ => name,
            }
        };
        out.push_str(&format!("{name}-{}: {outcome}\n", r.partition_id));
        // Nothing to do is not a failure of the command.
        if code != 0 && code != ResponseError::ElectionNotNeeded.code() {
            failed.get_or_insert(code);
        }
    }
    print(&out)?;
    match failed {
        Some(code) => CliError::check(code, None, || format!("leader election for {name}")),
        None => Ok(()),
    }
}
