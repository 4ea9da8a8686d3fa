//! One connection to one broker: size-prefixed frames, correlation ids, and the API
//! versions both sides speak, learned with ApiVersions before any other request.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use sluice_protocol::names::api_name;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::CliError;
use crate::security::Security;

/// The client id in every request header.
const CLIENT_ID: &str = "sluice-cli";
/// Responses larger than this are refused rather than allocated (Fetch asks for far less).
const MAX_RESPONSE_BYTES: usize = 256 << 20;
/// UNSUPPORTED_VERSION: the broker answers an ApiVersions it does not speak with this,
/// in a v0 body that lists its own range.
const UNSUPPORTED_VERSION: i16 = 35;

/// The versions of each API this tool's code handles. [`Connection::version`] picks the
/// highest version the broker, the `kafka-protocol` crate and this table all allow.
const HANDLED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::ApiVersions, 0, 3),
    // v4 is the first with allow_auto_topic_creation, which must be false here.
    (ApiKey::Metadata, 4, 13),
    // v13 names topics by id only.
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::ListGroups, 0, 5),
    // v2 is the first that fetches every topic of a group (null topics).
    (ApiKey::OffsetFetch, 2, 9),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::DeleteGroups, 0, 2),
    // v0 sends SASL tokens bare, outside Kafka frames.
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// A plaintext or TLS byte stream to a broker.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Connect and request time limits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For the TCP connect.
    pub connect: Duration,
    /// For each request, on top of any time the request itself asks the broker to wait.
    pub request: Duration,
}

/// An open, version-negotiated connection to one broker.
pub struct Connection {
    addr: String,
    stream: Box<dyn Stream>,
    next_correlation_id: i32,
    /// The broker's (min, max) per API key.
    broker_versions: HashMap<i16, (i16, i16)>,
    timeouts: Timeouts,
    /// A request was written and its response not read in full: the request future was
    /// dropped (^C during a Fetch) or failed. The stream is out of step and must not be reused.
    in_flight: bool,
}

impl Connection {
    /// Connects to `addr` (host:port), with TLS and SASL if `security` says so, and asks
    /// for its API versions.
    pub async fn open(
        addr: &str,
        timeouts: Timeouts,
        security: &Security,
    ) -> Result<Connection, CliError> {
        let unreachable = |reason: String| CliError::Unreachable {
            addr: addr.to_string(),
            reason,
        };
        let stream = match tokio::time::timeout(timeouts.connect, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {} ms",
                    timeouts.connect.as_millis()
                )))
            }
            Ok(Err(e)) => return Err(unreachable(io_reason(&e))),
            Ok(Ok(s)) => s,
        };
        // Requests are small and answered one at a time: do not wait to coalesce them.
        let _ = stream.set_nodelay(true);
        let stream: Box<dyn Stream> = match &security.tls {
            None => Box::new(stream),
            Some(config) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| unreachable(format!("{host} is not a TLS server name: {e}")))?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                match tokio::time::timeout(timeouts.connect, connector.connect(name, stream)).await
                {
                    Err(_) => {
                        return Err(unreachable(format!(
                            "no TLS handshake within {} ms",
                            timeouts.connect.as_millis()
                        )))
                    }
                    Ok(Err(e)) => return Err(unreachable(format!("TLS handshake failed: {e}"))),
                    Ok(Ok(s)) => Box::new(s),
                }
            }
        };
        let mut conn = Connection {
            addr: addr.to_string(),
            stream,
            next_correlation_id: 0,
            broker_versions: HashMap::new(),
            timeouts,
            in_flight: false,
        };
        conn.negotiate().await?;
        if let Some(creds) = &security.sasl {
            crate::sasl_client::authenticate(&mut conn, creds).await?;
        }
        tracing::debug!(addr, apis = conn.broker_versions.len(), "connected");
        Ok(conn)
    }

    /// The broker's host:port.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// False once a request was abandoned midway: its response may still arrive.
    pub fn usable(&self) -> bool {
        !self.in_flight
    }

    /// ApiVersions at the highest version this tool speaks; a broker that does not speak
    /// it answers UNSUPPORTED_VERSION with its range, and the request is repeated within it.
    async fn negotiate(&mut self) -> Result<(), CliError> {
        let mut version = max_handled(ApiKey::ApiVersions);
        for _ in 0..2 {
            let mut req = ApiVersionsRequest::default();
            if version >= 3 {
                req = req
                    .with_client_software_name(StrBytes::from_static_str("sluice-cli"))
                    .with_client_software_version(StrBytes::from_static_str(env!(
                        "CARGO_PKG_VERSION"
                    )));
            }
            let body = self
                .roundtrip(ApiKey::ApiVersions, version, Duration::ZERO, |buf| {
                    req.encode(buf, version)
                })
                .await?;
            let resp = match ApiVersionsResponse::decode(&mut body.clone(), version) {
                Ok(r) if r.error_code != UNSUPPORTED_VERSION => r,
                // The error answer is a v0 body whatever version was asked for.
                _ => ApiVersionsResponse::decode(&mut body.clone(), 0)
                    .map_err(|e| self.protocol_error(ApiKey::ApiVersions, e))?,
            };
            if resp.error_code == UNSUPPORTED_VERSION {
                let theirs = resp
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map(|k| k.max_version)
                    .unwrap_or(0);
                if theirs >= version {
                    break;
                }
                version = theirs.max(0);
                continue;
            }
            CliError::check(resp.error_code, None, || {
                format!("ApiVersions with {}", self.addr)
            })?;
            self.broker_versions = resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect();
            return Ok(());
        }
        Err(CliError::Protocol {
            addr: self.addr.clone(),
            api: "ApiVersions",
            reason: "no ApiVersions version acceptable to both sides".to_string(),
        })
    }

    /// The version to send `R` at: the highest that the broker, the crate and this tool's
    /// code all handle.
    pub fn version<R: Request>(&self) -> Result<i16, CliError> {
        let api = api_key::<R>()?;
        let (our_min, our_max) = HANDLED
            .iter()
            .find(|(k, _, _)| *k == api)
            .map(|(_, min, max)| (*min, *max))
            .unwrap_or((R::VERSIONS.min, R::VERSIONS.max));
        let our_min = our_min.max(R::VERSIONS.min);
        let our_max = our_max.min(R::VERSIONS.max);
        let unsupported = || CliError::Unsupported {
            addr: self.addr.clone(),
            api: api_name(api),
            ours: format!("v{our_min}..v{our_max}"),
        };
        let (min, max) = self
            .broker_versions
            .get(&R::KEY)
            .copied()
            .ok_or_else(unsupported)?;
        let version = max.min(our_max);
        if version < min.max(our_min) {
            return Err(unsupported());
        }
        Ok(version)
    }

    /// Sends `req` at `version` and waits for its response.
    pub async fn send<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<R::Response, CliError> {
        self.send_waiting(req, version, Duration::ZERO).await
    }

    /// Like [`Connection::send`], for requests that ask the broker to wait up to
    /// `broker_wait` (Fetch's max wait, CreateTopics' timeout) before answering.
    pub async fn send_waiting<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        broker_wait: Duration,
    ) -> Result<R::Response, CliError> {
        let api = api_key::<R>()?;
        let mut body = self
            .roundtrip(api, version, broker_wait, |buf| req.encode(buf, version))
            .await?;
        let resp =
            R::Response::decode(&mut body, version).map_err(|e| self.protocol_error(api, e))?;
        Ok(resp)
    }

    /// Sends a request that has no response (Produce with acks=0).
    pub(crate) async fn send_one_way<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<(), CliError> {
        let api = api_key::<R>()?;
        let frame = self.frame(api, version, |buf| req.encode(buf, version))?;
        self.in_flight = true;
        let write = self.stream.write_all(&frame);
        match tokio::time::timeout(self.timeouts.request, write).await {
            Err(_) => Err(self.timed_out(api, self.timeouts.request)),
            Ok(Err(e)) => Err(self.disconnected(api, &e)),
            Ok(Ok(())) => {
                self.in_flight = false;
                Ok(())
            }
        }
    }

    /// Writes one request and reads its response body (after the response header).
    async fn roundtrip(
        &mut self,
        api: ApiKey,
        version: i16,
        broker_wait: Duration,
        encode: impl FnOnce(&mut BytesMut) -> anyhow::Result<()>,
    ) -> Result<Bytes, CliError> {
        let correlation_id = self.next_correlation_id;
        let frame = self.frame(api, version, encode)?;
        let limit = self.timeouts.request + broker_wait;
        tracing::debug!(addr = %self.addr, api = api_name(api), version, correlation_id, "request");
        self.in_flight = true;
        let exchange = async {
            self.stream.write_all(&frame).await?;
            let size = self.stream.read_i32().await?;
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s <= MAX_RESPONSE_BYTES)
                .ok_or_else(|| {
                    // "HTTP" read as a size: an HTTP server or proxy, not a Kafka listener.
                    let what = if size.to_be_bytes() == *b"HTTP" {
                        "it answered in HTTP".to_string()
                    } else {
                        format!("it announced a {size}-byte response")
                    };
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{what}: is this a Kafka listener?"),
                    )
                })?;
            let mut body = vec![0u8; size];
            self.stream.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(Bytes::from(body))
        };
        let mut body = match tokio::time::timeout(limit, exchange).await {
            Err(_) => return Err(self.timed_out(api, limit)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(CliError::Protocol {
                    addr: self.addr.clone(),
                    api: api_name(api),
                    reason: e.to_string(),
                })
            }
            Ok(Err(e)) => return Err(self.disconnected(api, &e)),
            Ok(Ok(b)) => b,
        };
        self.in_flight = false;
        let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
            .map_err(|e| self.protocol_error(api, e))?;
        if header.correlation_id != correlation_id {
            return Err(CliError::Protocol {
                addr: self.addr.clone(),
                api: api_name(api),
                reason: format!(
                    "response to correlation id {} while waiting for {correlation_id}",
                    header.correlation_id
                ),
            });
        }
        Ok(body)
    }

    /// A size-prefixed request frame with the next correlation id.
    fn frame(
        &mut self,
        api: ApiKey,
        version: i16,
        encode: impl FnOnce(&mut BytesMut) -> anyhow::Result<()>,
    ) -> Result<Bytes, CliError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut buf = BytesMut::new();
        buf.put_i32(0); // the size, filled in below
        header
            .encode(&mut buf, api.request_header_version(version))
            .and_then(|()| encode(&mut buf))
            .map_err(|e| self.protocol_error(api, e))?;
        let size = i32::try_from(buf.len() - 4).map_err(|_| CliError::Protocol {
            addr: self.addr.clone(),
            api: api_name(api),
            reason: "request larger than 2 GiB".to_string(),
        })?;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        Ok(buf.freeze())
    }

    fn protocol_error(&self, api: ApiKey, e: anyhow::Error) -> CliError {
        CliError::Protocol {
            addr: self.addr.clone(),
            api: api_name(api),
            reason: format!("{e:#}"),
        }
    }

    fn timed_out(&self, api: ApiKey, after: Duration) -> CliError {
        CliError::RequestTimeout {
            addr: self.addr.clone(),
            api: api_name(api),
            after,
        }
    }

    fn disconnected(&self, api: ApiKey, e: &std::io::Error) -> CliError {
        let reason = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            "the broker closed the connection".to_string()
        } else {
            io_reason(e)
        };
        CliError::Disconnected {
            addr: self.addr.clone(),
            api: api_name(api),
            reason,
        }
    }
}

fn api_key<R: Request>() -> Result<ApiKey, CliError> {
    ApiKey::try_from(R::KEY).map_err(|()| CliError::Protocol {
        addr: String::new(),
        api: "request",
        reason: format!("unknown API key {}", R::KEY),
    })
}

fn max_handled(api: ApiKey) -> i16 {
    HANDLED
        .iter()
        .find(|(k, _, _)| *k == api)
        .map(|(_, _, max)| *max)
        .unwrap_or(0)
}

/// An I/O error in the words `ss`, `nc` and browsers use ("connection refused").
fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_string(),
        ErrorKind::ConnectionReset => "connection reset by the broker".to_string(),
        ErrorKind::TimedOut => "timed out".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handled_range_is_within_the_crate() {
        // A handled range the crate cannot encode would fail only at run time.
        use kafka_protocol::messages::*;
        fn check<R: Request>(api: ApiKey) {
            let (_, min, max) = HANDLED
                .iter()
                .find(|(k, _, _)| *k == api)
                .copied()
                .unwrap_or((api, 0, -1));
            assert!(min <= max, "{api:?} has no handled versions");
            assert!(min >= R::VERSIONS.min && max <= R::VERSIONS.max, "{api:?}");
        }
        check::<ApiVersionsRequest>(ApiKey::ApiVersions);
        check::<MetadataRequest>(ApiKey::Metadata);
        check::<ProduceRequest>(ApiKey::Produce);
        check::<FetchRequest>(ApiKey::Fetch);
        check::<ListOffsetsRequest>(ApiKey::ListOffsets);
        check::<CreateTopicsRequest>(ApiKey::CreateTopics);
        check::<DeleteTopicsRequest>(ApiKey::DeleteTopics);
        check::<CreatePartitionsRequest>(ApiKey::CreatePartitions);
        check::<DescribeConfigsRequest>(ApiKey::DescribeConfigs);
        check::<IncrementalAlterConfigsRequest>(ApiKey::IncrementalAlterConfigs);
        check::<FindCoordinatorRequest>(ApiKey::FindCoordinator);
        check::<DescribeGroupsRequest>(ApiKey::DescribeGroups);
        check::<ConsumerGroupDescribeRequest>(ApiKey::ConsumerGroupDescribe);
        check::<ListGroupsRequest>(ApiKey::ListGroups);
        check::<OffsetFetchRequest>(ApiKey::OffsetFetch);
        check::<OffsetCommitRequest>(ApiKey::OffsetCommit);
        check::<DeleteGroupsRequest>(ApiKey::DeleteGroups);
        check::<SaslHandshakeRequest>(ApiKey::SaslHandshake);
        check::<SaslAuthenticateRequest>(ApiKey::SaslAuthenticate);
    }

    #[test]
    fn refused_connections_read_plainly() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_reason(&e), "connection refused");
    }
}
