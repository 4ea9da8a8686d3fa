//! Prometheus metrics: counters and histograms updated as requests are served, and
//! gauges of the log, the groups and the index read from the broker's state at scrape.

use std::time::Duration;

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::broker::Broker;

/// Every metric the broker exports, in one registry.
pub(crate) struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_errors: IntCounterVec,
    request_seconds: HistogramVec,
    bytes_in: IntCounterVec,
    messages_in: IntCounterVec,
    bytes_out: IntCounterVec,
    connections: IntGaugeVec,
    connections_accepted: IntCounterVec,
    partition_offset: IntGaugeVec,
    partition_size: IntGaugeVec,
    partitions: IntGauge,
    under_replicated: IntGauge,
    group_lag: IntGaugeVec,
    index_stat: GaugeVec,
    uptime: Gauge,
    fsyncs: Gauge,
    fsync_seconds: Gauge,
    started: std::time::Instant,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub(crate) fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("sluice_requests_total", "Requests handled, by API."),
            &["api"],
        )?;
        let request_errors = IntCounterVec::new(
            Opts::new(
                "sluice_request_errors_total",
                "Errors answered or connections closed, by API and Kafka error name.",
            ),
            &["api", "error"],
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "sluice_request_duration_seconds",
                "Time from a request's arrival to its answer being ready, by API.",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                5.0, 10.0, 30.0,
            ]),
            &["api"],
        )?;
        let bytes_in = IntCounterVec::new(
            Opts::new(
                "sluice_topic_bytes_in_total",
                "Record batch bytes appended, by topic.",
            ),
            &["topic"],
        )?;
        let messages_in = IntCounterVec::new(
            Opts::new(
                "sluice_topic_messages_in_total",
                "Records appended, by topic.",
            ),
            &["topic"],
        )?;
        let bytes_out = IntCounterVec::new(
            Opts::new(
                "sluice_topic_bytes_out_total",
                "Record bytes fetched, by topic.",
            ),
            &["topic"],
        )?;
        let connections = IntGaugeVec::new(
            Opts::new(
                "sluice_connections",
                "Open client connections, by listener.",
            ),
            &["listener"],
        )?;
        let connections_accepted = IntCounterVec::new(
            Opts::new(
                "sluice_connections_accepted_total",
                "Client connections accepted, by listener.",
            ),
            &["listener"],
        )?;
        let partition_offset = IntGaugeVec::new(
            Opts::new(
                "sluice_partition_offset",
                "Log start offset, high watermark (log end) and last stable offset of each partition.",
            ),
            &["topic", "partition", "kind"],
        )?;
        let partition_size = IntGaugeVec::new(
            Opts::new(
                "sluice_partition_log_size_bytes",
                "Bytes in each partition's segments.",
            ),
            &["topic", "partition"],
        )?;
        let partitions = IntGauge::new("sluice_partitions", "Partitions hosted.")?;
        let under_replicated = IntGauge::new(
            "sluice_under_replicated_partitions",
            "Partitions with fewer in-sync replicas than replicas (0 on one node).",
        )?;
        let group_lag = IntGaugeVec::new(
            Opts::new(
                "sluice_consumer_group_lag",
                "High watermark minus committed offset, by group and partition.",
            ),
            &["group", "topic", "partition"],
        )?;
        let index_stat = GaugeVec::new(
            Opts::new(
                "sluice_index_stat_bytes",
                "RocksDB index figures: memtable size and pending compaction bytes.",
            ),
            &["stat"],
        )?;
        let uptime = Gauge::new("sluice_uptime_seconds", "Seconds since the broker started.")?;
        let fsyncs = Gauge::new(
            "sluice_storage_fsyncs_total",
            "Segment fsyncs done by the log flush policy.",
        )?;
        let fsync_seconds = Gauge::new(
            "sluice_storage_fsync_seconds_total",
            "Time spent in segment fsyncs; divided by the fsyncs, the mean latency.",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_errors.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        registry.register(Box::new(bytes_in.clone()))?;
        registry.register(Box::new(messages_in.clone()))?;
        registry.register(Box::new(bytes_out.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(connections_accepted.clone()))?;
        registry.register(Box::new(partition_offset.clone()))?;
        registry.register(Box::new(partition_size.clone()))?;
        registry.register(Box::new(partitions.clone()))?;
        registry.register(Box::new(under_replicated.clone()))?;
        registry.register(Box::new(group_lag.clone()))?;
        registry.register(Box::new(index_stat.clone()))?;
        registry.register(Box::new(uptime.clone()))?;
        registry.register(Box::new(fsyncs.clone()))?;
        registry.register(Box::new(fsync_seconds.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            request_errors,
            request_seconds,
            bytes_in,
            messages_in,
            bytes_out,
            connections,
            connections_accepted,
            partition_offset,
            partition_size,
            partitions,
            under_replicated,
            group_lag,
            index_stat,
            uptime,
            fsyncs,
            fsync_seconds,
            started: std::time::Instant::now(),
        })
    }

    /// A request answered, and how long it took.
    pub(crate) fn request(&self, api: &str, elapsed: Duration) {
        self.requests.with_label_values(&[api]).inc();
        self.request_seconds
            .with_label_values(&[api])
            .observe(elapsed.as_secs_f64());
    }

    /// An error answered (or a connection closed) for an API.
    pub(crate) fn error(&self, api: &str, error: &str) {
        self.request_errors.with_label_values(&[api, error]).inc();
    }

    /// A batch appended to a topic.
    pub(crate) fn appended(&self, topic: &str, bytes: usize, records: i64) {
        self.bytes_in
            .with_label_values(&[topic])
            .inc_by(bytes as u64);
        self.messages_in
            .with_label_values(&[topic])
            .inc_by(records.max(0) as u64);
    }

    /// Record bytes fetched from a topic.
    pub(crate) fn fetched(&self, topic: &str, bytes: usize) {
        if bytes > 0 {
            self.bytes_out
                .with_label_values(&[topic])
                .inc_by(bytes as u64);
        }
    }

    /// A connection opened on a listener.
    pub(crate) fn connection_opened(&self, listener: &str) {
        self.connections_accepted
            .with_label_values(&[listener])
            .inc();
        self.connections.with_label_values(&[listener]).inc();
    }

    /// A connection closed on a listener.
    pub(crate) fn connection_closed(&self, listener: &str) {
        self.connections.with_label_values(&[listener]).dec();
    }

    /// The text exposition of every metric, with the state gauges read from `broker`.
    pub(crate) fn render(&self, broker: Option<&Broker>) -> String {
        self.uptime.set(self.started.elapsed().as_secs_f64());
        let (count, seconds) = sluice_storage::FSYNC_STATS.totals();
        self.fsyncs.set(count as f64);
        self.fsync_seconds.set(seconds);
        if let Some(b) = broker {
            self.refresh(b);
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    fn refresh(&self, broker: &Broker) {
        self.partition_offset.reset();
        self.partition_size.reset();
        self.group_lag.reset();
        let partitions = broker.storage.partitions();
        self.partitions.set(partitions.len() as i64);
        self.under_replicated.set(0);
        let mut high_watermarks = std::collections::HashMap::new();
        for p in &partitions {
            let index = p.index.to_string();
            let hw = p.high_watermark();
            high_watermarks.insert((p.topic.clone(), p.index), hw);
            for (kind, v) in [
                ("log_start", p.log_start_offset()),
                ("high_watermark", hw),
                ("last_stable", p.last_stable_offset()),
            ] {
                self.partition_offset
                    .with_label_values(&[p.topic.as_str(), index.as_str(), kind])
                    .set(v);
            }
            self.partition_size
                .with_label_values(&[p.topic.as_str(), index.as_str()])
                .set(p.size_bytes() as i64);
        }
        for g in broker.groups.list_groups(&[], &[]) {
            for (topic, parts) in broker.groups.fetch_offsets(&g.group_id, None) {
                for (partition, committed) in parts {
                    let (Some(c), Some(hw)) =
                        (committed, high_watermarks.get(&(topic.clone(), partition)))
                    else {
                        continue;
                    };
                    self.group_lag
                        .with_label_values(&[
                            g.group_id.as_str(),
                            topic.as_str(),
                            &partition.to_string(),
                        ])
                        .set((hw - c.offset).max(0));
                }
            }
        }
        for (stat, v) in broker.storage.index_stats() {
            self.index_stat.with_label_values(&[stat]).set(v as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_registers_and_renders() {
        let m = Metrics::new().expect("metrics");
        m.request("Produce", Duration::from_millis(3));
        m.appended("t", 100, 2);
        m.connection_opened("PLAINTEXT");
        let text = m.render(None);
        assert!(
            text.contains("sluice_requests_total{api=\"Produce\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sluice_topic_messages_in_total{topic=\"t\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("sluice_connections{listener=\"PLAINTEXT\"} 1"),
            "{text}"
        );
    }
}
