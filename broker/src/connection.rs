//! One client connection: bounded frame reads, requests answered in order, no response
//! for `acks=0` produce requests, and a last answer before a close where the protocol asks
//! for one (a failed SASL authentication).
//!
//! Requests are handled one at a time, as Kafka does, with one exception: while Produce
//! answers wait for the fsyncs of a flush policy, the next Produce requests are appended
//! (up to [`MAX_IN_FLIGHT`]), so that the disk and the network overlap. Any other request
//! first waits until every earlier answer is sent.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use sluice_protocol::frame::take_frame;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::dispatch::{self, DispatchError, Handled, LaterResponse, RequestContext};
use crate::metrics::RequestTimes;
use crate::response::{write_response, Response, ResponseStream};
use crate::sasl::{SaslListener, SaslSession};

/// Produce answers that may wait for fsyncs at once; librdkafka and the Java client send
/// up to 5 requests before waiting.
const MAX_IN_FLIGHT: usize = 5;

/// A Produce whose answer waits for its fsyncs.
struct InFlight {
    answer: LaterResponse,
    api: Option<ApiKey>,
    arrived: Instant,
    started: Instant,
    /// When its appends were done: the wait after it is remote time.
    appended: Instant,
}

/// What the connection waits for between requests.
enum Event {
    Read(std::io::Result<usize>),
    Answer(Result<Option<Response>, DispatchError>),
    Stop,
    Idle,
}

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
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
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
            let produce = frame.get(..2) == Some(&[0, 0][..]);
            if !produce || in_flight.len() >= MAX_IN_FLIGHT {
                let drained = drain(&broker, &mut stream, &mut scratch, &mut in_flight, &ctx);
                if !drained.await {
                    return;
                }
            }
            ctx.waited.take();
            let started = Instant::now();
            let handled = dispatch::handle(&broker, &mut ctx, frame).await;
            let ready = Instant::now();
            idle_deadline = tokio::time::Instant::now() + idle;
            let response = match handled {
                Ok(Handled::Later(answer)) => {
                    // Counted when it is answered.
                    ctx.waited.take();
                    in_flight.push_back(InFlight {
                        answer,
                        api: ctx.served.take(),
                        arrived,
                        started,
                        appended: ready,
                    });
                    None
                }
                Ok(Handled::Now(response)) => {
                    let drained = drain(&broker, &mut stream, &mut scratch, &mut in_flight, &ctx);
                    if !drained.await {
                        return;
                    }
                    response
                }
                Err(e) => {
                    close_on_error(&broker, &ctx, &e);
                    return;
                }
            };
            let Some(response) = response else {
                record(&broker, &mut ctx, arrived, started, ready, ready);
                let throttle = std::mem::take(&mut ctx.throttle);
                if !throttle.is_zero() {
                    // KIP-219: answers already due go out before the pause.
                    let drained = drain(&broker, &mut stream, &mut scratch, &mut in_flight, &ctx);
                    if !drained.await || !pause(throttle, &mut stop).await {
                        return;
                    }
                    idle_deadline = tokio::time::Instant::now() + idle;
                }
                continue;
            };
            let last = ctx.close_after.take();
            if let Some(delay) = last.filter(|d| !d.is_zero()) {
                if !pause(delay, &mut stop).await {
                    return;
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
                if !pause(throttle, &mut stop).await {
                    return;
                }
                idle_deadline = tokio::time::Instant::now() + idle;
            }
        }
        let oldest_answer = async {
            match in_flight.front_mut() {
                Some(f) => (&mut f.answer).await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            r = stream.read_buf(&mut buf) => Event::Read(r),
            a = oldest_answer => Event::Answer(a),
            _ = crate::stopped(&mut stop) => Event::Stop,
            _ = tokio::time::sleep_until(idle_deadline) => Event::Idle,
        };
        match event {
            Event::Read(Ok(0)) | Event::Stop => return,
            Event::Read(Ok(_)) => arrived = Instant::now(),
            Event::Read(Err(e)) => {
                tracing::debug!(%peer, error = %e, "read failed");
                return;
            }
            Event::Answer(answer) => {
                let Some(f) = in_flight.pop_front() else {
                    continue;
                };
                if !send_later(&broker, &mut stream, &mut scratch, &ctx, f, answer).await {
                    return;
                }
            }
            Event::Idle => {
                tracing::debug!(%peer, idle_ms = idle.as_millis() as u64, "closing idle connection");
                return;
            }
        }
    }
}

/// Sleeps for `delay`; false when the broker stops meanwhile.
async fn pause(delay: std::time::Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = crate::stopped(stop) => false,
    }
}

/// Sends every in-flight answer, in order; false when the connection must close.
async fn drain<S: ResponseStream>(
    broker: &Broker,
    stream: &mut S,
    scratch: &mut Vec<u8>,
    in_flight: &mut VecDeque<InFlight>,
    ctx: &RequestContext,
) -> bool {
    while let Some(mut f) = in_flight.pop_front() {
        let answer = (&mut f.answer).await;
        if !send_later(broker, stream, scratch, ctx, f, answer).await {
            return false;
        }
    }
    true
}

/// Sends one in-flight answer and counts its request; false when the connection must close.
async fn send_later<S: ResponseStream>(
    broker: &Broker,
    stream: &mut S,
    scratch: &mut Vec<u8>,
    ctx: &RequestContext,
    f: InFlight,
    answer: Result<Option<Response>, DispatchError>,
) -> bool {
    let answered = Instant::now();
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            close_on_error(broker, ctx, &e);
            return false;
        }
    };
    let written = match &response {
        Some(r) => write_response(stream, r, scratch).await,
        None => Ok(()),
    };
    if let Some(api) = f.api {
        let remote = answered.saturating_duration_since(f.appended);
        let times = RequestTimes::new(f.arrived, f.started, answered, remote, Instant::now());
        broker.metrics.request(api, &times);
    }
    if let Err(e) = written {
        tracing::debug!(peer = %ctx.peer, error = %e, "write failed");
        return false;
    }
    true
}

fn close_on_error(broker: &Broker, ctx: &RequestContext, e: &DispatchError) {
    tracing::warn!(peer = %ctx.peer, client_id = ctx.client_id.as_deref().unwrap_or(""), error = %e, "closing connection");
    let api = e.api().map_or("Unknown", sluice_protocol::names::api_name);
    broker.metrics.error(api, "CONNECTION_CLOSED");
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
