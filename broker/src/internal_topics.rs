//! Kafka's internal topics, `__consumer_offsets`, `__transaction_state` and
//! `__share_group_state`: created the first time their coordinator is needed (as Kafka
//! creates them), listed by Metadata with `is_internal`, and closed to producers.
//!
//! They hold the coordinators' state in Kafka's record schemas: replicated in a cluster,
//! with one replica on a single node.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_config::BrokerConfig;
use sluice_storage::{StorageError, Topic};

use crate::broker::Broker;

/// The group coordinator's topic.
pub(crate) const GROUP_METADATA_TOPIC: &str = "__consumer_offsets";
/// The transaction coordinator's topic.
pub(crate) const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// The share coordinator's topic (KIP-932).
pub(crate) const SHARE_GROUP_STATE_TOPIC: &str = "__share_group_state";

/// Kafka's `Topic.isInternal`: whether a topic name is one of the internal topics.
pub(crate) fn is_internal(name: &str) -> bool {
    matches!(
        name,
        GROUP_METADATA_TOPIC | TRANSACTION_STATE_TOPIC | SHARE_GROUP_STATE_TOPIC
    )
}

/// Kafka's `partitionFor`: the partition of the internal topic that holds `key`'s state,
/// from Java's `String.hashCode` so that the same key lands where Kafka puts it.
pub(crate) fn partition_for(key: &str, partitions: i32) -> i32 {
    let hash = key
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    // Kafka's Utils.abs maps i32::MIN to 0.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

/// Creates an internal topic unless it exists, with the partition count and configs Kafka
/// gives it (`offsets.topic.*`, `transaction.state.log.*`).
pub(crate) fn ensure(broker: &Broker, name: &str) -> Result<Arc<Topic>, StorageError> {
    if let Some(t) = broker.storage.topic(name) {
        return Ok(t);
    }
    let (partitions, _, configs) = placement(broker, name);
    match broker.storage.create_topic(name, partitions, configs) {
        Ok(t) => {
            if broker.cluster.is_none() {
                // Empty: loading is immediate, and the first group is answered at once.
                crate::coordinator_loader::load_sole(&broker.storage, &broker.coordinators(), name);
            }
            Ok(t)
        }
        // Another request created it first.
        Err(StorageError::TopicExists(_)) => broker
            .storage
            .topic(name)
            .ok_or_else(|| StorageError::UnknownTopic(name.to_string())),
        Err(e) => {
            tracing::error!(topic = name, error = %e, "creating internal topic failed");
            Err(e)
        }
    }
}

/// Partition count, replication factor and configs of an internal topic. On a single node
/// the replication factor is 1; in a cluster it is `offsets.topic.replication.factor` or
/// `transaction.state.log.replication.factor`, which Kafka requires that many live brokers
/// for (see [`too_few_brokers`]).
pub(crate) fn placement(broker: &Broker, name: &str) -> (i32, i32, BTreeMap<String, String>) {
    placement_for(&broker.config, broker.cluster.is_some(), name)
}

/// [`placement`] from the configuration, in a cluster or not.
pub(crate) fn placement_for(
    config: &BrokerConfig,
    clustered: bool,
    name: &str,
) -> (i32, i32, BTreeMap<String, String>) {
    let rf = match (clustered, name) {
        (false, _) => 1,
        (true, TRANSACTION_STATE_TOPIC) => config.transactions.state_log_replication_factor,
        (true, SHARE_GROUP_STATE_TOPIC) => config.shares.state_topic_replication_factor,
        (true, _) => config.groups.offsets_topic_replication_factor,
    };
    let (partitions, segment_bytes, compression) = match name {
        TRANSACTION_STATE_TOPIC => (
            config.transactions.state_log_num_partitions,
            config.transactions.state_log_segment_bytes,
            "uncompressed",
        ),
        SHARE_GROUP_STATE_TOPIC => (
            config.shares.state_topic_num_partitions,
            config.shares.state_topic_segment_bytes,
            "uncompressed",
        ),
        _ => (
            config.groups.offsets_topic_num_partitions,
            config.groups.offsets_topic_segment_bytes,
            "producer",
        ),
    };
    let mut configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("compression.type".to_string(), compression.to_string()),
        ("segment.bytes".to_string(), segment_bytes.to_string()),
    ]);
    if clustered {
        // Kafka: min.insync.replicas is transaction.state.log.min.isr or
        // share.coordinator.state.topic.min.isr (never above the replication factor, or no
        // state change could be written).
        let min_isr = match name {
            TRANSACTION_STATE_TOPIC => Some(config.transactions.state_log_min_isr),
            SHARE_GROUP_STATE_TOPIC => Some(config.shares.state_topic_min_isr),
            _ => None,
        };
        if let Some(min_isr) = min_isr {
            configs.insert(
                "min.insync.replicas".to_string(),
                min_isr.min(rf).to_string(),
            );
        }
    }
    (partitions, rf, configs)
}

/// Why an internal topic cannot be created in a cluster yet: fewer live brokers than its
/// replication factor (Kafka answers COORDINATOR_NOT_AVAILABLE until there are enough).
pub(crate) fn too_few_brokers(broker: &Broker, name: &str) -> Option<String> {
    let cluster = broker.cluster.as_ref()?;
    let live = cluster.view.borrow().serving_brokers().len() as i32;
    let (_, rf, _) = placement(broker, name);
    let property = match name {
        TRANSACTION_STATE_TOPIC => "transaction.state.log.replication.factor",
        SHARE_GROUP_STATE_TOPIC => "share.coordinator.state.topic.replication.factor",
        _ => "offsets.topic.replication.factor",
    };
    (live < rf).then(|| {
        format!("{live} live broker(s) cannot hold the {rf} replicas of {name} ({property})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kafkas_internal_names_are_internal() {
        assert!(is_internal("__consumer_offsets"));
        assert!(is_internal("__transaction_state"));
        assert!(is_internal("__share_group_state"));
        assert!(!is_internal("__consumer_offsets2"));
        assert!(!is_internal("_schemas"));
        assert!(!is_internal("orders"));
    }

    #[test]
    fn partition_for_matches_javas_string_hash_code() {
        // "my-group".hashCode() == -1_906_497_762 in Java; its abs % 50 == 12.
        assert_eq!(partition_for("my-group", 50), 12);
        // "".hashCode() == 0.
        assert_eq!(partition_for("", 50), 0);
        // Non-ASCII keys hash their UTF-16 units: "é".hashCode() == 233.
        assert_eq!(partition_for("é", 50), 233 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE, which Utils.abs maps to 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
    }
}
