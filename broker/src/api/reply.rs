//! The one shape every API handler returns, and what the steps after a handler (quota,
//! metrics, encoding) read from it, so that the dispatcher never names an API.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use sluice_storage::FileRegion;

pub(crate) use crate::quota::QuotaUse;
use crate::response::Response;

/// What handling a request gave: the response and how it goes out.
pub(crate) struct Reply<R> {
    /// The answer as built by the handler; the quota step may still set its throttle.
    pub(crate) response: R,
    /// How the answer is sent.
    pub(crate) body: Body<R>,
    /// How the request counts against the client's quotas.
    pub(crate) quota: QuotaUse,
    /// Record bytes sent per topic, for `sluice_bytes_out_total` and the fetch quota.
    pub(crate) bytes_out: Vec<(String, usize)>,
    /// Set when this answer must be the connection's last: it is sent after this delay
    /// and the connection closes.
    pub(crate) close_after: Option<Duration>,
    /// Time spent waiting by design (a rebalance), counted as remote time.
    pub(crate) waited: Duration,
}

/// A response whose sending waits for something: a Produce's fsyncs.
pub(crate) type Later<R> =
    Box<dyn FnOnce(R) -> Pin<Box<dyn Future<Output = Option<R>> + Send>> + Send>;

/// How an answer goes out.
pub(crate) enum Body<R> {
    /// Encoded whole, now.
    Inline,
    /// Encoded now, with record batches left in their segment files until written.
    Records(Vec<PartitionRecords>),
    /// Finished later (a Produce waiting for the fsyncs of its flush policy); the
    /// connection may take the next Produce meanwhile. `None` then means no answer.
    Later(Later<R>),
    /// No answer at all (`acks=0`).
    Silent,
}

/// The records of one partition of a response, left in a segment file.
#[derive(Debug, Clone)]
pub(crate) struct PartitionRecords {
    /// Index of the topic in the response.
    pub(crate) topic: usize,
    /// Index of the partition within that topic.
    pub(crate) partition: usize,
    /// The batches to send.
    pub(crate) region: FileRegion,
}

impl<R> Reply<R> {
    /// An answer encoded whole, counted by handling time.
    pub(crate) fn new(response: R) -> Self {
        Reply {
            response,
            body: Body::Inline,
            quota: QuotaUse::Time,
            bytes_out: Vec::new(),
            close_after: None,
            waited: Duration::ZERO,
        }
    }

    /// Sets how the request counts against quotas.
    pub(crate) fn quota(mut self, quota: QuotaUse) -> Self {
        self.quota = quota;
        self
    }

    /// Marks the answer as the connection's last, sent after `delay`.
    pub(crate) fn close_after(mut self, delay: Option<Duration>) -> Self {
        self.close_after = delay;
        self
    }

    /// Records time spent waiting by design.
    pub(crate) fn waited(mut self, waited: Duration) -> Self {
        self.waited = waited;
        self
    }
}

/// What the steps after a handler need from its response type. Each handler module
/// implements it for the responses it builds, so a new API cannot forget its errors.
pub(crate) trait Answer: Into<ResponseKind> + Send + 'static {
    /// Calls `note` with every error code in the answer, zeros included.
    fn error_codes(&self, note: &mut dyn FnMut(i16));

    /// Puts the quota throttle in the answer, where the API carries it to the client.
    fn set_throttle_ms(&mut self, _ms: i32, _version: i16) {}

    /// The whole frame, file regions included.
    fn encode_frame(
        self,
        records: Vec<PartitionRecords>,
        header: FrameHeader,
    ) -> anyhow::Result<Response> {
        anyhow::ensure!(
            records.is_empty(),
            "{:?} cannot carry file regions",
            header.api
        );
        encode(header, &self.into()).map(Response::from)
    }
}

/// What a response frame's header needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameHeader {
    pub(crate) api: ApiKey,
    pub(crate) version: i16,
    pub(crate) correlation_id: i32,
}

/// Encodes a whole response frame, size prefix included.
pub(crate) fn encode(header: FrameHeader, response: &ResponseKind) -> anyhow::Result<Bytes> {
    let mut h = ResponseHeader::default();
    h.correlation_id = header.correlation_id;
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    h.encode(&mut buf, header.api.response_header_version(header.version))?;
    response.encode(&mut buf, header.version)?;
    let size = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// The entries of a response list, whether the list is nullable or not.
pub(crate) trait Entries {
    type Item;
    /// The entries; none for a null list.
    fn entries(&self) -> &[Self::Item];
}

impl<T> Entries for Vec<T> {
    type Item = T;
    fn entries(&self) -> &[T] {
        self
    }
}

impl<T> Entries for Option<Vec<T>> {
    type Item = T;
    fn entries(&self) -> &[T] {
        self.as_deref().unwrap_or_default()
    }
}

/// Implements [`Answer`] for a response from where its error codes sit: each
/// `[list => ... => field]` names a path through nested lists to an error-code field.
macro_rules! answer {
    ($ty:ty: $([$($path:ident)=>+]),+ $(,)?) => {
        impl $crate::api::reply::Answer for $ty {
            fn error_codes(&self, note: &mut dyn FnMut(i16)) {
                $( $crate::api::reply::answer!(@walk self, note, $($path)=>+); )+
            }
        }
    };
    (@walk $x:expr, $note:ident, $field:ident) => {
        $note($x.$field)
    };
    (@walk $x:expr, $note:ident, $list:ident => $($rest:ident)=>+) => {
        for entry in $crate::api::reply::Entries::entries(&$x.$list) {
            $crate::api::reply::answer!(@walk entry, $note, $($rest)=>+);
        }
    };
}
pub(crate) use answer;
