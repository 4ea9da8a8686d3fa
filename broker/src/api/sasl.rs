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

use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::error::{code, NONE};
use crate::sasl::Refusal;

/// SaslHandshake: ILLEGAL_SASL_STATE outside a SASL listener, UNSUPPORTED_SASL_MECHANISM
/// for a mechanism the listener does not offer; both close the connection.
pub(crate) fn sasl_handshake(
    ctx: &mut RequestContext,
    req: SaslHandshakeRequest,
    version: i16,
) -> SaslHandshakeResponse {
    let mut r = SaslHandshakeResponse::default();
    let Some(session) = ctx.sasl.as_mut() else {
        r.error_code = code(ResponseError::IllegalSaslState);
        ctx.close_after = Some(Duration::ZERO);
        return r;
    };
    r.mechanisms = session
        .mechanism_names()
        .into_iter()
        .map(StrBytes::from_static_str)
        .collect();
    match session.handshake(req.mechanism.as_str(), version == 0) {
        Ok(()) => r.error_code = NONE,
        Err(refusal) => {
            tracing::info!(peer = %ctx.peer, listener = %ctx.listener, mechanism = %req.mechanism.as_str(), reason = %refusal.message, "SASL handshake refused");
            r.error_code = code(refusal.error);
            ctx.close_after = Some(Duration::ZERO);
        }
    }
    r
}

/// SaslAuthenticate: one step of the exchange; SASL_AUTHENTICATION_FAILED with Kafka's
/// message when the credentials are wrong.
pub(crate) fn sasl_authenticate(
    broker: &Broker,
    ctx: &mut RequestContext,
    req: SaslAuthenticateRequest,
    version: i16,
) -> SaslAuthenticateResponse {
    let mut r = SaslAuthenticateResponse::default();
    match step(broker, ctx, &req.auth_bytes) {
        Ok((response, lifetime_ms)) => {
            r.error_code = NONE;
            r.error_message = None;
            r.auth_bytes = Bytes::from(response);
            if version >= 1 {
                r.session_lifetime_ms = lifetime_ms;
            }
        }
        Err(refusal) => {
            r.error_code = code(refusal.error);
            r.error_message = Some(StrBytes::from_string(refusal.message));
        }
    }
    r
}

/// A bare SASL token after SaslHandshake v0: the answer is a bare size-prefixed token,
/// and a failure closes the connection without one, as Kafka does.
pub(crate) fn raw_token(broker: &Broker, ctx: &mut RequestContext, token: &[u8]) -> Bytes {
    match step(broker, ctx, token) {
        Ok((response, _)) => {
            let mut out = Vec::with_capacity(4 + response.len());
            out.extend_from_slice(&(response.len() as u32).to_be_bytes());
            out.extend_from_slice(&response);
            Bytes::from(out)
        }
        Err(_) => Bytes::new(),
    }
}

/// One step of the exchange: the server's message and, once authenticated, the session
/// lifetime; a refusal is logged and marks the connection for closing.
fn step(
    broker: &Broker,
    ctx: &mut RequestContext,
    message: &[u8],
) -> Result<(Vec<u8>, i64), Refusal> {
    let Some(session) = ctx.sasl.as_mut() else {
        ctx.close_after = Some(Duration::ZERO);
        return Err(Refusal {
            error: ResponseError::IllegalSaslState,
            message: "SaslAuthenticate on a listener without SASL".into(),
            user: None,
        });
    };
    match session.authenticate(message) {
        Ok(accepted) => {
            let mut lifetime_ms = 0;
            if let Some(done) = accepted.completed {
                lifetime_ms = done.session_lifetime_ms;
                tracing::debug!(
                    peer = %ctx.peer,
                    listener = %ctx.listener,
                    principal = %done.principal,
                    reauthenticated = done.reauthenticated,
                    session_lifetime_ms = done.session_lifetime_ms,
                    "SASL authenticated"
                );
                ctx.principal = done.principal;
            }
            Ok((accepted.response, lifetime_ms))
        }
        Err(refusal) => {
            // Kafka's error and message, with the user name but never the password or
            // token; the delay slows down guessing.
            tracing::info!(
                peer = %ctx.peer,
                listener = %ctx.listener,
                client_id = ctx.client_id.as_deref().unwrap_or(""),
                user = refusal.user.as_deref().unwrap_or(""),
                reason = %refusal.message,
                "SASL authentication failed"
            );
            ctx.close_after = Some(
                if refusal.error == ResponseError::SaslAuthenticationFailed {
                    broker.config.failed_authentication_delay
                } else {
                    Duration::ZERO
                },
            );
            Err(refusal)
        }
    }
}
