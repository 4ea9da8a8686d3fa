//! The cluster's metadata records, as they are stored (JSON values in etcd) and seen.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A new cluster id as Kafka makes one: a random UUID in URL-safe base64 without padding.
pub fn new_cluster_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes())
}

/// The replica id meaning "no leader" (Kafka's `LeaderAndIsr.NO_LEADER`).
pub const NO_LEADER: i32 = -1;

/// A live broker as registered under its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// `node.id`.
    pub node_id: i32,
    /// `broker.rack`, when set.
    pub rack: Option<String>,
    /// The advertised listeners.
    pub endpoints: Vec<Endpoint>,
}

/// One advertised listener of a broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The listener name (`PLAINTEXT`, `INTERNAL`, ...).
    pub listener: String,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: u16,
    /// The listener's security protocol (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`).
    pub security_protocol: String,
}

/// A topic: id, replica assignment per partition (the first replica is the preferred
/// leader), configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// The topic name.
    pub name: String,
    /// The topic id.
    pub topic_id: Uuid,
    /// Replicas of each partition, indexed by partition; the first is the preferred leader.
    pub assignment: Vec<Vec<i32>>,
    /// Topic configs set on the topic (not the broker defaults).
    pub configs: BTreeMap<String, String>,
}

/// Per-partition state; `partition_epoch` is the etcd mod_revision of its key (not stored
/// in the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The leader's replica id, or [`NO_LEADER`].
    pub leader: i32,
    /// The leader epoch: bumped on every leader change.
    pub leader_epoch: i32,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas being added by a reassignment.
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    /// Replicas being removed by a reassignment.
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
    /// The partition epoch: the mod_revision of the partition's key, bumped by every change.
    #[serde(skip)]
    pub partition_epoch: i64,
}

impl PartitionState {
    /// The state of a new partition: the preferred replica leads at epoch 0 with every
    /// replica in sync (what Kafka's controller writes for a new partition).
    pub fn initial(replicas: &[i32]) -> PartitionState {
        PartitionState {
            leader: replicas.first().copied().unwrap_or(NO_LEADER),
            leader_epoch: 0,
            isr: replicas.to_vec(),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            partition_epoch: 0,
        }
    }
}

/// Everything a broker knows about the cluster, consistent as of one etcd revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// The store revision this view reflects.
    pub revision: i64,
    /// The cluster id every broker reports (Kafka's `cluster.id`).
    pub cluster_id: String,
    /// Live brokers by node id.
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicRecord>,
    /// Partition states by (topic, partition).
    pub partitions: BTreeMap<(String, i32), PartitionState>,
    /// The node id of the controller, when one is elected.
    pub controller: Option<i32>,
    /// Shared sets by kind (`acls`, ...): key → value, as their owners encode them.
    pub entries: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

/// The shared set of brokers whose data directory failed: node id → the failure. Such a
/// broker stays registered, so that it can report the failure, but holds no replica: the
/// controller moves its leaderships and takes it out of every ISR (Kafka's offline log dir).
pub const OFFLINE_LOG_DIRS: &str = "offline_log_dirs";

impl ClusterView {
    /// Whether `node_id` is registered with a working data directory: a broker that may
    /// lead, follow and be given replicas.
    pub fn is_serving(&self, node_id: i32) -> bool {
        self.brokers.contains_key(&node_id) && !self.log_dir_offline(node_id)
    }

    /// Whether `node_id` reported its data directory failed.
    pub fn log_dir_offline(&self, node_id: i32) -> bool {
        self.entries
            .get(OFFLINE_LOG_DIRS)
            .is_some_and(|set| set.contains_key(&node_id.to_string()))
    }

    /// The registered brokers with a working data directory.
    pub fn serving_brokers(&self) -> std::collections::BTreeSet<i32> {
        self.brokers
            .keys()
            .copied()
            .filter(|id| !self.log_dir_offline(*id))
            .collect()
    }
}

/// Whether this broker may act on its registration (lead partitions, be controller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Registered, and a keep-alive succeeded recently enough.
    Live,
    /// No keep-alive succeeded for half the session timeout: another broker may soon take
    /// over, so this one must stop leading.
    Fenced,
}
