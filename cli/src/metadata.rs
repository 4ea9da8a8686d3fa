//! The cluster as a Metadata response describes it: brokers, controller, topics,
//! partition leaders, replicas and ISR.

use std::collections::BTreeMap;

use base64::Engine;
use kafka_protocol::messages::MetadataResponse;
use kafka_protocol::protocol::StrBytes;

use crate::error::CliError;

/// One partition's placement.
#[derive(Debug, Clone)]
pub(crate) struct PartitionMeta {
    pub(crate) index: i32,
    /// -1 when the partition has no leader.
    pub(crate) leader: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
    pub(crate) error_code: i16,
}

/// One topic, or the error the broker gave for it.
#[derive(Debug, Clone)]
pub(crate) struct TopicMeta {
    pub(crate) name: String,
    pub(crate) id: uuid::Uuid,
    pub(crate) internal: bool,
    pub(crate) error_code: i16,
    /// Sorted by partition index.
    pub(crate) partitions: Vec<PartitionMeta>,
}

impl TopicMeta {
    /// The topic id as Kafka's tools print it: URL-safe base64 without padding.
    pub(crate) fn id_string(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.id.as_bytes())
    }

    /// The leader of a partition, if the topic has that partition and it has a leader.
    pub(crate) fn leader(&self, partition: i32) -> Option<i32> {
        self.partitions
            .iter()
            .find(|p| p.index == partition)
            .map(|p| p.leader)
            .filter(|l| *l >= 0)
    }
}

/// What one Metadata answer says.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    /// host:port per broker id.
    pub(crate) brokers: BTreeMap<i32, String>,
    /// -1 when the broker does not say.
    pub(crate) controller_id: i32,
    pub(crate) topics: Vec<TopicMeta>,
}

impl Cluster {
    /// Converts a Metadata response.
    pub(crate) fn from_response(resp: MetadataResponse) -> Cluster {
        let brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, host_port(&b.host, b.port)))
            .collect();
        let topics = resp
            .topics
            .into_iter()
            .map(|t| {
                let mut partitions: Vec<PartitionMeta> = t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionMeta {
                        index: p.partition_index,
                        leader: p.leader_id.0,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        error_code: p.error_code,
                    })
                    .collect();
                partitions.sort_by_key(|p| p.index);
                TopicMeta {
                    name: t.name.map(|n| n.0.as_str().to_string()).unwrap_or_default(),
                    id: t.topic_id,
                    internal: t.is_internal,
                    error_code: t.error_code,
                    partitions,
                }
            })
            .collect();
        Cluster {
            brokers,
            controller_id: resp.controller_id.0,
            topics,
        }
    }

    /// The topic named `name`, if the answer has it.
    pub(crate) fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// The topic named `name`, or the error the broker gave for it
    /// (UNKNOWN_TOPIC_OR_PARTITION if the answer does not mention it).
    pub(crate) fn require_topic(&self, name: &str) -> Result<&TopicMeta, CliError> {
        match self.topic(name) {
            Some(t) if t.error_code == 0 => Ok(t),
            Some(t) => CliError::check(t.error_code, None, || format!("topic {name}")).map(|()| t),
            None => Err(CliError::Kafka {
                context: format!("topic {name}"),
                code: kafka_protocol::ResponseError::UnknownTopicOrPartition.code(),
                message: None,
            }),
        }
    }
}

/// `host:port`, bracketing IPv6 literals.
pub(crate) fn host_port(host: &StrBytes, port: i32) -> String {
    if host.contains(':') {
        format!("[{}]:{port}", host.as_str())
    } else {
        format!("{}:{port}", host.as_str())
    }
}
