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

/// Finalized features (KIP-584) with the level in force: only what is implemented, since
/// clients switch behaviour on them. `group.version` 1 is the KIP-848 consumer protocol;
/// `transaction.version` is left out until transactions v2 exist.
const FEATURES: &[(&str, i16)] = &[("group.version", 1)];

/// Answers ApiVersions, with the feature levels from v3 on.
pub(crate) fn handle(_req: &ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = NONE;
    r.api_keys = api_keys();
    if version >= 3 {
        r.supported_features = FEATURES
            .iter()
            .map(|(name, level)| {
                SupportedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(name))
                    .with_min_version(0)
                    .with_max_version(*level)
            })
            .collect();
        r.finalized_features = FEATURES
            .iter()
            .map(|(name, level)| {
                FinalizedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(name))
                    .with_min_version_level(*level)
                    .with_max_version_level(*level)
            })
            .collect();
        r.finalized_features_epoch = 1;
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
