//! How replicas copy from leaders and when they fall out of sync (Kafka's `replica.*`
//! and the inter-broker listener's settings). Only a cluster uses them.

/// The replication settings of a cluster member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    pub lag_time_max_ms: i64,
    /// `replica.fetch.wait.max.ms`: how long a follower's fetch may wait for data.
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.max.bytes`: bytes per partition in one follower fetch.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`: bytes in one follower fetch answer.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`: pause after a failed follower fetch.
    pub fetch_backoff_ms: i32,
    /// `inter.broker.listener.name`: the listener followers fetch through; `None`: the
    /// first PLAINTEXT listener.
    pub inter_broker_listener: Option<String>,
    /// `sasl.mechanism.inter.broker.protocol`: the mechanism brokers log in to each other
    /// with on a SASL inter-broker listener (Kafka's default, GSSAPI, is not supported).
    pub inter_broker_sasl_mechanism: String,
    /// `replica.selector.class` is Kafka's RackAwareReplicaSelector: consumers that give
    /// their `client.rack` are sent to an in-sync replica in their rack (KIP-392).
    pub rack_aware_replica_selector: bool,
    /// How this broker connects to the others, resolved at start-up in a cluster.
    pub inter_broker_client: Option<crate::InterBrokerClient>,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            lag_time_max_ms: 30_000,
            fetch_wait_max_ms: 500,
            fetch_max_bytes: 1_048_576,
            fetch_response_max_bytes: 10_485_760,
            fetch_backoff_ms: 1_000,
            inter_broker_listener: None,
            inter_broker_sasl_mechanism: "GSSAPI".to_string(),
            inter_broker_client: None,
            rack_aware_replica_selector: false,
        }
    }
}
