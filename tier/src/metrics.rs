//! The remote tier's counters and read latency, registered by the broker with its other
//! metrics.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

/// Counters of copies, reads and deletions, and whether the object store answers.
#[derive(Clone)]
pub struct TierMetrics {
    /// Bytes copied to, read from and deleted from the object store.
    pub(crate) bytes: IntCounterVec,
    /// Segments copied and deleted.
    pub(crate) segments: IntCounterVec,
    /// Failed copies, reads and deletions.
    pub(crate) errors: IntCounterVec,
    /// How long a read from the remote tier took (cache hits included).
    pub(crate) read_latency: Histogram,
    /// Chunk lookups in the read cache, by hit or miss.
    pub(crate) cache: IntCounterVec,
    /// 1 while the object store answers, 0 after a failed request until one succeeds.
    pub(crate) available: IntGauge,
}

/// The totals, for tests and status lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierSnapshot {
    /// Segments copied.
    pub segments_copied: u64,
    /// Segments deleted.
    pub segments_deleted: u64,
    /// Failed copies.
    pub copy_errors: u64,
}

impl TierMetrics {
    /// New, unregistered metrics.
    pub fn new() -> prometheus::Result<Self> {
        let bytes = IntCounterVec::new(
            Opts::new(
                "sluice_remote_bytes_total",
                "Bytes of the remote tier: copied (segments and their indexes uploaded), fetched (read from the object store), deleted (segments removed from it).",
            ),
            &["op"],
        )?;
        let segments = IntCounterVec::new(
            Opts::new(
                "sluice_remote_segments_total",
                "Segments copied to and deleted from the remote tier.",
            ),
            &["op"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "sluice_remote_errors_total",
                "Failed requests to the remote tier: copy, fetch (a read for a consumer or an offset lookup), delete.",
            ),
            &["op"],
        )?;
        let read_latency = Histogram::with_opts(
            HistogramOpts::new(
                "sluice_remote_read_latency_seconds",
                "How long a read from the remote tier took, cache hits included.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let cache = IntCounterVec::new(
            Opts::new(
                "sluice_remote_cache_requests_total",
                "Chunk lookups in the remote read cache (remote.storage.cache.bytes), by result: hit or miss.",
            ),
            &["result"],
        )?;
        let available = IntGauge::new(
            "sluice_remote_storage_available",
            "1 while the object store answers; 0 after a failed request, until one succeeds.",
        )?;
        available.set(1);
        // Every series exists from the start, at 0, so rates and alerts see it.
        for op in ["copied", "fetched", "deleted"] {
            bytes.with_label_values(&[op]);
        }
        for op in ["copied", "deleted"] {
            segments.with_label_values(&[op]);
        }
        for op in ["copy", "fetch", "delete"] {
            errors.with_label_values(&[op]);
        }
        for result in ["hit", "miss"] {
            cache.with_label_values(&[result]);
        }
        Ok(TierMetrics {
            bytes,
            segments,
            errors,
            read_latency,
            cache,
            available,
        })
    }

    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.bytes.clone()))?;
        registry.register(Box::new(self.segments.clone()))?;
        registry.register(Box::new(self.errors.clone()))?;
        registry.register(Box::new(self.read_latency.clone()))?;
        registry.register(Box::new(self.cache.clone()))?;
        registry.register(Box::new(self.available.clone()))?;
        Ok(())
    }

    /// The totals so far.
    pub fn snapshot(&self) -> TierSnapshot {
        TierSnapshot {
            segments_copied: self.segments.with_label_values(&["copied"]).get(),
            segments_deleted: self.segments.with_label_values(&["deleted"]).get(),
            copy_errors: self.errors.with_label_values(&["copy"]).get(),
        }
    }

    /// Records whether the object store answered.
    pub fn set_available(&self, up: bool) {
        self.available.set(i64::from(up));
    }

    /// Whether the last request to the object store succeeded.
    pub fn store_available(&self) -> bool {
        self.available.get() == 1
    }

    pub(crate) fn add_bytes(&self, op: &str, n: u64) {
        self.bytes.with_label_values(&[op]).inc_by(n);
    }

    pub(crate) fn add_segment(&self, op: &str) {
        self.segments.with_label_values(&[op]).inc();
    }

    pub(crate) fn add_error(&self, op: &str) {
        self.errors.with_label_values(&[op]).inc();
    }
}
