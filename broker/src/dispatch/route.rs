//! The one match from API key to handler. Every handler has the same shape,
//! `(broker, session, request, version) -> Reply<Response>`, and every reply takes the
//! same steps after it ([`super::finish`]).

use kafka_protocol::messages::RequestKind;

use super::{finish, Call, DispatchError, Dispatched};
use crate::api;
use crate::broker::Broker;
use crate::session::Session;

/// Runs the request's handler and the steps after it.
pub(super) async fn route(
    broker: &Broker,
    session: &mut Session,
    request: RequestKind,
    call: &Call,
) -> Result<Dispatched, DispatchError> {
    macro_rules! to {
        ($handler:path, $request:expr) => {{
            let reply = $handler(broker, session, $request, call.version).await;
            finish(broker, session, call, reply)
        }};
    }
    match request {
        RequestKind::ApiVersions(r) => to!(api::api_versions::handle, r),
        RequestKind::SaslHandshake(r) => to!(api::sasl::sasl_handshake, r),
        RequestKind::SaslAuthenticate(r) => to!(api::sasl::sasl_authenticate, r),
        RequestKind::DescribeUserScramCredentials(r) => to!(api::scram::describe, r),
        RequestKind::AlterUserScramCredentials(r) => to!(api::scram::alter, r),
        RequestKind::CreateAcls(r) => to!(api::acls::create_acls, r),
        RequestKind::DescribeAcls(r) => to!(api::acls::describe_acls, r),
        RequestKind::DeleteAcls(r) => to!(api::acls::delete_acls, r),
        RequestKind::DescribeClientQuotas(r) => to!(api::quotas::describe, r),
        RequestKind::AlterClientQuotas(r) => to!(api::quotas::alter, r),
        RequestKind::Metadata(r) => to!(api::metadata::handle, r),
        RequestKind::Produce(r) => to!(api::produce::handle, r),
        RequestKind::Fetch(r) => to!(api::fetch::handle, r),
        RequestKind::ListOffsets(r) => to!(api::list_offsets::handle, r),
        RequestKind::CreateTopics(r) => to!(api::admin::create_topics, r),
        RequestKind::DeleteTopics(r) => to!(api::admin::delete_topics, r),
        RequestKind::DescribeCluster(r) => to!(api::admin::describe_cluster, r),
        RequestKind::InitProducerId(r) => to!(api::producer_id::init_producer_id, r),
        RequestKind::AddPartitionsToTxn(r) => to!(api::txn::add_partitions_to_txn, r),
        RequestKind::AddOffsetsToTxn(r) => to!(api::txn::add_offsets_to_txn, r),
        RequestKind::EndTxn(r) => to!(api::txn::end_txn, r),
        RequestKind::TxnOffsetCommit(r) => to!(api::txn::txn_offset_commit, r),
        RequestKind::DescribeTransactions(r) => to!(api::txn_views::describe_transactions, r),
        RequestKind::ListTransactions(r) => to!(api::txn_views::list_transactions, r),
        RequestKind::DescribeProducers(r) => to!(api::txn_views::describe_producers, r),
        RequestKind::WriteTxnMarkers(r) => to!(api::txn::write_txn_markers, r),
        RequestKind::DescribeConfigs(r) => to!(api::configs::describe_configs, r),
        RequestKind::AlterConfigs(r) => to!(api::configs::alter_configs, r),
        RequestKind::IncrementalAlterConfigs(r) => to!(api::configs::incremental_alter_configs, r),
        RequestKind::CreatePartitions(r) => to!(api::partitions::create_partitions, r),
        RequestKind::DeleteRecords(r) => to!(api::partitions::delete_records, r),
        RequestKind::DescribeLogDirs(r) => to!(api::log_dirs::describe_log_dirs, r),
        RequestKind::AlterReplicaLogDirs(r) => to!(api::log_dirs::alter_replica_log_dirs, r),
        RequestKind::DescribeQuorum(r) => to!(api::quorum::describe_quorum, r),
        RequestKind::OffsetForLeaderEpoch(r) => to!(api::leadership::offset_for_leader_epoch, r),
        RequestKind::ElectLeaders(r) => to!(api::leadership::elect_leaders, r),
        RequestKind::ListPartitionReassignments(r) => {
            to!(api::leadership::list_partition_reassignments, r)
        }
        RequestKind::AlterPartitionReassignments(r) => {
            to!(api::leadership::alter_partition_reassignments, r)
        }
        RequestKind::DescribeTopicPartitions(r) => to!(api::topic_partitions::handle, r),
        RequestKind::FindCoordinator(r) => to!(api::groups::find_coordinator, r),
        RequestKind::JoinGroup(r) => to!(api::groups::join_group, r),
        RequestKind::SyncGroup(r) => to!(api::groups::sync_group, r),
        RequestKind::Heartbeat(r) => to!(api::groups::heartbeat, r),
        RequestKind::LeaveGroup(r) => to!(api::groups::leave_group, r),
        RequestKind::OffsetCommit(r) => to!(api::groups::offset_commit, r),
        RequestKind::OffsetFetch(r) => to!(api::groups::offset_fetch, r),
        RequestKind::OffsetDelete(r) => to!(api::groups::offset_delete, r),
        RequestKind::ListGroups(r) => to!(api::groups::list_groups, r),
        RequestKind::DescribeGroups(r) => to!(api::groups::describe_groups, r),
        RequestKind::DeleteGroups(r) => to!(api::groups::delete_groups, r),
        RequestKind::ConsumerGroupHeartbeat(r) => to!(api::groups::consumer_group_heartbeat, r),
        RequestKind::ConsumerGroupDescribe(r) => to!(api::groups::consumer_group_describe, r),
        RequestKind::ShareGroupHeartbeat(r) => to!(api::groups::share_group_heartbeat, r),
        RequestKind::ShareGroupDescribe(r) => to!(api::groups::share_group_describe, r),
        RequestKind::DescribeShareGroupOffsets(r) => {
            to!(api::groups::describe_share_group_offsets, r)
        }
        RequestKind::AlterShareGroupOffsets(r) => to!(api::groups::alter_share_group_offsets, r),
        RequestKind::DeleteShareGroupOffsets(r) => to!(api::groups::delete_share_group_offsets, r),
        RequestKind::ShareFetch(r) => to!(api::share::share_fetch, r),
        RequestKind::ShareAcknowledge(r) => to!(api::share::share_acknowledge, r),
        RequestKind::ReadShareGroupState(r) => to!(api::share_state::read_share_group_state, r),
        RequestKind::WriteShareGroupState(r) => to!(api::share_state::write_share_group_state, r),
        // The versions table admits only the APIs matched here.
        _ => Err(DispatchError::UnsupportedVersion {
            api: call.api,
            version: call.version,
        }),
    }
}
