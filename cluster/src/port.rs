//! The metadata port: what a broker needs of the cluster's metadata store.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::MetadataError;
use crate::model::{BrokerRegistration, ClusterView, Liveness, PartitionState, TopicRecord};
use crate::term::{ControllerTerm, Fence};

/// The cluster's metadata, shared by every broker (etcd, or memory on a single node).
#[async_trait]
pub trait ClusterMetadata: Send + Sync {
    /// Registers this broker under a lease kept alive in the background (Kafka's
    /// broker.heartbeat.interval.ms, lease TTL = broker.session.timeout.ms). Fencing: the
    /// returned watch turns to Fenced once no keep-alive has succeeded for half the TTL,
    /// measured from when the last successful keep-alive was SENT — so a broker that loses
    /// etcd stops leading BEFORE its lease can expire and be handed to another; when etcd is
    /// back and the lease expired, it registers again under a new lease and turns Live.
    async fn register(
        &self,
        me: BrokerRegistration,
    ) -> Result<watch::Receiver<Liveness>, MetadataError>;
    /// The current view, kept up to date by an etcd watch (never by polling); changes
    /// notify the receiver.
    fn view(&self) -> watch::Receiver<Arc<ClusterView>>;
    /// Creates a topic and its partition states atomically; AlreadyExists if the name is taken.
    async fn create_topic(
        &self,
        topic: TopicRecord,
        states: Vec<PartitionState>,
    ) -> Result<(), MetadataError>;
    /// Deletes a topic and its partition states.
    async fn delete_topic(&self, name: &str) -> Result<(), MetadataError>;
    /// Adds partitions (assignment extended) with their initial states, atomically.
    async fn create_partitions(
        &self,
        name: &str,
        new_assignment: Vec<Vec<i32>>,
        states: Vec<PartitionState>,
    ) -> Result<(), MetadataError>;
    /// Replaces a topic's configs.
    async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetadataError>;
    /// Compare-and-swap of one partition's state on its partition epoch: Stale(current)
    /// when it moved; with a controller's `fence`, NotController once its term is over.
    /// Returns the new partition epoch.
    async fn update_partition(
        &self,
        topic: &str,
        partition: i32,
        expected_partition_epoch: i64,
        new: PartitionState,
        fence: Option<&Fence>,
    ) -> Result<i64, MetadataError>;
    /// Compare-and-swap of one partition's state on its partition epoch that also sets the
    /// partition's replicas in its topic (a reassignment starting, completing or being
    /// cancelled), both in one step. Returns the new partition epoch.
    async fn reassign_partition(
        &self,
        topic: &str,
        partition: i32,
        expected_partition_epoch: i64,
        replicas: Vec<i32>,
        new: PartitionState,
        fence: Option<&Fence>,
    ) -> Result<i64, MetadataError>;
    /// Puts and deletes entries of the shared set `kind` in one step (as one etcd
    /// transaction); every broker's view shows them. Keys and kinds are non-empty and
    /// hold no slash.
    async fn apply_entries(
        &self,
        kind: &str,
        puts: Vec<(String, Vec<u8>)>,
        deletes: Vec<String>,
    ) -> Result<(), MetadataError>;
    /// Compare-and-swap of one entry of the shared set `kind`: sets it to `new` (or
    /// removes it when `None`) only if its value is `expected` (`None`: absent). Returns
    /// whether it was swapped.
    async fn swap_entry(
        &self,
        kind: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, MetadataError>;
    /// Reserves `count` producer ids for this broker and returns the first: ids are unique
    /// across the cluster (Kafka's AllocateProducerIds), never handed out twice.
    async fn allocate_producer_ids(&self, count: i64) -> Result<i64, MetadataError>;
    /// Resolves once this broker is the controller; the handle says when that ends (lease
    /// lost/resigned). The broker must have registered first.
    async fn campaign(&self) -> Result<ControllerTerm, MetadataError>;
}

/// Checks what `create_topic` is given, the same way for every implementation.
pub(crate) fn check_new_topic(
    topic: &TopicRecord,
    states: &[PartitionState],
) -> Result<(), MetadataError> {
    if topic.name.is_empty() || topic.name.contains('/') {
        return Err(MetadataError::Invalid(format!(
            "topic name {:?}",
            topic.name
        )));
    }
    if topic.assignment.len() != states.len() {
        return Err(MetadataError::Invalid(format!(
            "{} partitions assigned but {} states given",
            topic.assignment.len(),
            states.len()
        )));
    }
    Ok(())
}

/// Checks an extension of a topic's assignment by `create_partitions`.
pub(crate) fn check_new_partitions(
    current: &[Vec<i32>],
    new_assignment: &[Vec<i32>],
    states: &[PartitionState],
) -> Result<(), MetadataError> {
    if new_assignment.len() <= current.len() || new_assignment[..current.len()] != *current {
        return Err(MetadataError::Invalid(format!(
            "the new assignment of {} partitions does not extend the current {}",
            new_assignment.len(),
            current.len()
        )));
    }
    if new_assignment.len() - current.len() != states.len() {
        return Err(MetadataError::Invalid(format!(
            "{} partitions added but {} states given",
            new_assignment.len() - current.len(),
            states.len()
        )));
    }
    Ok(())
}

/// Checks the keys of `apply_entries`, the same way for every implementation.
pub(crate) fn check_entries(
    kind: &str,
    puts: &[(String, Vec<u8>)],
    deletes: &[String],
) -> Result<(), MetadataError> {
    let bad = |k: &str| k.is_empty() || k.contains('/');
    if bad(kind) || puts.iter().any(|(k, _)| bad(k)) || deletes.iter().any(|k| bad(k)) {
        return Err(MetadataError::Invalid(format!(
            "a key of the shared set {kind:?}"
        )));
    }
    Ok(())
}
