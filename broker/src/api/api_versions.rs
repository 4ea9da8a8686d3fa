//! ApiVersions: the supported-versions table, and the v0 answer to a version we lack.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::api::reply::{answer, encode, FrameHeader, QuotaUse, Reply};
use crate::broker::Broker;
use crate::error::{code, NONE};
use crate::session::Session;

/// The APIs and versions this broker implements; ApiVersions answers from this table,
/// and requests outside it are refused.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::ShareGroupHeartbeat, 1, 1),
    (ApiKey::ShareGroupDescribe, 1, 1),
    (ApiKey::DescribeShareGroupOffsets, 0, 0),
    (ApiKey::AlterShareGroupOffsets, 0, 0),
    (ApiKey::DeleteShareGroupOffsets, 0, 0),
    (ApiKey::ShareFetch, 1, 1),
    (ApiKey::ShareAcknowledge, 1, 1),
    // Between brokers: a partition leader and a share coordinator.
    (ApiKey::ReadShareGroupState, 0, 0),
    (ApiKey::WriteShareGroupState, 0, 0),
    // v5 of AddPartitionsToTxn, EndTxn and TxnOffsetCommit, and Produce v12, are
    // transactions v2 (KIP-890 part 2); clients use them once `transaction.version` is 2.
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    // v0 is followed by bare SASL tokens; librdkafka needs it in the range.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

/// Whether this broker implements `version` of `api`.
pub(crate) fn supports(api: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|(k, min, max)| *k == api && (*min..=*max).contains(&version))
}

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *key as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect()
}

/// A feature (KIP-584) as ApiVersions v3+ reports it: the range this broker supports and
/// the level finalized for the cluster.
struct Feature {
    name: &'static str,
    min: i16,
    max: i16,
    finalized: i16,
}

/// Only what is implemented, since clients switch behaviour on these.
///
/// `metadata.version` 28 is Kafka's `IBP_4_2_IV0`: the first level at which
/// `share.version` 1 (share groups, KIP-932) may be finalized; it also allows
/// `transaction.version` 2 (transactions v2, KIP-890 part 2) and `group.version` 1 (the
/// KIP-848 consumer protocol). The levels up to it add eligible leader replicas, a feature
/// of their own that Sluice does not claim, and nothing clients see. Later levels add
/// streams groups, which Sluice does not claim either, nor the older levels it cannot run
/// at.
const FEATURES: &[Feature] = &[
    Feature {
        name: "metadata.version",
        min: 28,
        max: 28,
        finalized: 28,
    },
    Feature {
        name: "group.version",
        min: 0,
        max: 1,
        finalized: 1,
    },
    Feature {
        name: "transaction.version",
        min: 0,
        max: 2,
        finalized: 2,
    },
    Feature {
        name: "share.version",
        min: 0,
        max: 1,
        finalized: 1,
    },
];

/// The epoch of the finalized features: they are fixed, so they never change from the
/// first.
const FINALIZED_FEATURES_EPOCH: i64 = 1;

/// Answers ApiVersions, with the feature levels from v3 on.
pub(crate) async fn handle(
    _broker: &Broker,
    _session: &Session,
    _request: ApiVersionsRequest,
    version: i16,
) -> Reply<ApiVersionsResponse> {
    Reply::new(response(version)).quota(QuotaUse::Exempt)
}

answer!(ApiVersionsResponse: [error_code]);

/// The answer at `version`.
fn response(version: i16) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = NONE;
    r.api_keys = api_keys();
    if version >= 3 {
        r.supported_features = FEATURES
            .iter()
            .map(|f| {
                SupportedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(f.name))
                    .with_min_version(f.min)
                    .with_max_version(f.max)
            })
            .collect();
        r.finalized_features = FEATURES
            .iter()
            .filter(|f| f.finalized > 0)
            .map(|f| {
                FinalizedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(f.name))
                    .with_min_version_level(f.finalized)
                    .with_max_version_level(f.finalized)
            })
            .collect();
        r.finalized_features_epoch = FINALIZED_FEATURES_EPOCH;
    } else {
        r.finalized_features_epoch = -1;
    }
    r
}

/// The answer to a request at a version this broker lacks, where Kafka gives one: a client
/// newer than the broker asking ApiVersions gets the table at v0 with UNSUPPORTED_VERSION,
/// so that it can pick a version. `None` for every other API: the connection closes.
pub(crate) fn unsupported_version_answer(
    api: ApiKey,
    correlation_id: i32,
) -> Option<anyhow::Result<Bytes>> {
    (api == ApiKey::ApiVersions).then(|| {
        let mut r = ApiVersionsResponse::default();
        r.error_code = code(ResponseError::UnsupportedVersion);
        r.api_keys = api_keys();
        let header = FrameHeader {
            api,
            version: 0,
            correlation_id,
        };
        encode(header, &ResponseKind::ApiVersions(r))
    })
}
