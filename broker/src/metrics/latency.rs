//! Request counts and latency per API, split as Kafka splits it: queue (RequestQueueTimeMs),
//! handle (LocalTimeMs), remote (RemoteTimeMs: waiting by design), send
//! (ResponseSendTimeMs) and their sum (TotalTimeMs).

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// Bucket bounds in seconds: 50 µs for a pipelined request's queue time up to a minute
/// for a rebalance.
const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Where one request's time went; the phases add up to `total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestTimes {
    /// From the whole frame having been read to its handler starting.
    pub(crate) queue: Duration,
    /// The handler's own work: decoding, the API's logic, encoding.
    pub(crate) handle: Duration,
    /// Waiting by design inside the handler (see [`WaitClock`]).
    pub(crate) remote: Duration,
    /// From the response being ready to its bytes being flushed to the socket.
    pub(crate) send: Duration,
    /// From the whole frame having been read to the response flushed.
    pub(crate) total: Duration,
}

impl RequestTimes {
    /// The phases of a request whose frame was whole at `arrived`, whose handler ran from
    /// `started` to `handled` (waiting `remote` of that) and whose answer was flushed at
    /// `sent`.
    pub(crate) fn new(
        arrived: Instant,
        started: Instant,
        handled: Instant,
        remote: Duration,
        sent: Instant,
    ) -> Self {
        let running = handled.saturating_duration_since(started);
        let remote = remote.min(running);
        RequestTimes {
            queue: started.saturating_duration_since(arrived),
            handle: running - remote,
            remote,
            send: sent.saturating_duration_since(handled),
            total: sent.saturating_duration_since(arrived),
        }
    }
}

/// Awaits `fut`, with how long it took: a handler's waiting by design (its remote time,
/// as Kafka's purgatory counts it).
pub(crate) async fn timed<F: Future>(fut: F) -> (F::Output, Duration) {
    let started = Instant::now();
    let out = fut.await;
    (out, started.elapsed())
}

/// One API's counter and histograms, resolved once so that a request costs no label
/// lookup.
struct ApiTimers {
    requests: IntCounter,
    queue: Histogram,
    handle: Histogram,
    remote: Histogram,
    send: Histogram,
    total: Histogram,
}

/// `sluice_requests_total` and the latency histograms, by API.
pub(crate) struct RequestMetrics {
    requests: IntCounterVec,
    queue: HistogramVec,
    handle: HistogramVec,
    remote: HistogramVec,
    send: HistogramVec,
    total: HistogramVec,
    /// Indexed by API key; filled on an API's first request so that APIs never called
    /// export no series.
    by_key: Box<[OnceLock<ApiTimers>]>,
}

fn histogram(name: &str, help: &str) -> prometheus::Result<HistogramVec> {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        &["api"],
    )
}

impl RequestMetrics {
    /// The request metrics, registered in `registry`.
    pub(crate) fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "sluice_requests_total",
                "Requests answered (or, for acks=0, handled), by API.",
            ),
            &["api"],
        )?;
        let queue = histogram(
            "sluice_request_queue_seconds",
            "Time from a request's frame having been read to its handler starting, by API: waiting behind earlier requests of the connection and the quota mute.",
        )?;
        let handle = histogram(
            "sluice_request_handle_seconds",
            "Time the handler worked on a request (decode, logic, encode), by API; waiting by design is in sluice_request_remote_seconds.",
        )?;
        let remote = histogram(
            "sluice_request_remote_seconds",
            "Time a handler waited by design, by API: Fetch for data (max.wait.ms), JoinGroup and SyncGroup for the group, Produce for the log flush.",
        )?;
        let send = histogram(
            "sluice_request_send_seconds",
            "Time from a response being ready to its bytes being flushed to the socket, by API.",
        )?;
        let total = histogram(
            "sluice_request_duration_seconds",
            "Time from a request's frame having been read to its response flushed, by API: queue + handle + remote + send.",
        )?;
        for c in [&queue, &handle, &remote, &send, &total] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(requests.clone()))?;
        let slots = ApiKey::iter().map(|k| k as usize + 1).max().unwrap_or(0);
        Ok(RequestMetrics {
            requests,
            queue,
            handle,
            remote,
            send,
            total,
            by_key: (0..slots).map(|_| OnceLock::new()).collect(),
        })
    }

    /// A request of `api` finished, having spent `t`.
    pub(crate) fn observe(&self, api: ApiKey, t: &RequestTimes) {
        let Some(slot) = self.by_key.get(api as usize) else {
            return;
        };
        let m = slot.get_or_init(|| {
            // Kafka's name for the API (`Produce`) is ApiKey's Debug.
            let name = format!("{api:?}");
            let l = &[name.as_str()];
            ApiTimers {
                requests: self.requests.with_label_values(l),
                queue: self.queue.with_label_values(l),
                handle: self.handle.with_label_values(l),
                remote: self.remote.with_label_values(l),
                send: self.send.with_label_values(l),
                total: self.total.with_label_values(l),
            }
        });
        m.requests.inc();
        m.queue.observe(t.queue.as_secs_f64());
        m.handle.observe(t.handle.as_secs_f64());
        m.remote.observe(t.remote.as_secs_f64());
        m.send.observe(t.send.as_secs_f64());
        m.total.observe(t.total.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_add_up_to_the_total() {
        let arrived = Instant::now();
        let ms = Duration::from_millis;
        let t = RequestTimes::new(
            arrived,
            arrived + ms(2),
            arrived + ms(10),
            ms(5),
            arrived + ms(11),
        );
        assert_eq!(
            t,
            RequestTimes {
                queue: ms(2),
                handle: ms(3),
                remote: ms(5),
                send: ms(1),
                total: ms(11),
            }
        );
        assert_eq!(t.queue + t.handle + t.remote + t.send, t.total);
    }

    #[test]
    fn remote_never_exceeds_the_handler_run() {
        let arrived = Instant::now();
        let handled = arrived + Duration::from_millis(1);
        let t = RequestTimes::new(arrived, arrived, handled, Duration::from_secs(1), handled);
        assert_eq!(t.remote, Duration::from_millis(1));
        assert_eq!(t.handle, Duration::ZERO);
    }

    #[tokio::test]
    async fn timed_gives_the_output_and_the_wait() {
        let ten = Duration::from_millis(10);
        assert_eq!(timed(async { 7 }).await.0, 7);
        let ((), took) = timed(tokio::time::sleep(ten)).await;
        assert!(took >= ten);
    }
}
