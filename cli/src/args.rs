//! The command line of the admin and client commands: what each takes, with one-line help.

use clap::{Args, Subcommand, ValueEnum};

/// Commands that talk to a running broker (Sluice or Apache Kafka) over the Kafka protocol.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Creates, lists, describes, alters and deletes topics (like kafka-topics.sh).
    Topic {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(subcommand)]
        action: TopicAction,
    },
    /// Lists and describes consumer groups and resets their offsets (like kafka-consumer-groups.sh).
    Group {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Registers, gets, lists, deletes and checks schemas in a Schema Registry.
    Schema {
        #[command(flatten)]
        registry: crate::schema::RegistryArgs,
        #[command(subcommand)]
        action: crate::schema::SchemaAction,
    },
    /// Produces the lines of standard input to a topic, one record per line.
    Produce(ProduceArgs),
    /// Prints the records of a topic, one per line.
    Consume(ConsumeArgs),
}

/// Where the cluster is and how long to wait for it.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Brokers to bootstrap from; any one that answers is enough.
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT[,HOST:PORT...]",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_server: String,
    /// Time limit for each TCP connect, in milliseconds.
    #[arg(long, global = true, value_name = "MS", default_value_t = 5000)]
    pub connect_timeout_ms: u64,
    /// Time limit for each request's answer, in milliseconds.
    #[arg(long, global = true, value_name = "MS", default_value_t = 30000)]
    pub request_timeout_ms: u64,
    /// Kafka client properties for TLS and SASL (security.protocol, ssl.*, sasl.mechanism,
    /// sasl.jaas.config), as Kafka's tools take them.
    #[arg(long, global = true, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

/// `sluice topic ...`
#[derive(Debug, Subcommand)]
pub enum TopicAction {
    /// Creates a topic and waits until every partition has a leader.
    Create {
        /// The topic name.
        name: String,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(long, short = 'p')]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long, short = 'r')]
        replication_factor: Option<i16>,
        /// A topic config override (repeatable).
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Succeed without changes when the topic exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// Lists topic names, one per line, sorted.
    List {
        /// Include internal topics (__consumer_offsets, __transaction_state).
        #[arg(long)]
        internal: bool,
    },
    /// Shows partitions, leaders, replicas, ISR, log start and end offsets, and config overrides.
    Describe {
        /// Topics to describe (default: every non-internal topic).
        names: Vec<String>,
        /// Only partitions whose ISR lacks a replica.
        #[arg(long)]
        under_replicated_partitions: bool,
        /// Only partitions without a live leader.
        #[arg(long)]
        unavailable_partitions: bool,
        /// Only partitions without a leader or with fewer in-sync replicas than min.insync.replicas.
        #[arg(long)]
        under_min_isr_partitions: bool,
        /// Only partitions with exactly min.insync.replicas in-sync replicas.
        #[arg(long)]
        at_min_isr_partitions: bool,
    },
    /// Deletes topics and waits until they are gone.
    Delete {
        /// Topics to delete.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Sets or removes topic config overrides (IncrementalAlterConfigs), then prints the overrides.
    AlterConfig {
        /// The topic.
        name: String,
        /// Sets an override (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Removes an override, back to the broker default (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Raises a topic's partition count (partitions can only be added).
    AddPartitions {
        /// The topic.
        name: String,
        /// The new total number of partitions.
        #[arg(long, value_name = "N")]
        total: i32,
    },
    /// Moves a partition's replicas to other brokers (AlterPartitionReassignments), or
    /// cancels a move in progress.
    Reassign {
        /// The topic.
        name: String,
        /// The partition.
        #[arg(long, short = 'p')]
        partition: i32,
        /// The new replicas, preferred leader first.
        #[arg(
            long,
            value_name = "ID[,ID...]",
            value_delimiter = ',',
            required_unless_present = "cancel"
        )]
        replicas: Vec<i32>,
        /// Cancels the reassignment in progress instead.
        #[arg(long, conflicts_with = "replicas")]
        cancel: bool,
        /// Waits until the new replicas are in sync and the move is complete.
        #[arg(long)]
        wait: bool,
    },
    /// Lists the partitions whose replicas are being moved (ListPartitionReassignments).
    Reassignments,
    /// Elects leaders (ElectLeaders): the preferred replica, or with --unclean any live
    /// replica of a partition that has no leader.
    Elect {
        /// The topic.
        name: String,
        /// Partitions to elect for (repeatable; default: every partition of the topic).
        #[arg(long = "partition", short = 'p')]
        partitions: Vec<i32>,
        /// An unclean election: records not yet replicated may be lost.
        #[arg(long)]
        unclean: bool,
    },
}

/// `sluice group ...`
#[derive(Debug, Subcommand)]
pub enum GroupAction {
    /// Lists the groups of every broker with their state and protocol type.
    List,
    /// Shows a group's state, members and, per partition, committed offset, log end offset and lag.
    Describe {
        /// The group id.
        group: String,
    },
    /// Moves a group's committed offsets (dry run unless --execute; the group must have no members).
    ResetOffsets(ResetArgs),
    /// Deletes groups that have no members, with their committed offsets.
    Delete {
        /// The group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

/// `sluice group reset-offsets ...`
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("scope").required(true).args(["topic", "all_topics"]))]
#[command(group = clap::ArgGroup::new("target").required(true)
    .args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime"]))]
pub struct ResetArgs {
    /// The group id.
    pub group: String,
    /// A topic, optionally with partitions: TOPIC or TOPIC:0,1,2 (repeatable).
    #[arg(long, value_name = "TOPIC[:P,P...]")]
    pub topic: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    pub all_topics: bool,
    /// To the log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the log end offset (high watermark).
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset, clamped into [log start, log end].
    #[arg(long, value_name = "N")]
    pub to_offset: Option<i64>,
    /// By N from the committed offset (negative goes back), clamped into [log start, log end].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// To the first offset with a timestamp at or after this time (YYYY-MM-DDTHH:MM:SS[.sss][Z|±HH:MM], UTC if no zone).
    #[arg(long, value_name = "ISO8601")]
    pub to_datetime: Option<String>,
    /// Only print the plan (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    pub execute: bool,
}

/// Acknowledgement the producer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    // None: fire and forget.
    #[value(name = "0")]
    None,
    // The leader's write.
    #[value(name = "1")]
    Leader,
    // Every in-sync replica.
    #[value(name = "all", alias = "-1")]
    All,
}

/// Record batch compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    // No compression.
    None,
    // gzip.
    Gzip,
    // snappy.
    Snappy,
    // lz4.
    Lz4,
    // zstd.
    Zstd,
}

/// `sluice produce ...`
#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The topic.
    pub topic: String,
    /// Split each line into key and value at the first occurrence of SEP (lines without it have no key).
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Send every record to this partition (default: murmur2 of the key, or sticky round-robin without one).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Acknowledgement to wait for.
    #[arg(long, value_enum, default_value = "all")]
    pub acks: Acks,
    /// A header added to every record (repeatable).
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Compression codec of the record batches.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: CompressionArg,
}

/// Which records a consumer sees of transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationLevel {
    // Everything up to the high watermark, aborted transactions included.
    #[value(name = "read_uncommitted", alias = "read-uncommitted")]
    ReadUncommitted,
    // Committed records only, up to the last stable offset.
    #[value(name = "read_committed", alias = "read-committed")]
    ReadCommitted,
}

/// `sluice consume ...`
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The topic.
    pub topic: String,
    /// Only this partition (default: all).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Start at the log start offset instead of the log end.
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Start at this offset (needs --partition).
    #[arg(long, requires = "partition", value_name = "N")]
    pub offset: Option<i64>,
    /// Exit after printing this many records.
    #[arg(long, short = 'n', value_name = "N")]
    pub max_messages: Option<u64>,
    /// Exit after this long without a new record, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Start at GROUP's committed offsets; commit the position at exit (simple consumer: no membership).
    #[arg(long, short = 'g', value_name = "GROUP", conflicts_with = "offset")]
    pub group: Option<String>,
    /// Print the key before the value.
    #[arg(long)]
    pub print_key: bool,
    /// Print "Partition:P<TAB>Offset:N<TAB>" before each record.
    #[arg(long)]
    pub print_offset: bool,
    /// What separates key and value with --print-key.
    #[arg(long, value_name = "SEP", default_value = "\t")]
    pub key_separator: String,
    /// read_uncommitted (the default, as kafka-console-consumer) or read_committed.
    #[arg(long, value_enum, default_value = "read_uncommitted")]
    pub isolation_level: IsolationLevel,
}
