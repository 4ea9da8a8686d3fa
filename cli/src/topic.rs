//! `sluice topic ...`: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs and
//! IncrementalAlterConfigs at the controller; Metadata and ListOffsets for the rest.

use std::collections::BTreeMap;
use std::time::Instant;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest,
};
use kafka_protocol::ResponseError;

use crate::args::TopicAction;
use crate::client::{str_bytes, topic_name, Client, Target, RETRY_BACKOFF};
use crate::error::CliError;
use crate::metadata::{Cluster, TopicMeta};
use crate::offsets::{log_bounds, Tp};
use crate::output::{print, Progress};
use crate::partition_filter::PartitionFilter;

/// DescribeConfigs / IncrementalAlterConfigs resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// DescribeConfigs config source of a value nobody set (Kafka's `isDefault`).
const SOURCE_DEFAULT: i8 = 5;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
/// How many times a controller request is re-sent after NOT_CONTROLLER.
const CONTROLLER_ATTEMPTS: usize = 3;

/// Runs one `sluice topic` action.
pub(crate) async fn run(client: &mut Client, action: TopicAction) -> Result<(), CliError> {
    match action {
        TopicAction::Create {
            name,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let configs = parse_pairs(&configs, "--config")?;
            create(
                client,
                &name,
                partitions,
                replication_factor,
                &configs,
                if_not_exists,
            )
            .await
        }
        TopicAction::List { internal } => list(client, internal).await,
        TopicAction::Describe {
            names,
            under_replicated_partitions,
            unavailable_partitions,
            under_min_isr_partitions,
            at_min_isr_partitions,
        } => {
            let filter = PartitionFilter::from_flags(
                under_replicated_partitions,
                unavailable_partitions,
                under_min_isr_partitions,
                at_min_isr_partitions,
            )?;
            describe(client, &names, filter).await
        }
        TopicAction::Delete { names } => delete(client, &names).await,
        TopicAction::AlterConfig { name, set, delete } => {
            let set = parse_pairs(&set, "--set")?;
            alter_config(client, &name, &set, &delete).await
        }
        TopicAction::AddPartitions { name, total } => add_partitions(client, &name, total).await,
        TopicAction::Reassign {
            name,
            partition,
            replicas,
            cancel,
            wait,
        } => {
            let target = (!cancel).then_some(replicas);
            crate::placement::reassign(client, &name, partition, target, wait).await
        }
        TopicAction::Reassignments => crate::placement::list(client).await,
        TopicAction::Elect {
            name,
            partitions,
            unclean,
        } => crate::placement::elect(client, &name, &partitions, unclean).await,
    }
}

/// Splits `key=value` arguments.
pub(crate) fn parse_pairs(args: &[String], flag: &str) -> Result<Vec<(String, String)>, CliError> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| CliError::Usage(format!("{flag} {a}: expected KEY=VALUE")))
        })
        .collect()
}

fn wait_ms(client: &Client) -> i32 {
    i32::try_from(client.request_timeout().as_millis()).unwrap_or(i32::MAX)
}

async fn create(
    client: &mut Client,
    name: &str,
    partitions: Option<i32>,
    replication_factor: Option<i16>,
    configs: &[(String, String)],
    if_not_exists: bool,
) -> Result<(), CliError> {
    let timeout_ms = wait_ms(client);
    let wait = client.request_timeout();
    let mut attempt = 0;
    let (version, result) = loop {
        attempt += 1;
        let (version, resp) = client
            .send_waiting(Target::Controller, wait, |_| {
                CreateTopicsRequest::default()
                    .with_timeout_ms(timeout_ms)
                    .with_topics(vec![CreatableTopic::default()
                        .with_name(topic_name(name))
                        // -1: the broker's num.partitions / default.replication.factor (v4+).
                        .with_num_partitions(partitions.unwrap_or(-1))
                        .with_replication_factor(replication_factor.unwrap_or(-1))
                        .with_configs(
                            configs
                                .iter()
                                .map(|(k, v)| {
                                    CreatableTopicConfig::default()
                                        .with_name(str_bytes(k))
                                        .with_value(Some(str_bytes(v)))
                                })
                                .collect(),
                        )])
            })
            .await?;
        if version < 4 && (partitions.is_none() || replication_factor.is_none()) {
            return Err(CliError::Usage(format!(
                "the broker speaks CreateTopics v{version}, which has no broker defaults: \
                 give --partitions and --replication-factor"
            )));
        }
        let result = resp
            .topics
            .into_iter()
            .find(|t| t.name.0.as_str() == name)
            .ok_or_else(|| CliError::Protocol {
                addr: "the controller".to_string(),
                api: "CreateTopics",
                reason: format!("no result for topic {name}"),
            })?;
        if result.error_code == ResponseError::NotController.code() && attempt < CONTROLLER_ATTEMPTS
        {
            client.forget_controller();
            continue;
        }
        break (version, result);
    };
    if result.error_code == ResponseError::TopicAlreadyExists.code() && if_not_exists {
        eprintln!("Topic {name} already exists.");
        return Ok(());
    }
    CliError::check(result.error_code, result.error_message.as_ref(), || {
        format!("topic {name}")
    })?;
    let expected = match (version >= 5 && result.num_partitions > 0, partitions) {
        (true, _) => Some(result.num_partitions),
        (false, p) => p,
    };
    wait_for_leaders(client, name, expected).await?;
    print(&format!("Created topic {name}.\n"))
}

/// Waits until Metadata shows `name` with `expected` partitions (any number if `None`),
/// each with a leader.
async fn wait_for_leaders(
    client: &mut Client,
    name: &str,
    expected: Option<i32>,
) -> Result<(), CliError> {
    let deadline = Instant::now() + client.request_timeout();
    let mut progress = Progress::new();
    let topics = [name.to_string()];
    loop {
        let cluster = client.metadata(Some(&topics)).await?;
        let (ready, total) = match cluster.topic(name) {
            Some(t) if t.error_code == 0 => (
                t.partitions
                    .iter()
                    .filter(|p| p.error_code == 0 && p.leader >= 0)
                    .count(),
                t.partitions.len(),
            ),
            _ => (0, 0),
        };
        let want = expected.map(|e| e.max(0) as usize).unwrap_or(total.max(1));
        if total >= want && ready == total {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CliError::Wait(format!(
                "topic {name}: {ready} of {want} partitions have a leader after {} ms",
                client.request_timeout().as_millis()
            )));
        }
        progress.tick(|| format!("waiting for leaders of {name}: {ready}/{want} partitions"));
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
}

async fn list(client: &mut Client, internal: bool) -> Result<(), CliError> {
    let cluster = client.metadata(None).await?;
    let mut names: Vec<&str> = cluster
        .topics
        .iter()
        .filter(|t| t.error_code == 0 && (internal || !t.internal))
        .map(|t| t.name.as_str())
        .collect();
    names.sort_unstable();
    let mut out = String::new();
    for n in names {
        out.push_str(n);
        out.push('\n');
    }
    print(&out)
}

/// The metadata of each named topic, in the given order; an error for the first one
/// that does not exist.
fn named_topics<'a>(
    cluster: &'a Cluster,
    names: &[String],
) -> Result<Vec<&'a TopicMeta>, CliError> {
    names.iter().map(|n| cluster.require_topic(n)).collect()
}

async fn describe(
    client: &mut Client,
    names: &[String],
    filter: PartitionFilter,
) -> Result<(), CliError> {
    let cluster = client
        .metadata(if names.is_empty() { None } else { Some(names) })
        .await?;
    let topics: Vec<&TopicMeta> = if names.is_empty() {
        let mut all: Vec<&TopicMeta> = cluster
            .topics
            .iter()
            .filter(|t| t.error_code == 0 && !t.internal)
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    } else {
        named_topics(&cluster, names)?
    };
    if topics.is_empty() {
        return Ok(());
    }
    let topic_names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    let described = topic_configs(client, &topic_names).await?;
    // Leaderless partitions are shown with "-" offsets instead of failing the whole describe.
    let with_leader: Vec<Tp> = topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.leader >= 0)
                .map(|p| (t.name.clone(), p.index))
        })
        .collect();
    let (start, end) = log_bounds(client, &cluster, &with_leader).await?;
    // Tiered topics also show where their bytes are: the leader's disk and the remote tier.
    let tiered: Vec<Tp> = with_leader
        .iter()
        .filter(|(t, _)| {
            described.get(t).is_some_and(|entries| {
                entries.iter().any(|c| {
                    c.name == "remote.storage.enable" && c.value.as_deref() == Some("true")
                })
            })
        })
        .cloned()
        .collect();
    let sizes = if tiered.is_empty() {
        BTreeMap::new()
    } else {
        crate::log_sizes::log_sizes(client, &cluster, &tiered).await?
    };
    let mut out = String::new();
    for t in topics {
        let rf = t.partitions.first().map(|p| p.replicas.len()).unwrap_or(0);
        let entries = described
            .get(&t.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let cfg = overrides_of(entries)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        // A report lists its partitions only, as kafka-topics.sh does.
        if filter == PartitionFilter::All {
            out.push_str(&format!(
                "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}\n",
                t.name,
                t.id_string(),
                t.partitions.len(),
                rf,
                cfg
            ));
        }
        let topic_min_isr = entries
            .iter()
            .find(|c| c.name == MIN_INSYNC_REPLICAS)
            .and_then(|c| c.value.as_deref()?.parse().ok())
            .unwrap_or(1);
        for p in t
            .partitions
            .iter()
            .filter(|p| filter.keeps(p, &cluster.brokers, topic_min_isr))
        {
            let tp = (t.name.clone(), p.index);
            let offset = |m: &BTreeMap<Tp, i64>| {
                m.get(&tp)
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "-".into())
            };
            out.push_str(&format!(
                "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\tLogStartOffset: {}\tLogEndOffset: {}",
                t.name,
                p.index,
                if p.leader >= 0 { p.leader.to_string() } else { "none".to_string() },
                join_ids(&p.replicas),
                join_ids(&p.isr),
                offset(&start),
                offset(&end),
            ));
            if let Some(size) = sizes.get(&tp) {
                out.push_str(&format!(
                    "\tLocalSize: {}\tRemoteSize: {}",
                    size.local, size.remote
                ));
            }
            out.push('\n');
        }
    }
    print(&out)
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// One config of a topic, as DescribeConfigs describes it.
struct ConfigEntry {
    name: String,
    value: Option<String>,
    sensitive: bool,
    default: bool,
}

/// Every config of each topic, in one DescribeConfigs.
async fn topic_configs(
    client: &mut Client,
    topics: &[String],
) -> Result<BTreeMap<String, Vec<ConfigEntry>>, CliError> {
    let (_, resp) = client
        .send(Target::Controller, |_| {
            DescribeConfigsRequest::default().with_resources(
                topics
                    .iter()
                    .map(|t| {
                        DescribeConfigsResource::default()
                            .with_resource_type(RESOURCE_TOPIC)
                            .with_resource_name(str_bytes(t))
                            .with_configuration_keys(None)
                    })
                    .collect(),
            )
        })
        .await?;
    let mut out = BTreeMap::new();
    for r in resp.results {
        let topic = r.resource_name.as_str().to_string();
        CliError::check(r.error_code, r.error_message.as_ref(), || {
            format!("configs of topic {topic}")
        })?;
        let entries = r
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.as_str().to_string(),
                value: c.value.map(|v| v.as_str().to_string()),
                sensitive: c.is_sensitive,
                default: c.config_source == SOURCE_DEFAULT,
            })
            .collect();
        out.insert(topic, entries);
    }
    Ok(out)
}

/// The configs that are not Kafka's defaults (overrides, and broker-wide settings from
/// the broker's properties), sorted by name.
fn overrides_of(entries: &[ConfigEntry]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = entries
        .iter()
        .filter(|c| !c.default)
        .map(|c| {
            let value = match (c.sensitive, &c.value) {
                (true, _) => "(sensitive)".to_string(),
                (false, Some(v)) => v.clone(),
                (false, None) => "null".to_string(),
            };
            (c.name.clone(), value)
        })
        .collect();
    out.sort();
    out
}

const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

async fn delete(client: &mut Client, names: &[String]) -> Result<(), CliError> {
    let timeout_ms = wait_ms(client);
    let wait = client.request_timeout();
    let mut attempt = 0;
    let results = loop {
        attempt += 1;
        let (_, resp) = client
            .send_waiting(Target::Controller, wait, |v| {
                let req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
                if v >= 6 {
                    req.with_topics(
                        names
                            .iter()
                            .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                            .collect(),
                    )
                } else {
                    req.with_topic_names(names.iter().map(|n| topic_name(n)).collect())
                }
            })
            .await?;
        let moved = resp
            .responses
            .iter()
            .any(|r| r.error_code == ResponseError::NotController.code());
        if moved && attempt < CONTROLLER_ATTEMPTS {
            client.forget_controller();
            continue;
        }
        break resp.responses;
    };
    let mut first_error = None;
    let mut deleted = Vec::new();
    for r in results {
        let name = r.name.map(|n| n.0.as_str().to_string()).unwrap_or_default();
        match CliError::check(r.error_code, r.error_message.as_ref(), || {
            format!("topic {name}")
        }) {
            Ok(()) => deleted.push(name),
            Err(e) if first_error.is_none() => first_error = Some(e),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    wait_until_gone(client, &deleted).await?;
    let mut out = String::new();
    for name in &deleted {
        out.push_str(&format!("Deleted topic {name}.\n"));
    }
    print(&out)?;
    first_error.map_or(Ok(()), Err)
}

/// Waits until Metadata no longer lists any of `names`.
async fn wait_until_gone(client: &mut Client, names: &[String]) -> Result<(), CliError> {
    if names.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + client.request_timeout();
    let mut progress = Progress::new();
    loop {
        let cluster = client.metadata(Some(names)).await?;
        let left: Vec<&str> = cluster
            .topics
            .iter()
            .filter(|t| t.error_code != ResponseError::UnknownTopicOrPartition.code())
            .map(|t| t.name.as_str())
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CliError::Wait(format!(
                "topics still listed after deletion: {}",
                left.join(", ")
            )));
        }
        progress.tick(|| format!("waiting for {} to go", left.join(", ")));
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
}

async fn alter_config(
    client: &mut Client,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), CliError> {
    if set.is_empty() && delete.is_empty() {
        return Err(CliError::Usage(
            "nothing to change: give --set KEY=VALUE or --delete KEY".to_string(),
        ));
    }
    let (_, resp) = client
        .send(Target::Controller, |_| {
            let ops = set
                .iter()
                .map(|(k, v)| {
                    AlterableConfig::default()
                        .with_name(str_bytes(k))
                        .with_config_operation(OP_SET)
                        .with_value(Some(str_bytes(v)))
                })
                .chain(delete.iter().map(|k| {
                    AlterableConfig::default()
                        .with_name(str_bytes(k))
                        .with_config_operation(OP_DELETE)
                        .with_value(None)
                }))
                .collect();
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(RESOURCE_TOPIC)
                    .with_resource_name(str_bytes(name))
                    .with_configs(ops),
            ])
        })
        .await?;
    for r in resp.responses {
        CliError::check(r.error_code, r.error_message.as_ref(), || {
            format!("topic {name}")
        })?;
    }
    let configs = topic_configs(client, &[name.to_string()]).await?;
    let mut out = String::new();
    for (k, v) in overrides_of(configs.get(name).map(Vec::as_slice).unwrap_or_default()) {
        out.push_str(&format!("{k}={v}\n"));
    }
    print(&out)
}

async fn add_partitions(client: &mut Client, name: &str, total: i32) -> Result<(), CliError> {
    let timeout_ms = wait_ms(client);
    let wait = client.request_timeout();
    let (_, resp) = client
        .send_waiting(Target::Controller, wait, |_| {
            CreatePartitionsRequest::default()
                .with_timeout_ms(timeout_ms)
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(topic_name(name))
                    .with_count(total)
                    .with_assignments(None)])
        })
        .await?;
    for r in resp.results {
        CliError::check(r.error_code, r.error_message.as_ref(), || {
            format!("topic {name}")
        })?;
    }
    wait_for_leaders(client, name, Some(total)).await?;
    print(&format!("Topic {name} now has {total} partitions.\n"))
}
