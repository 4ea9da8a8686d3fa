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

/// One topic's metadata. A partition without a live leader is LEADER_NOT_AVAILABLE with
/// leader -1, as Kafka answers; replicas not registered are listed as offline.
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
            let index = index as i32;
            let state = view.partitions.get(&(record.name.clone(), index));
            let mut m = MetadataResponsePartition::default();
            m.partition_index = index;
            m.replica_nodes = replicas.iter().map(|r| BrokerId(*r)).collect();
            if version >= 5 {
                m.offline_replicas = replicas
                    .iter()
                    .filter(|r| !view.is_serving(**r))
                    .map(|r| BrokerId(*r))
                    .collect();
            }
            match state {
                Some(s) if s.leader >= 0 && view.is_serving(s.leader) => {
                    m.error_code = NONE;
                    m.leader_id = BrokerId(s.leader);
                    m.isr_nodes = s.isr.iter().map(|r| BrokerId(*r)).collect();
                    if version >= 7 {
                        m.leader_epoch = s.leader_epoch;
                    }
                }
                Some(s) => {
                    m.error_code = code(ResponseError::LeaderNotAvailable);
                    m.leader_id = BrokerId(-1);
                    m.isr_nodes = s.isr.iter().map(|r| BrokerId(*r)).collect();
                    if version >= 7 {
                        m.leader_epoch = s.leader_epoch;
                    }
                }
                None => {
                    m.error_code = code(ResponseError::LeaderNotAvailable);
                    m.leader_id = BrokerId(-1);
                }
            }
            m
        })
        .collect();
    t
}
