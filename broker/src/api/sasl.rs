//! SaslHandshake and SaslAuthenticate: the connection's SASL session does the work; this
//! answers with Kafka's error codes, logs outcomes without secrets, and closes the
//! connection (after `connection.failed.authentication.delay.ms`) when authentication
//! fails.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::api::reply::{answer, QuotaUse, Reply};
use crate::broker::Broker;
use crate::error::{code, NONE};
use crate::sasl::Refusal;
use crate::session::Session;

/// SaslHandshake: ILLEGAL_SASL_STATE outside a SASL listener, UNSUPPORTED_SASL_MECHANISM
/// for a mechanism the listener does not offer; both close the connection.
pub(crate) async fn sasl_handshake(
    _broker: &Broker,
    session: &mut Session,
    req: SaslHandshakeRequest,
    version: i16,
) -> Reply<SaslHandshakeResponse> {
    let mut r = SaslHandshakeResponse::default();
    let mut close_after = None;
    let Some(sasl) = session.sasl.as_mut() else {
        r.error_code = code(ResponseError::IllegalSaslState);
        return Reply::new(r)
            .quota(QuotaUse::Exempt)
            .close_after(Some(Duration::ZERO));
    };
    r.mechanisms = sasl
        .mechanism_names()
        .into_iter()
        .map(StrBytes::from_static_str)
        .collect();
    match sasl.handshake(req.mechanism.as_str(), version == 0) {
        Ok(()) => r.error_code = NONE,
        Err(refusal) => {
            tracing::info!(peer = %session.peer, listener = %session.listener, mechanism = %req.mechanism.as_str(), reason = %refusal.message, "SASL handshake refused");
            r.error_code = code(refusal.error);
            close_after = Some(Duration::ZERO);
        }
    }
    Reply::new(r)
        .quota(QuotaUse::Exempt)
        .close_after(close_after)
}

answer!(SaslHandshakeResponse: [error_code]);
answer!(SaslAuthenticateResponse: [error_code]);

/// SaslAuthenticate: one step of the exchange; SASL_AUTHENTICATION_FAILED with Kafka's
/// message when the credentials are wrong.
pub(crate) async fn sasl_authenticate(
    broker: &Broker,
    session: &mut Session,
    req: SaslAuthenticateRequest,
    version: i16,
) -> Reply<SaslAuthenticateResponse> {
    let mut r = SaslAuthenticateResponse::default();
    let mut close_after = None;
    match step(broker, session, &req.auth_bytes) {
        Ok((response, lifetime_ms)) => {
            r.error_code = NONE;
            r.error_message = None;
            r.auth_bytes = Bytes::from(response);
            if version >= 1 {
                r.session_lifetime_ms = lifetime_ms;
            }
        }
        Err((refusal, delay)) => {
            r.error_code = code(refusal.error);
            r.error_message = Some(StrBytes::from_string(refusal.message));
            close_after = Some(delay);
        }
    }
    Reply::new(r)
        .quota(QuotaUse::Exempt)
        .close_after(close_after)
}

/// A bare SASL token after SaslHandshake v0: the answer is a bare size-prefixed token,
/// and a failure closes the connection without one, as Kafka does. Gives the answer and,
/// on failure, the delay before the connection closes.
pub(crate) fn raw_token(
    broker: &Broker,
    session: &mut Session,
    token: &[u8],
) -> (Bytes, Option<Duration>) {
    match step(broker, session, token) {
        Ok((response, _)) => {
            let mut out = Vec::with_capacity(4 + response.len());
            out.extend_from_slice(&(response.len() as u32).to_be_bytes());
            out.extend_from_slice(&response);
            (Bytes::from(out), None)
        }
        Err((_, delay)) => (Bytes::new(), Some(delay)),
    }
}

/// One step of the exchange: the server's message and, once authenticated, the session
/// lifetime; a refusal is logged and comes with the delay before the connection closes.
fn step(
    broker: &Broker,
    session: &mut Session,
    message: &[u8],
) -> Result<(Vec<u8>, i64), (Refusal, Duration)> {
    let Some(sasl) = session.sasl.as_mut() else {
        let refusal = Refusal {
            error: ResponseError::IllegalSaslState,
            message: "SaslAuthenticate on a listener without SASL".into(),
            user: None,
        };
        return Err((refusal, Duration::ZERO));
    };
    match sasl.authenticate(message) {
        Ok(accepted) => {
            let mut lifetime_ms = 0;
            if let Some(done) = accepted.completed {
                lifetime_ms = done.session_lifetime_ms;
                tracing::debug!(
                    peer = %session.peer,
                    listener = %session.listener,
                    principal = %done.principal,
                    reauthenticated = done.reauthenticated,
                    session_lifetime_ms = done.session_lifetime_ms,
                    "SASL authenticated"
                );
                session.principal = done.principal;
            }
            Ok((accepted.response, lifetime_ms))
        }
        Err(refusal) => {
            // Kafka's error and message, with the user name but never the password or
            // token; the delay slows down guessing.
            tracing::info!(
                peer = %session.peer,
                listener = %session.listener,
                client_id = session.client_id(),
                user = refusal.user.as_deref().unwrap_or(""),
                reason = %refusal.message,
                "SASL authentication failed"
            );
            let delay = if refusal.error == ResponseError::SaslAuthenticationFailed {
                broker.config.failed_authentication_delay
            } else {
                Duration::ZERO
            };
            Err((refusal, delay))
        }
    }
}
