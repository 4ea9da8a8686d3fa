//! The HTTP listener of `metrics.listener`: `/metrics` in Prometheus text format,
//! `/health` (the process is alive) and `/ready` (storage recovered, listeners accepting,
//! not shutting down) for Kubernetes probes.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::metrics::Metrics;

/// What the HTTP endpoints report from.
pub(crate) struct HttpState {
    pub(crate) metrics: Arc<Metrics>,
    broker: OnceLock<Arc<Broker>>,
    ready: AtomicBool,
}

impl HttpState {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        HttpState {
            metrics,
            broker: OnceLock::new(),
            ready: AtomicBool::new(false),
        }
    }

    /// Storage is open and the listeners accept: `/ready` answers 200.
    pub(crate) fn set_ready(&self, broker: Arc<Broker>) {
        let _ = self.broker.set(broker);
        self.ready.store(true, Ordering::Release);
    }

    /// Shutdown began: `/ready` answers 503 so that traffic moves elsewhere.
    pub(crate) fn set_stopping(&self) {
        self.ready.store(false, Ordering::Release);
    }
}

/// True once a write to the data directory failed: its partitions are offline.
fn log_dir_failed(state: &HttpState) -> bool {
    state
        .broker
        .get()
        .is_some_and(|b| b.storage.log_dir_health().is_offline())
}

/// Tiered storage is on and the object store failed its last request.
fn remote_tier_down(state: &HttpState) -> bool {
    state.broker.get().is_some_and(|b| {
        b.tier
            .as_ref()
            .is_some_and(|t| !t.metrics.store_available())
    })
}

fn respond(state: &HttpState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = content_type.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.render(state.broker.get().map(|b| b.as_ref())),
        ),
        "/health" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/ready" if log_dir_failed(state) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready: the data directory failed\n".into(),
        ),
        "/ready" if remote_tier_down(state) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready: the remote tier's object store does not answer\n".into(),
        ),
        "/ready" if state.ready.load(Ordering::Acquire) => {
            reply(StatusCode::OK, "text/plain", "ready\n".into())
        }
        "/ready" => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".into(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Serves HTTP on `listener` until `stop` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = crate::stopped(&mut stop) => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let response = respond(&state, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}
