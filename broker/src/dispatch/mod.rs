//! From a request frame to an answer, in the same steps for every API: authenticate →
//! decode → authorize → handle → quota → metrics → encode. Routing from API key to
//! handler is `route.rs`; the handlers are under `api/`; nothing here names an API.

mod route;
#[cfg(test)]
mod samples;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use sluice_protocol::names::{api_name, error_name};
use sluice_protocol::request::{decode_body, decode_header, RequestDecodeError};

use crate::api;
use crate::api::reply::{Answer, Body, FrameHeader, Reply};
use crate::broker::Broker;
use crate::response::Response;
use crate::session::Session;

/// Why a connection is closed instead of answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DispatchError {
    #[error("request too short for a header")]
    Short,
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode {api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

impl DispatchError {
    /// The API the request named, when it named a known one.
    pub(crate) fn api(&self) -> Option<ApiKey> {
        match self {
            DispatchError::UnsupportedVersion { api, .. }
            | DispatchError::Malformed { api, .. }
            | DispatchError::Encode { api, .. } => Some(*api),
            _ => None,
        }
    }
}

/// An answer that is ready once a Produce's fsyncs are done; `None` when none is sent.
pub(crate) type LaterResponse =
    Pin<Box<dyn Future<Output = Result<Option<Response>, DispatchError>> + Send>>;

/// How the answer to a request goes out.
pub(crate) enum Answered {
    /// The answer to send now; `None` when none is sent (acks=0).
    Now(Option<Response>),
    /// An answer still waiting (a Produce's fsyncs): the connection may take the next
    /// Produce meanwhile and sends the answers in order.
    Later(LaterResponse),
}

/// A handled request, as the connection needs it.
pub(crate) struct Dispatched {
    pub(crate) answer: Answered,
    /// The API to count once the answer is sent; `None` for frames that are not counted
    /// (a bare SASL token, ApiVersions at a version we lack).
    pub(crate) api: Option<ApiKey>,
    /// How long the connection is not read after this answer: the client's quota
    /// throttle (KIP-219).
    pub(crate) throttle: Duration,
    /// Set when this answer must be the connection's last, sent after this delay.
    pub(crate) close_after: Option<Duration>,
    /// Time the request spent waiting by design (its remote time).
    pub(crate) waited: Duration,
}

impl Dispatched {
    /// An answer that is not counted as a request.
    fn uncounted(response: Response, close_after: Option<Duration>) -> Self {
        Dispatched {
            answer: Answered::Now(Some(response)),
            api: None,
            throttle: Duration::ZERO,
            close_after,
            waited: Duration::ZERO,
        }
    }

    /// The answer, waiting for it if need be.
    #[cfg(test)]
    pub(crate) async fn response(self) -> Result<Option<Response>, DispatchError> {
        match self.answer {
            Answered::Now(r) => Ok(r),
            Answered::Later(f) => f.await,
        }
    }
}

/// A decoded request's frame facts, for the steps after its handler.
struct Call {
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    request_bytes: usize,
    started: Instant,
}

/// Handles one request frame.
pub(crate) async fn handle(
    broker: &Broker,
    session: &mut Session,
    mut frame: Bytes,
) -> Result<Dispatched, DispatchError> {
    // Authenticate: after SaslHandshake v0 the client sends bare SASL tokens.
    if session.sasl.as_ref().is_some_and(|s| s.expects_raw_token()) {
        let (token, close_after) = api::sasl::raw_token(broker, session, &frame);
        return Ok(Dispatched::uncounted(token.into(), close_after));
    }
    if frame.len() < 8 {
        return Err(DispatchError::Short);
    }
    let call = Call {
        api: {
            let raw = i16::from_be_bytes([frame[0], frame[1]]);
            ApiKey::try_from(raw).map_err(|_| DispatchError::UnknownApi(raw))?
        },
        version: i16::from_be_bytes([frame[2], frame[3]]),
        correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
        request_bytes: frame.len(),
        started: Instant::now(),
    };
    let (api, version) = (call.api, call.version);
    if !api::api_versions::supports(api, version) {
        return match api::api_versions::unsupported_version_answer(api, call.correlation_id) {
            Some(Ok(bytes)) => Ok(Dispatched::uncounted(bytes.into(), None)),
            Some(Err(e)) => Err(DispatchError::Encode {
                api,
                version,
                reason: e.to_string(),
            }),
            None => Err(DispatchError::UnsupportedVersion { api, version }),
        };
    }
    if let Some(sasl) = &session.sasl {
        sasl.admit(api).map_err(DispatchError::Unauthenticated)?;
    }
    // Decode.
    let malformed = |e: RequestDecodeError| DispatchError::Malformed {
        api,
        version,
        reason: e.to_string(),
    };
    let header = decode_header(api, version, &mut frame).map_err(malformed)?;
    if let Some(id) = &header.client_id {
        if session.client_id.as_deref() != Some(id.as_str()) {
            session.client_id = Some(id.to_string());
        }
    }
    tracing::trace!(peer = %session.peer, ?api, version, correlation_id = call.correlation_id, "request");
    let request = decode_body(api, version, &mut frame).map_err(malformed)?;
    // Authorize and handle (each handler checks the ACLs of what it touches), then the
    // steps every answer takes.
    route::route(broker, session, request, &call).await
}

/// Quota, metrics and encoding of a handler's reply.
fn finish<R: Answer>(
    broker: &Broker,
    session: &Session,
    call: &Call,
    mut reply: Reply<R>,
) -> Result<Dispatched, DispatchError> {
    let sent: usize = reply.bytes_out.iter().map(|(_, b)| b).sum();
    let throttle = broker.quotas.charge(
        session.user(),
        session.client_id(),
        reply.quota,
        call.request_bytes,
        sent,
        call.started.elapsed(),
    );
    count(broker, call.api, &reply);
    tracing::trace!(
        api = api_name(call.api),
        version = call.version,
        correlation_id = call.correlation_id,
        client = session.client_id.as_deref().unwrap_or(""),
        took_us = call.started.elapsed().as_micros() as u64,
        "answered"
    );
    if !throttle.is_zero() {
        let ms = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
        reply.response.set_throttle_ms(ms, call.version);
    }
    let header = FrameHeader {
        api: call.api,
        version: call.version,
        correlation_id: call.correlation_id,
    };
    let (api, version) = (call.api, call.version);
    let encode_error = move |e: anyhow::Error| DispatchError::Encode {
        api,
        version,
        reason: e.to_string(),
    };
    let answer = match reply.body {
        Body::Inline => Answered::Now(Some(
            reply
                .response
                .encode_frame(Vec::new(), header)
                .map_err(encode_error)?,
        )),
        Body::Records(records) => Answered::Now(Some(
            reply
                .response
                .encode_frame(records, header)
                .map_err(encode_error)?,
        )),
        Body::Later(later) => {
            let pending = later(reply.response);
            Answered::Later(Box::pin(async move {
                match pending.await {
                    Some(r) => r
                        .encode_frame(Vec::new(), header)
                        .map(Some)
                        .map_err(encode_error),
                    None => Ok(None),
                }
            }))
        }
        Body::Silent => Answered::Now(None),
    };
    Ok(Dispatched {
        answer,
        api: Some(call.api),
        throttle,
        close_after: reply.close_after,
        waited: reply.waited,
    })
}

/// Counts the error codes of an answer and the record bytes it sends per topic; the
/// request itself and its times are counted once the answer is sent.
fn count<R: Answer>(broker: &Broker, api: ApiKey, reply: &Reply<R>) {
    let m = &broker.metrics;
    // Errors are counted as they are met: no list is built for the usual all-zero answer.
    reply.response.error_codes(&mut |code| {
        if code != 0 {
            m.error(api_name(api), &error_name(code));
            tracing::debug!(
                api = api_name(api),
                error = %error_name(code),
                "answered with an error"
            );
        }
    });
    for (topic, bytes) in &reply.bytes_out {
        if *bytes > 0 {
            m.fetched(topic, *bytes);
        }
    }
}
