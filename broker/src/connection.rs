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
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use sluice_protocol::frame::take_frame;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::dispatch::{self, Answered, DispatchError, Dispatched, LaterResponse};
use crate::metrics::RequestTimes;
use crate::response::{write_response, Response, ResponseStream};
use crate::sasl::{SaslListener, SaslSession};
use crate::session::Session;

/// Produce answers that may wait for fsyncs at once; librdkafka and the Java client send
/// up to 5 requests before waiting.
const MAX_IN_FLIGHT: usize = 5;

/// The connection is over: the client left, broke the protocol, or the broker stops.
struct Closed;

/// Serves one connection until the client closes it, sends garbage, or the broker stops.
pub(crate) async fn serve<S: ResponseStream>(
    broker: Arc<Broker>,
    stream: S,
    peer: SocketAddr,
    listener: String,
    principal: String,
    sasl: Option<Arc<SaslListener>>,
    stop: watch::Receiver<bool>,
) {
    let session = Session::new(peer, listener, principal, sasl.map(SaslSession::new));
    let connection = session.connection;
    let shares = broker.shares.clone();
    let mut conn = Connection::new(broker, stream, session, stop);
    let _ = conn.run().await;
    // A share consumer that went away without closing its session: its records go back.
    shares.connection_closed(connection).await;
}

/// A Produce whose answer waits for its fsyncs.
struct InFlight {
    answer: LaterResponse,
    api: Option<ApiKey>,
    arrived: Instant,
    started: Instant,
    /// When its appends were done: the wait after it is remote time.
    appended: Instant,
}

/// What the request metrics need of an answered request.
#[derive(Clone, Copy)]
struct Counted {
    api: Option<ApiKey>,
    waited: Duration,
}

/// What the connection waits for between requests.
enum Event {
    Read(std::io::Result<usize>),
    Answer(Result<Option<Response>, DispatchError>),
    Stop,
    Idle,
}

struct Connection<S> {
    broker: Arc<Broker>,
    stream: S,
    session: Session,
    stop: watch::Receiver<bool>,
    /// Bytes read and not yet taken as frames.
    buf: BytesMut,
    /// Copy buffer for fetched records on a stream that cannot take them by sendfile.
    scratch: Vec<u8>,
    in_flight: VecDeque<InFlight>,
    /// connections.max.idle.ms counts from the last complete request, so a client that
    /// trickles a frame byte by byte is closed too.
    idle_deadline: tokio::time::Instant,
    /// When the last read returned: every frame taken before the next read was whole by
    /// then, so its queue time starts here.
    arrived: Instant,
}

impl<S: ResponseStream> Connection<S> {
    fn new(broker: Arc<Broker>, stream: S, session: Session, stop: watch::Receiver<bool>) -> Self {
        let idle_deadline = tokio::time::Instant::now() + broker.config.connections_max_idle;
        Connection {
            broker,
            stream,
            session,
            stop,
            buf: BytesMut::with_capacity(8 * 1024),
            scratch: Vec::new(),
            in_flight: VecDeque::new(),
            idle_deadline,
            arrived: Instant::now(),
        }
    }

    /// Read → dispatch → write, until the connection closes.
    async fn run(&mut self) -> Result<(), Closed> {
        loop {
            while let Some(frame) = self.next_frame()? {
                self.answer(frame).await?;
            }
            self.wait().await?;
        }
    }

    /// The next whole request frame read so far.
    fn next_frame(&mut self) -> Result<Option<Bytes>, Closed> {
        let max = self.broker.config.socket_request_max_bytes.max(0) as usize;
        take_frame(&mut self.buf, max).map_err(|e| {
            tracing::warn!(peer = %self.session.peer, client_id = self.session.client_id(), error = %e, "closing connection");
            Closed
        })
    }

    /// Handles one request and sends its answer, or queues it behind its fsyncs.
    async fn answer(&mut self, frame: Bytes) -> Result<(), Closed> {
        let produce = frame.get(..2) == Some(&[0, 0][..]);
        if !produce || self.in_flight.len() >= MAX_IN_FLIGHT {
            self.drain().await?;
        }
        let started = Instant::now();
        let handled = dispatch::handle(&self.broker, &mut self.session, frame).await;
        let ready = Instant::now();
        self.restart_idle_clock();
        let Dispatched {
            answer,
            api,
            throttle,
            close_after,
            waited,
        } = handled.map_err(|e| self.close_on_error(&e))?;
        let counted = Counted { api, waited };
        match answer {
            Answered::Later(answer) => self.in_flight.push_back(InFlight {
                answer,
                api,
                arrived: self.arrived,
                started,
                appended: ready,
            }),
            Answered::Now(response) => {
                self.drain().await?;
                self.send_now(counted, close_after, response, started, ready)
                    .await?;
            }
        }
        if !throttle.is_zero() {
            // KIP-219: the throttled client got its answer at once (answers already due go
            // out first); its next request waits until the throttle time has passed.
            self.drain().await?;
            self.pause(throttle).await?;
            self.restart_idle_clock();
        }
        Ok(())
    }

    /// Sends an answer that is ready (none for acks=0) and counts its request.
    async fn send_now(
        &mut self,
        counted: Counted,
        close_after: Option<Duration>,
        response: Option<Response>,
        started: Instant,
        ready: Instant,
    ) -> Result<(), Closed> {
        let Some(response) = response else {
            self.record(counted, started, ready, ready);
            return Ok(());
        };
        if let Some(delay) = close_after.filter(|d| !d.is_zero()) {
            self.pause(delay).await?;
        }
        let written = write_response(&mut self.stream, &response, &mut self.scratch).await;
        // A failed authentication's deliberate delay counts as send time.
        self.record(counted, started, ready, Instant::now());
        if let Err(e) = written {
            tracing::debug!(peer = %self.session.peer, error = %e, "write failed");
            return Err(Closed);
        }
        match close_after {
            Some(_) => Err(Closed),
            None => Ok(()),
        }
    }

    /// Waits for more bytes, the oldest queued answer, the broker's stop or the idle
    /// timeout.
    async fn wait(&mut self) -> Result<(), Closed> {
        let oldest_answer = async {
            match self.in_flight.front_mut() {
                Some(f) => (&mut f.answer).await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            r = self.stream.read_buf(&mut self.buf) => Event::Read(r),
            a = oldest_answer => Event::Answer(a),
            _ = crate::stopped(&mut self.stop) => Event::Stop,
            _ = tokio::time::sleep_until(self.idle_deadline) => Event::Idle,
        };
        match event {
            Event::Read(Ok(0)) | Event::Stop => Err(Closed),
            Event::Read(Ok(_)) => {
                self.arrived = Instant::now();
                Ok(())
            }
            Event::Read(Err(e)) => {
                tracing::debug!(peer = %self.session.peer, error = %e, "read failed");
                Err(Closed)
            }
            Event::Answer(answer) => match self.in_flight.pop_front() {
                Some(f) => self.send_later(f, answer).await,
                None => Ok(()),
            },
            Event::Idle => {
                let idle = self.broker.config.connections_max_idle;
                tracing::debug!(peer = %self.session.peer, idle_ms = idle.as_millis() as u64, "closing idle connection");
                Err(Closed)
            }
        }
    }

    fn restart_idle_clock(&mut self) {
        self.idle_deadline = tokio::time::Instant::now() + self.broker.config.connections_max_idle;
    }

    /// Sleeps for `delay`, unless the broker stops meanwhile.
    async fn pause(&mut self, delay: Duration) -> Result<(), Closed> {
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = crate::stopped(&mut self.stop) => Err(Closed),
        }
    }

    /// Sends every queued answer, in order.
    async fn drain(&mut self) -> Result<(), Closed> {
        while let Some(mut f) = self.in_flight.pop_front() {
            let answer = (&mut f.answer).await;
            self.send_later(f, answer).await?;
        }
        Ok(())
    }

    /// Sends one queued answer and counts its request.
    async fn send_later(
        &mut self,
        f: InFlight,
        answer: Result<Option<Response>, DispatchError>,
    ) -> Result<(), Closed> {
        let answered = Instant::now();
        let response = answer.map_err(|e| self.close_on_error(&e))?;
        let written = match &response {
            Some(r) => write_response(&mut self.stream, r, &mut self.scratch).await,
            None => Ok(()),
        };
        if let Some(api) = f.api {
            let remote = answered.saturating_duration_since(f.appended);
            let times = RequestTimes::new(f.arrived, f.started, answered, remote, Instant::now());
            self.broker.metrics.request(api, &times);
        }
        written.map_err(|e| {
            tracing::debug!(peer = %self.session.peer, error = %e, "write failed");
            Closed
        })
    }

    fn close_on_error(&self, e: &DispatchError) -> Closed {
        tracing::warn!(peer = %self.session.peer, client_id = self.session.client_id(), error = %e, "closing connection");
        let api = e.api().map_or("Unknown", sluice_protocol::names::api_name);
        self.broker.metrics.error(api, "CONNECTION_CLOSED");
        Closed
    }

    /// Counts a request with where its time went.
    fn record(&self, counted: Counted, started: Instant, ready: Instant, sent: Instant) {
        if let Some(api) = counted.api {
            let times = RequestTimes::new(self.arrived, started, ready, counted.waited, sent);
            self.broker.metrics.request(api, &times);
        }
    }
}
