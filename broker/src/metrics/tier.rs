//! Tiered storage's figures: bytes of each partition in the remote tier and the copy lag
//! (sealed segments not yet copied), read at scrape; the remote tier's own counters are
//! registered beside them when it is on.

use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

use crate::broker::Broker;

/// The remote tier's gauges.
pub(crate) struct TierGauges {
    remote_size: IntGaugeVec,
    copy_lag_segments: IntGauge,
    copy_lag_bytes: IntGauge,
}

impl TierGauges {
    /// Registered in `registry`.
    pub(crate) fn new(registry: &Registry) -> prometheus::Result<Self> {
        let remote_size = IntGaugeVec::new(
            Opts::new(
                "sluice_partition_remote_log_size_bytes",
                "Bytes of each partition's segments in the remote tier (tiered storage).",
            ),
            &["topic", "partition"],
        )?;
        let copy_lag_segments = IntGauge::new(
            "sluice_remote_copy_lag_segments",
            "Sealed segments of tiered topics not yet copied to the remote tier.",
        )?;
        let copy_lag_bytes = IntGauge::new(
            "sluice_remote_copy_lag_bytes",
            "Bytes of the sealed segments of tiered topics not yet copied to the remote tier.",
        )?;
        registry.register(Box::new(remote_size.clone()))?;
        registry.register(Box::new(copy_lag_segments.clone()))?;
        registry.register(Box::new(copy_lag_bytes.clone()))?;
        Ok(TierGauges {
            remote_size,
            copy_lag_segments,
            copy_lag_bytes,
        })
    }

    /// Reads the figures from `broker`'s partitions.
    pub(crate) fn refresh(&self, broker: &Broker) {
        self.remote_size.reset();
        if broker.tier.is_none() {
            return;
        }
        let (mut segments, mut bytes) = (0usize, 0u64);
        for p in broker.storage.partitions() {
            let (n, b) = p.copy_lag();
            segments += n;
            bytes += b;
            let remote = p.remote_size_bytes();
            if remote > 0 || p.tiered() {
                self.remote_size
                    .with_label_values(&[p.topic.as_str(), &p.index.to_string()])
                    .set(remote as i64);
            }
        }
        self.copy_lag_segments.set(segments as i64);
        self.copy_lag_bytes.set(bytes as i64);
    }
}
