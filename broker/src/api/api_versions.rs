//! ApiVersions: the supported-versions table, and the v0 answer to a version we lack.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
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

/// Answers ApiVersions. No finalized features are advertised: clients switch to
/// transactions v2 or the KIP-848 group protocol on them, and neither is implemented.
pub(crate) fn handle(_req: &ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = NONE;
    r.api_keys = api_keys();
    r.finalized_features_epoch = -1;
    r
}

/// The v0 answer to an ApiVersions request at a version we do not support.
pub(crate) fn unsupported_version_response() -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = code(ResponseError::UnsupportedVersion);
    r.api_keys = api_keys();
    r
}
