//! The bytes of partitions on their leaders' disks and, with tiered storage, in the remote
//! tier: DescribeLogDirs, whose `remote:` entry lists what a broker has in the remote tier.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{DescribeLogDirsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::client::{Client, Target};
use crate::error::CliError;
use crate::metadata::Cluster;
use crate::offsets::Tp;

/// Local and remote bytes of one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LogSize {
    /// Bytes in the leader's data directory.
    pub(crate) local: i64,
    /// Bytes in the remote tier.
    pub(crate) remote: i64,
}

/// Sizes of `partitions`, asked of each one's leader.
pub(crate) async fn log_sizes(
    client: &mut Client,
    cluster: &Cluster,
    partitions: &[Tp],
) -> Result<BTreeMap<Tp, LogSize>, CliError> {
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    for (topic, partition) in partitions {
        let leader = cluster
            .topic(topic)
            .and_then(|t| t.partitions.iter().find(|p| p.index == *partition))
            .map_or(-1, |p| p.leader);
        if leader >= 0 {
            by_leader
                .entry(leader)
                .or_default()
                .entry(topic.clone())
                .or_default()
                .push(*partition);
        }
    }
    let mut out = BTreeMap::new();
    for (leader, topics) in by_leader {
        let (_, resp) = client
            .send(Target::Node(leader), |_| {
                DescribeLogDirsRequest::default().with_topics(Some(
                    topics
                        .iter()
                        .map(|(t, ps)| {
                            DescribableLogDirTopic::default()
                                .with_topic(TopicName(StrBytes::from_string(t.clone())))
                                .with_partitions(ps.clone())
                        })
                        .collect(),
                ))
            })
            .await?;
        for dir in resp.results.iter().filter(|d| d.error_code == 0) {
            let remote = dir.log_dir.starts_with("remote:");
            for t in &dir.topics {
                for p in &t.partitions {
                    let size: &mut LogSize = out
                        .entry((t.name.to_string(), p.partition_index))
                        .or_default();
                    if remote {
                        size.remote += p.partition_size;
                    } else {
                        size.local += p.partition_size;
                    }
                }
            }
        }
    }
    Ok(out)
}
