//! The registry's HTTP listeners (`schema.registry.listeners`): HTTP/1.1, plain or TLS,
//! with a bound on the request body, Confluent's content types, and the callers checked
//! by [`Access`] before the request reaches the registry.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{header, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::{Access, SchemaRegistry};

/// What every connection of the listeners shares.
pub(crate) struct RegistryService {
    /// The registry.
    pub(crate) registry: Arc<SchemaRegistry>,
    /// Who may call.
    pub(crate) access: Access,
    /// `schema.registry.max.request.bytes`.
    pub(crate) max_request_bytes: usize,
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The content type of every answer, as Confluent's registry gives it.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Request content types Confluent's registry accepts.
const ACCEPTED_TYPES: &[&str] = &[
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

/// Serves the registry on `listener` until `stop` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: Arc<RegistryService>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = crate::stopped(&mut stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "schema registry accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = service.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(stream, peer.ip(), service).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => connection(s, peer.ip(), service).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "schema registry TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "schema registry TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn connection<S>(stream: S, peer: IpAddr, service: Arc<RegistryService>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(respond(&service, peer, req).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), svc)
        .await
    {
        tracing::debug!(error = %e, "schema registry connection ended with an error");
    }
}

fn answer(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(CONTENT_TYPE),
    );
    r
}

fn error(status: u16, error_code: i32, message: impl Into<String>) -> Response<Full<Bytes>> {
    answer(
        status,
        &json!({"error_code": error_code, "message": message.into()}),
    )
}

async fn respond(
    service: &RegistryService,
    peer: IpAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let Some(principal) = service.access.authenticate(authorization) else {
        let mut r = error(401, 401, "Unauthorized");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"SchemaRegistry\""),
        );
        return r;
    };
    let too_large = || {
        error(
            413,
            413,
            format!(
                "Request body is larger than schema.registry.max.request.bytes ({})",
                service.max_request_bytes
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > service.max_request_bytes as u64) {
        return too_large();
    }
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let essence = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !ACCEPTED_TYPES.contains(&essence.as_str()) {
            return error(415, 415, "HTTP 415 Unsupported Media Type");
        }
    }
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match Limited::new(req.into_body(), service.max_request_bytes)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Err(e) => {
            tracing::debug!(error = %e, "reading a schema registry request failed");
            return error(400, 400, "the request body could not be read");
        }
    };
    let segments = sluice_registry::path_segments(&path);
    if let Err(message) = service
        .access
        .authorize(&principal, peer, &method, &segments)
    {
        return error(403, 40301, message);
    }
    let reply = service
        .registry
        .call(&sluice_registry::Request {
            method: &method,
            path: &path,
            query: &query,
            body: &body,
        })
        .await;
    let mut body = reply.body;
    if method == "GET" && segments == ["subjects"] {
        // A subject list names only the subjects the caller may describe.
        if let Value::Array(subjects) = &mut body {
            subjects.retain(|s| {
                s.as_str()
                    .is_some_and(|s| service.access.may_describe(&principal, peer, s))
            });
        }
    }
    answer(reply.status, &body)
}
