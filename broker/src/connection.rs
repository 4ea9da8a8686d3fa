//! One client connection: bounded frame reads, one request at a time (so responses stay
//! in order), no response for `acks=0` produce requests, and a last answer before a
//! close where the protocol asks for one (a failed SASL authentication).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use sluice_protocol::frame::take_frame;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::dispatch::{self, RequestContext};
use crate::metrics::RequestTimes;
use crate::response::{write_response, ResponseStream};
use crate::sasl::{SaslListener, SaslSession};

/// Serves one connection until the client closes it, sends garbage, or the broker stops.
pub(crate) async fn serve<S: ResponseStream>(
    broker: Arc<Broker>,
    mut stream: S,
    peer: SocketAddr,
    listener: String,
    principal: String,
    sasl: Option<Arc<SaslListener>>,
    mut stop: watch::Receiver<bool>,
) {
    let max = broker.config.socket_request_max_bytes.max(0) as usize;
    let mut buf = BytesMut::with_capacity(8 * 1024);
    // Copy buffer for fetched records on a stream that cannot take them by sendfile.
    let mut scratch = Vec::new();
    let mut ctx = RequestContext::new(peer, listener, principal, sasl.map(SaslSession::new));
    // connections.max.idle.ms counts from the last complete request, so a client that
    // trickles a frame byte by byte is closed too.
    let idle = broker.config.connections_max_idle;
    let mut idle_deadline = tokio::time::Instant::now() + idle;
    // When the last read returned: every frame taken before the next read was whole by
    // then, so its queue time starts here.
    let mut arrived = Instant::now();
    loop {
        loop {
            let frame = match take_frame(&mut buf, max) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, client_id = ctx.client_id.as_deref().unwrap_or(""), error = %e, "closing connection");
                    return;
                }
            };
            ctx.waited.take();
            let started = Instant::now();
            let handled = dispatch::handle(&broker, &mut ctx, frame).await;
            let ready = Instant::now();
            idle_deadline = tokio::time::Instant::now() + idle;
            let response = match handled {
                Ok(Some(response)) => response,
                Ok(None) => {
                    record(&broker, &mut ctx, arrived, started, ready, ready);
                    let throttle = std::mem::take(&mut ctx.throttle);
                    if !throttle.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep(throttle) => {}
                            _ = crate::stopped(&mut stop) => return,
                        }
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(%peer, client_id = ctx.client_id.as_deref().unwrap_or(""), error = %e, "closing connection");
                    let api = e.api().map_or("Unknown", dispatch::api_name);
                    broker.metrics.error(api, "CONNECTION_CLOSED");
                    return;
                }
            };
            let last = ctx.close_after.take();
            if let Some(delay) = last.filter(|d| !d.is_zero()) {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = crate::stopped(&mut stop) => return,
                }
            }
            let written = write_response(&mut stream, &response, &mut scratch).await;
            record(&broker, &mut ctx, arrived, started, ready, Instant::now());
            if let Err(e) = written {
                tracing::debug!(%peer, error = %e, "write failed");
                return;
            }
            if last.is_some() {
                return;
            }
            // KIP-219: the throttled client got its answer at once; its next request
            // waits until the throttle time has passed.
            let throttle = std::mem::take(&mut ctx.throttle);
            if !throttle.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(throttle) => {}
                    _ = crate::stopped(&mut stop) => return,
                }
                idle_deadline = tokio::time::Instant::now() + idle;
            }
        }
        let read = tokio::select! {
            r = stream.read_buf(&mut buf) => r,
            _ = crate::stopped(&mut stop) => return,
            _ = tokio::time::sleep_until(idle_deadline) => {
                tracing::debug!(%peer, idle_ms = idle.as_millis() as u64, "closing idle connection");
                return;
            }
        };
        match read {
            Ok(0) => return,
            Ok(_) => arrived = Instant::now(),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "read failed");
                return;
            }
        }
    }
}

/// Counts a request the dispatcher marked as served, with where its time went: a failed
/// authentication's deliberate delay counts as send time.
fn record(
    broker: &Broker,
    ctx: &mut RequestContext,
    arrived: Instant,
    started: Instant,
    ready: Instant,
    sent: Instant,
) {
    let remote = ctx.waited.take();
    if let Some(api) = ctx.served.take() {
        let times = RequestTimes::new(arrived, started, ready, remote, sent);
        broker.metrics.request(api, &times);
    }
}
