//! A data directory written before the coordinators kept their state in the internal topics
//! (groups, committed offsets and transactions in the index): the broker moves it into
//! `__consumer_offsets` and `__transaction_state` at start-up, and librdkafka (the `rdkafka`
//! crate) then sees the same groups, offsets and transactions as before, across restarts.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sluice_config::BrokerConfig;
use sluice_storage::{CommittedOffset, GroupRecord, PendingOffset, Storage, TxnRecord, TxnState};

fn config(dir: &std::path::Path, port: u16) -> BrokerConfig {
    let log_dir = dir.to_string_lossy().into_owned();
    let listener = format!("PLAINTEXT://127.0.0.1:{port}");
    BrokerConfig::from_properties([
        ("listeners", listener.as_str()),
        ("log.dirs", log_dir.as_str()),
        ("group.initial.rebalance.delay.ms", "0"),
    ])
    .expect("config")
}

fn offset(offset: i64, metadata: &str) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: metadata.to_string(),
        commit_timestamp: sluice_storage::now_ms(),
    }
}

fn txn(producer_id: i64, state: TxnState, pending: Vec<PendingOffset>) -> TxnRecord {
    TxnRecord {
        producer_id,
        previous_producer_id: -1,
        producer_epoch: 0,
        last_producer_epoch: -1,
        timeout_ms: 60_000,
        state,
        partitions: Vec::new(),
        groups: vec!["eos-group".to_string()],
        pending_offsets: pending,
        start_ms: sluice_storage::now_ms(),
        last_update_ms: sluice_storage::now_ms(),
        next_producer_id: -1,
        client_transaction_version: 0,
    }
}

fn pending(partition: i32, at: i64) -> PendingOffset {
    PendingOffset {
        group: "eos-group".to_string(),
        topic: "orders".to_string(),
        partition,
        committed: offset(at, ""),
    }
}

/// What the index of an earlier version held: a consumer group with a generation and
/// offsets, a committed transaction whose markers were not written yet (PrepareCommit),
/// and an open one, both with offsets for another group.
fn write_legacy_state(config: &BrokerConfig) {
    let storage = Storage::open(config).expect("storage");
    storage
        .create_topic("orders", 2, Default::default())
        .expect("topic");
    let record = GroupRecord {
        protocol_type: Some("consumer".to_string()),
        generation: 5,
        protocol: None,
        leader: None,
        state_timestamp: sluice_storage::now_ms(),
        members: Vec::new(),
    };
    storage.store_group("legacy-group", &record).expect("group");
    let offsets = [
        ("orders".to_string(), 0, offset(42, "checkpoint-0")),
        ("orders".to_string(), 1, offset(7, "checkpoint-1")),
    ];
    storage
        .commit_offsets("legacy-group", &offsets)
        .expect("offsets");
    let prepared = storage.allocate_producer_id().expect("producer id");
    let open = storage.allocate_producer_id().expect("producer id");
    storage
        .store_txn(
            "prepared-txn",
            &txn(prepared, TxnState::PrepareCommit, vec![pending(0, 99)]),
        )
        .expect("txn");
    storage
        .store_txn(
            "open-txn",
            &txn(open, TxnState::Ongoing, vec![pending(1, 55)]),
        )
        .expect("txn");
}

/// The group's committed offsets of `orders` by partition; -1001 is none.
fn committed(bootstrap: &str, group: &str) -> BTreeMap<i32, (i64, String)> {
    committed_as(bootstrap, group, "read_committed")
}

/// [`committed`] as a consumer of `isolation` asks: read_committed waits for offsets that
/// an open transaction holds (UNSTABLE_OFFSET_COMMIT), read_uncommitted does not.
fn committed_as(bootstrap: &str, group: &str, isolation: &str) -> BTreeMap<i32, (i64, String)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut want = TopicPartitionList::new();
    want.add_partition("orders", 0);
    want.add_partition("orders", 1);
    let got = c
        .committed_offsets(want, Duration::from_secs(15))
        .expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| {
            let at = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1001,
            };
            (e.partition(), (at, e.metadata().to_string()))
        })
        .collect()
}

fn described_state(bootstrap: &str, group: &str) -> (String, String) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("client");
    let list = c
        .fetch_group_list(Some(group), Duration::from_secs(15))
        .expect("describe group");
    let g = &list.groups()[0];
    (g.state().to_string(), g.protocol_type().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_offsets_and_transactions_move_from_the_index_into_the_internal_topics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let config = config(dir.path(), port);
    write_legacy_state(&config);

    let broker = sluice_broker::start(config.clone()).await.expect("start");
    let bootstrap = broker.addresses[0].to_string();
    let legacy = BTreeMap::from([
        (0, (42, "checkpoint-0".to_string())),
        (1, (7, "checkpoint-1".to_string())),
    ]);
    assert_eq!(committed(&bootstrap, "legacy-group"), legacy);
    assert_eq!(
        described_state(&bootstrap, "legacy-group"),
        ("Empty".to_string(), "consumer".to_string())
    );
    // The prepared commit is completed: its offset is the group's. The open transaction's
    // offset is not committed, and holds a read_committed consumer's fetch until it ends.
    let completed = BTreeMap::from([(0, (99, String::new())), (1, (-1001, String::new()))]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while committed_as(&bootstrap, "eos-group", "read_uncommitted") != completed {
        assert!(
            std::time::Instant::now() < deadline,
            "the prepared transaction's offsets: {:?}",
            committed_as(&bootstrap, "eos-group", "read_uncommitted")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The open transaction's producer comes back: its transaction is aborted, and its
    // offset is never committed.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("transactional.id", "open-txn")
        .create()
        .expect("producer");
    producer
        .init_transactions(Duration::from_secs(30))
        .expect("init transactions");
    producer
        .begin_transaction()
        .expect("a new transaction begins");
    producer
        .commit_transaction(Duration::from_secs(30))
        .expect("empty commit");
    drop(producer);
    assert_eq!(committed(&bootstrap, "eos-group"), completed);
    broker.stop().await.expect("stop");

    // Nothing is left in the index, and the state lives on in the topics.
    {
        let storage = Storage::open(&config).expect("storage");
        assert_eq!(storage.load_groups().expect("groups").len(), 0);
        assert_eq!(storage.load_txns().expect("txns").len(), 0);
        let records = |topic: &str| -> i64 {
            let t = storage.topic(topic).expect("internal topic");
            t.partitions.iter().map(|p| p.log_end_offset()).sum()
        };
        assert!(records("__consumer_offsets") > 0);
        assert!(records("__transaction_state") > 0);
    }
    let broker = sluice_broker::start(config).await.expect("restart");
    assert_eq!(committed(&bootstrap, "legacy-group"), legacy);
    assert_eq!(committed(&bootstrap, "eos-group"), completed);
    broker.stop().await.expect("stop");
}
