//! Metadata answers of a cluster member, from the cluster view: every registered broker,
//! and for each partition its leader, leader epoch, replicas, ISR and offline replicas.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_cluster::{ClusterView, TopicRecord};
use uuid::Uuid;

use super::topic_name;
use crate::error::{code, NONE};
use crate::internal_topics;

/// Every live broker, at its endpoint on the client's listener.
pub(crate) fn brokers(
    view: &ClusterView,
    listener: &str,
    version: i16,
) -> Vec<MetadataResponseBroker> {
    view.brokers
        .values()
        .filter_map(|b| {
            let e = b.endpoints.iter().find(|e| e.listener == listener)?;
            let mut out = MetadataResponseBroker::default();
            out.node_id = BrokerId(b.node_id);
            out.host = StrBytes::from_string(e.host.clone());
            out.port = i32::from(e.port);
            if version >= 1 {
                out.rack = b.rack.clone().map(StrBytes::from_string);
            }
            Some(out)
        })
        .collect()
}

/// A topic of the view by name.
pub(crate) fn by_name<'a>(view: &'a ClusterView, name: &str) -> Option<&'a TopicRecord> {
    view.topics.get(name)
}

/// A topic of the view by id.
pub(crate) fn by_id(view: &ClusterView, id: Uuid) -> Option<&TopicRecord> {
    view.topics.values().find(|t| t.topic_id == id)
}

/// One topic's metadata; its partitions as [`partition`] describes them.
pub(crate) fn topic(
    view: &ClusterView,
    record: &TopicRecord,
    version: i16,
) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.error_code = NONE;
    t.name = Some(topic_name(&record.name));
    t.topic_id = if version >= 10 {
        record.topic_id
    } else {
        Uuid::nil()
    };
    t.is_internal = internal_topics::is_internal(&record.name);
    t.topic_authorized_operations = i32::MIN;
    t.partitions = record
        .assignment
        .iter()
        .enumerate()
        .map(|(index, replicas)| {
            let p = partition(view, &record.name, index as i32, replicas);
            let mut m = MetadataResponsePartition::default();
            m.partition_index = p.index;
            m.error_code = p.error_code;
            m.leader_id = p.leader;
            m.replica_nodes = p.replicas;
            m.isr_nodes = p.isr;
            if version >= 5 {
                m.offline_replicas = p.offline;
            }
            if version >= 7 {
                m.leader_epoch = p.leader_epoch;
            }
            m
        })
        .collect();
    t
}

/// One partition as the cluster view describes it to clients (Metadata,
/// DescribeTopicPartitions).
pub(crate) struct PartitionView {
    /// The partition index.
    pub(crate) index: i32,
    /// NONE, or LEADER_NOT_AVAILABLE without a live leader.
    pub(crate) error_code: i16,
    /// The leader, -1 without a live one.
    pub(crate) leader: BrokerId,
    /// The leader epoch, -1 when the view has no state for the partition.
    pub(crate) leader_epoch: i32,
    /// The assigned replicas.
    pub(crate) replicas: Vec<BrokerId>,
    /// The in-sync replicas.
    pub(crate) isr: Vec<BrokerId>,
    /// Replicas on brokers that are not registered or whose data directory failed.
    pub(crate) offline: Vec<BrokerId>,
}

/// `topic`'s partition `index`, whose assigned replicas are `replicas`. A partition
/// without a live leader is LEADER_NOT_AVAILABLE with leader -1, as Kafka answers.
pub(crate) fn partition(
    view: &ClusterView,
    topic: &str,
    index: i32,
    replicas: &[i32],
) -> PartitionView {
    let ids = |ids: &[i32]| ids.iter().map(|r| BrokerId(*r)).collect::<Vec<_>>();
    let offline: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|r| !view.is_serving(*r))
        .collect();
    let state = view.partitions.get(&(topic.to_string(), index));
    let led = state.filter(|s| s.leader >= 0 && view.is_serving(s.leader));
    PartitionView {
        index,
        error_code: if led.is_some() {
            NONE
        } else {
            code(ResponseError::LeaderNotAvailable)
        },
        leader: BrokerId(led.map_or(-1, |s| s.leader)),
        leader_epoch: state.map_or(-1, |s| s.leader_epoch),
        replicas: ids(replicas),
        isr: state.map_or_else(Vec::new, |s| ids(&s.isr)),
        offline: ids(&offline),
    }
}
