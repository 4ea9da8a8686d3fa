//! Share group (KIP-932) settings.

/// Share group (KIP-932) settings, with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareConfig {
    /// `group.share.record.lock.duration.ms`: how long a member holds a record it fetched.
    pub record_lock_duration_ms: i32,
    /// `group.share.delivery.count.limit`: deliveries after which a record is archived.
    pub delivery_count_limit: i16,
    /// `group.share.partition.max.record.locks`: most records in flight per share-partition.
    pub partition_max_record_locks: i32,
    /// `group.share.max.share.sessions`: most share sessions on this broker.
    pub max_share_sessions: usize,
    /// `group.share.heartbeat.interval.ms`: how often a share member heartbeats.
    pub heartbeat_interval_ms: i32,
    /// `group.share.session.timeout.ms`: a share member silent this long leaves its group.
    pub session_timeout_ms: i32,
    /// `group.share.max.size`: most members of one share group.
    pub max_size: i32,
    /// `share.coordinator.state.topic.num.partitions`: partitions of `__share_group_state`.
    pub state_topic_num_partitions: i32,
    /// `share.coordinator.state.topic.replication.factor`, in a cluster.
    pub state_topic_replication_factor: i32,
    /// `share.coordinator.state.topic.min.isr`, in a cluster.
    pub state_topic_min_isr: i32,
    /// `share.coordinator.state.topic.segment.bytes`.
    pub state_topic_segment_bytes: i64,
}

impl Default for ShareConfig {
    fn default() -> Self {
        ShareConfig {
            record_lock_duration_ms: 30_000,
            delivery_count_limit: 5,
            partition_max_record_locks: 2_000,
            max_share_sessions: 2_000,
            heartbeat_interval_ms: 5_000,
            session_timeout_ms: 45_000,
            max_size: 200,
            state_topic_num_partitions: 50,
            state_topic_replication_factor: 3,
            state_topic_min_isr: 2,
            state_topic_segment_bytes: 104_857_600,
        }
    }
}
