//! ApiVersions: the supported-versions table, and the v0 answer to a version we lack.

use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::dispatch::SUPPORTED;
use crate::error::{code, NONE};

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
/// `metadata.version` 22 is Kafka's `IBP_4_0_IV0`: the first level at which
/// `group.version` 1 (the KIP-848 consumer protocol, which Sluice serves) may be
/// finalized, and it adds nothing clients see beyond that. The later 4.0-4.2 levels add
/// eligible leader replicas, share and streams groups, none of which Sluice has, so it
/// claims neither them nor the older levels it cannot run at (a cluster without
/// `group.version` 1). `transaction.version` is left out: Kafka omits a feature at
/// level 0 from the finalized list, and Sluice supports no level above 0 (transactions
/// v2 do not exist here).
const FEATURES: &[Feature] = &[
    Feature {
        name: "metadata.version",
        min: 22,
        max: 22,
        finalized: 22,
    },
    Feature {
        name: "group.version",
        min: 0,
        max: 1,
        finalized: 1,
    },
];

/// The epoch of the finalized features: they are fixed, so they never change from the
/// first.
const FINALIZED_FEATURES_EPOCH: i64 = 1;

/// Answers ApiVersions, with the feature levels from v3 on.
pub(crate) fn handle(_req: &ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
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

/// The v0 answer to an ApiVersions request at a version we do not support.
pub(crate) fn unsupported_version_response() -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = code(ResponseError::UnsupportedVersion);
    r.api_keys = api_keys();
    r
}
