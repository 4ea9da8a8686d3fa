//! How a partition leader reaches the share coordinator of a share-partition (Kafka's
//! `Persister`): this broker's own when it leads the key's partition of
//! `__share_group_state` (always on a single node), otherwise ReadShareGroupState and
//! WriteShareGroupState to the broker that does.

use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::messages::{
    read_share_group_state_request, write_share_group_state_request, ReadShareGroupStateRequest,
    WriteShareGroupStateRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::coordinator::ShareCoordinator;
use super::records::{ShareKey, ShareState, StateBatch};
use crate::internal_topics::SHARE_GROUP_STATE_TOPIC;
use crate::replication::ClusterNode;

/// Reads and writes share-partition state at its share coordinator.
pub(crate) trait SharePersister: Send + Sync {
    /// The state; `None` before it was first written.
    fn read<'a>(
        &'a self,
        key: &'a ShareKey,
    ) -> BoxFuture<'a, Result<Option<ShareState>, ResponseError>>;
    /// Writes the state, answered once durable.
    fn write<'a>(
        &'a self,
        key: &'a ShareKey,
        state: ShareState,
    ) -> BoxFuture<'a, Result<(), ResponseError>>;
}

/// Version 0 of ReadShareGroupState and WriteShareGroupState.
const STATE_RPC_VERSION: i16 = 0;

/// The persister of a broker: its own share coordinator, or in a cluster the one that
/// leads the key's partition.
pub(crate) struct CoordinatorPersister {
    coordinator: Arc<ShareCoordinator>,
    cluster: Option<Arc<ClusterNode>>,
}

impl CoordinatorPersister {
    /// Through `coordinator`, and `cluster`'s connections to the other brokers.
    pub(crate) fn new(
        coordinator: Arc<ShareCoordinator>,
        cluster: Option<Arc<ClusterNode>>,
    ) -> Self {
        CoordinatorPersister {
            coordinator,
            cluster,
        }
    }

    /// The broker to ask, or `None` for this one.
    fn remote(&self, key: &ShareKey) -> Result<Option<(&ClusterNode, i32)>, ResponseError> {
        let Some(node) = &self.cluster else {
            return Ok(None);
        };
        let coordinator = node
            .coordinator(SHARE_GROUP_STATE_TOPIC, &key.coordinator_key())
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        Ok((coordinator != node.replicas.node_id()).then_some((node.as_ref(), coordinator)))
    }
}

fn code_error(code: i16) -> Result<(), ResponseError> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

impl SharePersister for CoordinatorPersister {
    fn read<'a>(
        &'a self,
        key: &'a ShareKey,
    ) -> BoxFuture<'a, Result<Option<ShareState>, ResponseError>> {
        Box::pin(async move {
            let Some((node, coordinator)) = self.remote(key)? else {
                return self.coordinator.read(key);
            };
            let request = ReadShareGroupStateRequest::default()
                .with_group_id(StrBytes::from_string(key.group.clone()))
                .with_topics(vec![
                    read_share_group_state_request::ReadStateData::default()
                        .with_topic_id(key.topic_id)
                        .with_partitions(vec![
                            read_share_group_state_request::PartitionData::default()
                                .with_partition(key.partition)
                                .with_leader_epoch(-1),
                        ]),
                ]);
            let response = node
                .broker_client
                .send(coordinator, &request, STATE_RPC_VERSION)
                .await
                .map_err(|e| {
                    tracing::info!(coordinator, error = %e, "cannot read share-partition state");
                    ResponseError::CoordinatorNotAvailable
                })?;
            let p = response
                .results
                .first()
                .and_then(|t| t.partitions.first())
                .ok_or(ResponseError::UnknownServerError)?;
            code_error(p.error_code)?;
            if p.start_offset < 0 {
                return Ok(None);
            }
            Ok(Some(ShareState {
                state_epoch: p.state_epoch,
                leader_epoch: -1,
                start_offset: p.start_offset,
                batches: p
                    .state_batches
                    .iter()
                    .map(|b| StateBatch {
                        first_offset: b.first_offset,
                        last_offset: b.last_offset,
                        delivery_state: b.delivery_state,
                        delivery_count: b.delivery_count,
                    })
                    .collect(),
            }))
        })
    }

    fn write<'a>(
        &'a self,
        key: &'a ShareKey,
        state: ShareState,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        Box::pin(async move {
            let Some((node, coordinator)) = self.remote(key)? else {
                return self.coordinator.write(key, Some(state)).await;
            };
            let partition = write_share_group_state_request::PartitionData::default()
                .with_partition(key.partition)
                .with_state_epoch(state.state_epoch)
                .with_leader_epoch(state.leader_epoch)
                .with_start_offset(state.start_offset)
                .with_state_batches(
                    state
                        .batches
                        .iter()
                        .map(|b| {
                            write_share_group_state_request::StateBatch::default()
                                .with_first_offset(b.first_offset)
                                .with_last_offset(b.last_offset)
                                .with_delivery_state(b.delivery_state)
                                .with_delivery_count(b.delivery_count)
                        })
                        .collect(),
                );
            let request = WriteShareGroupStateRequest::default()
                .with_group_id(StrBytes::from_string(key.group.clone()))
                .with_topics(vec![
                    write_share_group_state_request::WriteStateData::default()
                        .with_topic_id(key.topic_id)
                        .with_partitions(vec![partition]),
                ]);
            let response = node
                .broker_client
                .send(coordinator, &request, STATE_RPC_VERSION)
                .await
                .map_err(|e| {
                    tracing::info!(coordinator, error = %e, "cannot write share-partition state");
                    ResponseError::CoordinatorNotAvailable
                })?;
            let p = response
                .results
                .first()
                .and_then(|t| t.partitions.first())
                .ok_or(ResponseError::UnknownServerError)?;
            code_error(p.error_code)
        })
    }
}
