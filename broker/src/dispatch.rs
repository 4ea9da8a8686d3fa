//! The one match from API key to handler, the supported-versions table that feeds
//! ApiVersions, and request/response framing around the handlers.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::api;
use crate::broker::Broker;

/// Who is asking, through which listener.
pub(crate) struct RequestContext {
    pub(crate) peer: SocketAddr,
    pub(crate) listener: String,
    pub(crate) client_id: Option<String>,
}

/// Why a connection is closed instead of answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DispatchError {
    #[error("request too short for a header")]
    Short,
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed { api: ApiKey, version: i16, reason: String },
    #[error("cannot encode {api:?} v{version} response: {reason}")]
    Encode { api: ApiKey, version: i16, reason: String },
}

/// The APIs and versions this broker implements; ApiVersions answers from this table,
/// and requests outside it are refused.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeCluster, 0, 1),
];

/// The supported version range of an API, if it is supported at all.
pub(crate) fn supported_range(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED.iter().find(|(k, _, _)| *k == api).map(|(_, min, max)| (*min, *max))
}

/// Handles one request frame; `Ok(None)` means no response is sent (acks=0).
pub(crate) async fn handle(
    broker: &Broker,
    ctx: &mut RequestContext,
    mut frame: Bytes,
) -> Result<Option<Bytes>, DispatchError> {
    if frame.len() < 8 {
        return Err(DispatchError::Short);
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(raw_key).map_err(|_| DispatchError::UnknownApi(raw_key))?;
    let supported = supported_range(api).is_some_and(|(min, max)| (min..=max).contains(&version));
    if !supported {
        if api == ApiKey::ApiVersions {
            // A client newer than us: answer at v0 with the table, so it can pick a version.
            let response = api::api_versions::unsupported_version_response();
            return encode(api, 0, correlation_id, &ResponseKind::ApiVersions(response)).map(Some);
        }
        return Err(DispatchError::UnsupportedVersion { api, version });
    }
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(|e| {
        DispatchError::Malformed {
            api,
            version,
            reason: e.to_string(),
        }
    })?;
    if let Some(id) = &header.client_id {
        if ctx.client_id.as_deref() != Some(id.as_str()) {
            ctx.client_id = Some(id.to_string());
        }
    }
    tracing::trace!(peer = %ctx.peer, ?api, version, correlation_id, "request");
    let request = RequestKind::decode(api, &mut frame, version).map_err(|e| DispatchError::Malformed {
        api,
        version,
        reason: e.to_string(),
    })?;
    let response = match request {
        RequestKind::ApiVersions(r) => Some(ResponseKind::ApiVersions(api::api_versions::handle(&r, version))),
        RequestKind::Metadata(r) => Some(ResponseKind::Metadata(api::metadata::handle(broker, ctx, r, version))),
        RequestKind::Produce(r) => api::produce::handle(broker, r, version).await.map(ResponseKind::Produce),
        RequestKind::Fetch(r) => Some(ResponseKind::Fetch(api::fetch::handle(broker, r, version).await)),
        RequestKind::ListOffsets(r) => Some(ResponseKind::ListOffsets(api::list_offsets::handle(broker, r, version))),
        RequestKind::CreateTopics(r) => Some(ResponseKind::CreateTopics(api::admin::create_topics(broker, r, version).await)),
        RequestKind::DeleteTopics(r) => Some(ResponseKind::DeleteTopics(api::admin::delete_topics(broker, r, version).await)),
        RequestKind::DescribeCluster(r) => {
            Some(ResponseKind::DescribeCluster(api::admin::describe_cluster(broker, ctx, r, version)))
        }
        RequestKind::InitProducerId(r) => {
            Some(ResponseKind::InitProducerId(api::producer_id::init_producer_id(broker, r, version)))
        }
        // The table above admits only the APIs matched here.
        _ => return Err(DispatchError::UnsupportedVersion { api, version }),
    };
    match response {
        Some(r) => encode(api, version, correlation_id, &r).map(Some),
        None => Ok(None),
    }
}

fn encode(api: ApiKey, version: i16, correlation_id: i32, response: &ResponseKind) -> Result<Bytes, DispatchError> {
    let err = |e: anyhow::Error| DispatchError::Encode {
        api,
        version,
        reason: e.to_string(),
    };
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header.encode(&mut buf, api.response_header_version(version)).map_err(err)?;
    response.encode(&mut buf, version).map_err(err)?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}
