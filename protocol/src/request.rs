//! Decoding a request frame's header and body at the client's version: the one call the
//! broker makes for every request, and the one the fuzz targets drive.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

/// Why a request frame does not decode.
#[derive(Debug, thiserror::Error)]
pub enum RequestDecodeError {
    /// The header does not decode.
    #[error("malformed request header: {0}")]
    Header(String),
    /// The body does not decode at the header's version.
    #[error("{0}")]
    Body(String),
}

/// Decodes the request header of a frame whose API key and version were read already.
pub fn decode_header(
    api: ApiKey,
    version: i16,
    frame: &mut Bytes,
) -> Result<RequestHeader, RequestDecodeError> {
    RequestHeader::decode(frame, api.request_header_version(version))
        .map_err(|e| RequestDecodeError::Header(e.to_string()))
}

/// Decodes the request body that follows the header, at the client's version.
pub fn decode_body(
    api: ApiKey,
    version: i16,
    frame: &mut Bytes,
) -> Result<RequestKind, RequestDecodeError> {
    RequestKind::decode(api, frame, version).map_err(|e| RequestDecodeError::Body(e.to_string()))
}
