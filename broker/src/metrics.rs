//! Prometheus metrics: counters and histograms updated as requests are served, and
//! gauges of the log, the groups and the index read from the broker's state at scrape.

mod latency;
mod schemas;
mod share;
mod tier;

use std::sync::Mutex;

use kafka_protocol::messages::ApiKey;
use prometheus::{
    Counter, Encoder, Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::broker::Broker;
use latency::RequestMetrics;
pub(crate) use latency::{timed, RequestTimes};

/// Every metric the broker exports, in one registry.
pub(crate) struct Metrics {
    registry: Registry,
    requests: RequestMetrics,
    request_errors: IntCounterVec,
    bytes_in: IntCounterVec,
    messages_in: IntCounterVec,
    bytes_out: IntCounterVec,
    connections: IntGaugeVec,
    connections_accepted: IntCounterVec,
    partition_offset: IntGaugeVec,
    partition_size: IntGaugeVec,
    partitions: IntGauge,
    cluster: crate::cluster_metrics::ClusterGauges,
    shares: share::ShareGauges,
    /// The schema registry's figures and validation failures.
    pub(crate) schemas: schemas::SchemaGauges,
    tier: tier::TierGauges,
    offline_log_dirs: IntGauge,
    segment_files_open: IntGauge,
    segment_files_open_max: IntGauge,
    producer_ids: IntGauge,
    group_lag: IntGaugeVec,
    rocksdb: RocksDbGauges,
    uptime: Gauge,
    fsyncs: IntCounter,
    fsync_seconds: Counter,
    started: std::time::Instant,
    /// One scrape at a time: a refresh resets gauge families and advances the fsync
    /// counters by the difference since the last scrape.
    scraping: Mutex<()>,
}

/// The RocksDB figures of the index.
struct RocksDbGauges {
    memtable: IntGauge,
    pending_compaction: IntGauge,
    live_sst_files: IntGauge,
    keys: IntGauge,
}

impl RocksDbGauges {
    fn new(registry: &Registry) -> prometheus::Result<Self> {
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(RocksDbGauges {
            memtable: gauge(
                "sluice_rocksdb_memtable_bytes",
                "Bytes in the index's RocksDB memtables (rocksdb.cur-size-all-mem-tables).",
            )?,
            pending_compaction: gauge(
                "sluice_rocksdb_pending_compaction_bytes",
                "Bytes RocksDB compaction still has to rewrite (rocksdb.estimate-pending-compaction-bytes).",
            )?,
            live_sst_files: gauge(
                "sluice_rocksdb_live_sst_files_bytes",
                "Bytes of the index's live SST files (rocksdb.live-sst-files-size).",
            )?,
            keys: gauge(
                "sluice_rocksdb_estimated_keys",
                "Estimated keys in the index (rocksdb.estimate-num-keys).",
            )?,
        })
    }

    fn set(&self, s: sluice_storage::IndexStats) {
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.memtable.set(int(s.memtable_bytes));
        self.pending_compaction.set(int(s.pending_compaction_bytes));
        self.live_sst_files.set(int(s.live_sst_files_bytes));
        self.keys.set(int(s.estimated_keys));
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub(crate) fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let requests = RequestMetrics::new(&registry)?;
        let request_errors = IntCounterVec::new(
            Opts::new(
                "sluice_request_errors_total",
                "Errors answered or connections closed, by API and Kafka error name.",
            ),
            &["api", "error"],
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
        let offline_log_dirs = IntGauge::new(
            "sluice_offline_log_dirs",
            "Data directories taken offline by a failed write (Kafka's OfflineLogDirectoryCount): their partitions answer KAFKA_STORAGE_ERROR until the broker restarts.",
        )?;
        let segment_files_open =
            IntGauge::new("sluice_log_segment_files_open", "Segment files open now.")?;
        let segment_files_open_max = IntGauge::new(
            "sluice_log_segment_files_open_max",
            "log.max.open.segment.files: past it the least recently used segment files are closed.",
        )?;
        let producer_ids = IntGauge::new(
            "sluice_producer_ids",
            "Producer ids with idempotent or transactional state, summed over partitions (Kafka's ProducerIdCount).",
        )?;
        let group_lag = IntGaugeVec::new(
            Opts::new(
                "sluice_consumer_group_lag",
                "High watermark minus committed offset, by group and partition.",
            ),
            &["group", "topic", "partition"],
        )?;
        let rocksdb = RocksDbGauges::new(&registry)?;
        let cluster = crate::cluster_metrics::ClusterGauges::new(&registry)?;
        let shares = share::ShareGauges::new(&registry)?;
        let schemas = schemas::SchemaGauges::new(&registry)?;
        let tier = tier::TierGauges::new(&registry)?;
        let uptime = Gauge::new("sluice_uptime_seconds", "Seconds since the broker started.")?;
        let fsyncs = IntCounter::new(
            "sluice_storage_fsyncs_total",
            "Segment fsyncs done by the log flush policy.",
        )?;
        let fsync_seconds = Counter::new(
            "sluice_storage_fsync_seconds_total",
            "Time spent in segment fsyncs; divided by the fsyncs, the mean latency.",
        )?;
        registry.register(Box::new(request_errors.clone()))?;
        registry.register(Box::new(bytes_in.clone()))?;
        registry.register(Box::new(messages_in.clone()))?;
        registry.register(Box::new(bytes_out.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(connections_accepted.clone()))?;
        registry.register(Box::new(partition_offset.clone()))?;
        registry.register(Box::new(partition_size.clone()))?;
        registry.register(Box::new(partitions.clone()))?;
        registry.register(Box::new(offline_log_dirs.clone()))?;
        registry.register(Box::new(segment_files_open.clone()))?;
        registry.register(Box::new(segment_files_open_max.clone()))?;
        registry.register(Box::new(producer_ids.clone()))?;
        registry.register(Box::new(group_lag.clone()))?;
        registry.register(Box::new(uptime.clone()))?;
        registry.register(Box::new(fsyncs.clone()))?;
        registry.register(Box::new(fsync_seconds.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            request_errors,
            bytes_in,
            messages_in,
            bytes_out,
            connections,
            connections_accepted,
            partition_offset,
            partition_size,
            partitions,
            cluster,
            shares,
            schemas,
            tier,
            offline_log_dirs,
            segment_files_open,
            segment_files_open_max,
            producer_ids,
            group_lag,
            rocksdb,
            uptime,
            fsyncs,
            fsync_seconds,
            started: std::time::Instant::now(),
            scraping: Mutex::new(()),
        })
    }

    /// A request answered (or, for acks=0, handled), and where its time went.
    pub(crate) fn request(&self, api: ApiKey, times: &RequestTimes) {
        self.requests.observe(api, times);
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
        // A poisoned lock only means an earlier scrape panicked; the guard is still good.
        let _scraping = self.scraping.lock().unwrap_or_else(|e| e.into_inner());
        self.uptime.set(self.started.elapsed().as_secs_f64());
        // The storage keeps running totals; the counters catch up with them.
        let (count, seconds) = sluice_storage::FSYNC_STATS.totals();
        self.fsyncs.inc_by(count.saturating_sub(self.fsyncs.get()));
        let behind = seconds - self.fsync_seconds.get();
        if behind > 0.0 {
            self.fsync_seconds.inc_by(behind);
        }
        if let Some(b) = broker {
            self.refresh(b);
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Registers the remote tier's counters (tiered storage is on).
    pub(crate) fn register_tier(&self, tier: &sluice_tier::TierMetrics) -> prometheus::Result<()> {
        tier.register(&self.registry)
    }

    fn refresh(&self, broker: &Broker) {
        self.partition_offset.reset();
        self.partition_size.reset();
        self.group_lag.reset();
        let partitions = broker.storage.partitions();
        self.partitions.set(partitions.len() as i64);
        self.cluster.refresh(broker);
        self.shares.refresh(broker);
        self.schemas.refresh(broker);
        self.tier.refresh(broker);
        self.offline_log_dirs
            .set(i64::from(broker.storage.log_dir_health().is_offline()));
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
        self.rocksdb.set(broker.storage.index_stats());
        self.producer_ids.set(
            i64::try_from(
                partitions
                    .iter()
                    .map(|p| p.producer_id_count())
                    .sum::<usize>(),
            )
            .unwrap_or(i64::MAX),
        );
        let (open, max) = broker.storage.open_segment_files();
        self.segment_files_open
            .set(i64::try_from(open).unwrap_or(i64::MAX));
        self.segment_files_open_max
            .set(i64::try_from(max).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_metric_registers_and_renders() {
        let m = Metrics::new().expect("metrics");
        let ms = Duration::from_millis;
        let times = RequestTimes {
            queue: ms(1),
            handle: ms(2),
            remote: ms(0),
            send: ms(1),
            total: ms(4),
        };
        m.request(ApiKey::Produce, &times);
        m.request(ApiKey::Produce, &times);
        m.appended("t", 100, 2);
        m.connection_opened("PLAINTEXT");
        let text = m.render(None);
        for line in [
            "sluice_requests_total{api=\"Produce\"} 2",
            "sluice_request_queue_seconds_count{api=\"Produce\"} 2",
            "sluice_request_handle_seconds_sum{api=\"Produce\"} 0.004",
            "sluice_request_remote_seconds_count{api=\"Produce\"} 2",
            "sluice_request_send_seconds_bucket{api=\"Produce\",le=\"0.001\"} 2",
            "sluice_request_duration_seconds_sum{api=\"Produce\"} 0.008",
            "sluice_topic_messages_in_total{topic=\"t\"} 2",
            "sluice_connections{listener=\"PLAINTEXT\"} 1",
            "sluice_storage_fsyncs_total ",
            "# TYPE sluice_storage_fsyncs_total counter",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // An API never called exports no series.
        assert!(!text.contains("api=\"Fetch\""), "{text}");
    }
}
