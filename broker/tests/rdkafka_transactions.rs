//! Transactions (KIP-98) with librdkafka (the `rdkafka` crate) against an in-process broker:
//! an aborted transaction is invisible to read_committed consumers and visible to
//! read_uncommitted ones, each transaction marker takes one offset, an open transaction holds
//! the last stable offset back, offsets sent with `send_offsets_to_transaction` are committed
//! only with their transaction, and a second producer with the same `transactional.id` fences
//! the first.
//!
//! librdkafka's transactional calls block; they run in `block_in_place` so that they do not
//! stall the runtime the broker serves on.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sluice_config::BrokerConfig;

const TIMEOUT: Duration = Duration::from_secs(30);

struct TestBroker {
    running: sluice_broker::RunningBroker,
    bootstrap: String,
    _dir: tempfile::TempDir,
}

async fn start_broker() -> TestBroker {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().to_string_lossy().into_owned();
    let config = BrokerConfig::from_properties([
        ("listeners", "PLAINTEXT://127.0.0.1:0"),
        ("log.dirs", log_dir.as_str()),
        ("group.initial.rebalance.delay.ms", "0"),
    ])
    .expect("config");
    let running = sluice_broker::start(config).await.expect("broker starts");
    let bootstrap = running.addresses[0].to_string();
    TestBroker {
        running,
        bootstrap,
        _dir: dir,
    }
}

async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create_topics");
    assert_eq!(results, vec![Ok(topic.to_string())]);
}

fn txn_producer(bootstrap: &str, transactional_id: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", "30000")
        .set("linger.ms", "5")
        .create()
        .expect("transactional producer")
}

/// Runs a blocking librdkafka call without stalling the broker's runtime.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// Sends (partition, value) records in order, waits for every delivery and returns their
/// (partition, offset)s in the same order.
async fn send_all(p: &FutureProducer, topic: &str, records: &[(i32, String)]) -> Vec<(i32, i64)> {
    let mut futures = Vec::new();
    for (i, (partition, value)) in records.iter().enumerate() {
        let key = format!("k{i}");
        futures.push(
            p.send_result(
                FutureRecord::to(topic)
                    .partition(*partition)
                    .key(&key)
                    .payload(value.as_str()),
            )
            .expect("enqueue"),
        );
    }
    let mut out = Vec::new();
    for f in futures {
        let delivery = f.await.expect("not cancelled").expect("delivered");
        out.push((delivery.partition, delivery.offset));
    }
    out
}

fn values(prefix: &str, n: usize, partitions: i32) -> Vec<(i32, String)> {
    (0..n)
        .map(|i| (i as i32 % partitions, format!("{prefix}-{i}")))
        .collect()
}

type Records = BTreeMap<i32, Vec<(i64, String)>>;

/// Reads every partition of `topic` from the beginning with the given isolation level up to
/// the end offset its ListOffsets reports (the high watermark for read_uncommitted, the last
/// stable offset for read_committed): until the consumer's position reaches it, which
/// librdkafka also advances past transaction markers. Returns the end offsets and the
/// (offset, value)s per partition.
fn read_to_end(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
) -> (BTreeMap<i32, i64>, Records) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "rd-txn-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .expect("metadata");
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        // with isolation.level=read_committed this ListOffsets asks for the last stable offset
        let (low, high) = consumer
            .fetch_watermarks(topic, p, TIMEOUT)
            .expect("watermarks");
        assert_eq!(low, 0, "{topic}[{p}] low watermark");
        ends.insert(p, high);
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut got: Records = (0..partitions).map(|p| (p, Vec::new())).collect();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let position = consumer.position().expect("position");
        let done = position.elements_for_topic(topic).iter().all(|e| {
            let end = ends[&e.partition()];
            end == 0 || matches!(e.offset(), Offset::Offset(o) if o >= end)
        });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out reading {topic} ({isolation}) up to {ends:?}: position {position:?}, read {got:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let value = String::from_utf8(m.payload().unwrap_or_default().to_vec())
                    .expect("utf-8 value");
                assert!(
                    m.offset() < ends[&m.partition()],
                    "{topic}[{}] ({isolation}): record at {} beyond the end {}",
                    m.partition(),
                    m.offset(),
                    ends[&m.partition()]
                );
                got.get_mut(&m.partition())
                    .expect("an assigned partition")
                    .push((m.offset(), value));
            }
            Some(Err(e)) => panic!("consume error on {topic} ({isolation}): {e}"),
            None => {}
        }
    }
    (ends, got)
}

/// The records of `sent` (partition, value) at their delivered offsets, per partition.
fn expect_records(sent: &[(i32, String)], offsets: &[(i32, i64)], partitions: i32) -> Records {
    let mut out: Records = (0..partitions).map(|p| (p, Vec::new())).collect();
    for ((partition, value), (p, offset)) in sent.iter().zip(offsets) {
        assert_eq!(partition, p);
        out.get_mut(p)
            .expect("partition")
            .push((*offset, value.clone()));
    }
    out
}

fn merge(parts: &[&Records]) -> Records {
    let mut out = Records::new();
    for r in parts {
        for (p, recs) in r.iter() {
            out.entry(*p).or_default().extend(recs.iter().cloned());
        }
    }
    for recs in out.values_mut() {
        recs.sort();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_transactions_are_invisible_to_read_committed_and_markers_take_an_offset() {
    let b = start_broker().await;
    let topic = "rd-txn-abort-commit";
    create_topic(&b.bootstrap, topic, 2).await;
    let p = txn_producer(&b.bootstrap, "rd-txn-abort-commit");
    blocking(|| p.init_transactions(TIMEOUT)).expect("init_transactions");

    // 10 records (5 per partition) in a transaction that is aborted once they are all in the log
    p.begin_transaction().expect("begin");
    let aborted = values("aborted", 10, 2);
    let aborted_at = send_all(&p, topic, &aborted).await;
    blocking(|| p.abort_transaction(TIMEOUT)).expect("abort_transaction");

    // 14 records (7 per partition) in a committed one
    p.begin_transaction().expect("begin");
    let committed = values("committed", 14, 2);
    let committed_at = send_all(&p, topic, &committed).await;
    blocking(|| p.commit_transaction(TIMEOUT)).expect("commit_transaction");

    // offsets 0..4 aborted data, 5 the abort marker, 6..12 committed data, 13 the commit marker
    let want_aborted: Vec<(i32, i64)> = (0..10).map(|i| (i % 2, i64::from(i / 2))).collect();
    let want_committed: Vec<(i32, i64)> = (0..14).map(|i| (i % 2, 6 + i64::from(i / 2))).collect();
    assert_eq!(aborted_at, want_aborted);
    assert_eq!(committed_at, want_committed);
    let aborted_recs = expect_records(&aborted, &aborted_at, 2);
    let committed_recs = expect_records(&committed, &committed_at, 2);

    let (ends, got) = blocking(|| read_to_end(&b.bootstrap, topic, 2, "read_committed"));
    assert_eq!(ends, BTreeMap::from([(0, 14), (1, 14)]));
    assert_eq!(got, committed_recs);
    let (ends, got) = blocking(|| read_to_end(&b.bootstrap, topic, 2, "read_uncommitted"));
    assert_eq!(ends, BTreeMap::from([(0, 14), (1, 14)]));
    assert_eq!(got, merge(&[&aborted_recs, &committed_recs]));

    // an open transaction: its records are in the log (high watermark 16) but the last
    // stable offset stays at its first offset (14) until it commits
    p.begin_transaction().expect("begin");
    let open = values("open", 4, 2);
    let open_at = send_all(&p, topic, &open).await;
    assert_eq!(open_at, vec![(0, 14), (1, 14), (0, 15), (1, 15)]);
    let open_recs = expect_records(&open, &open_at, 2);
    let (ends, got) = blocking(|| read_to_end(&b.bootstrap, topic, 2, "read_committed"));
    assert_eq!(
        ends,
        BTreeMap::from([(0, 14), (1, 14)]),
        "last stable offsets while open"
    );
    assert_eq!(got, committed_recs);
    let (ends, got) = blocking(|| read_to_end(&b.bootstrap, topic, 2, "read_uncommitted"));
    assert_eq!(
        ends,
        BTreeMap::from([(0, 16), (1, 16)]),
        "high watermarks while open"
    );
    assert_eq!(got, merge(&[&aborted_recs, &committed_recs, &open_recs]));

    blocking(|| p.commit_transaction(TIMEOUT)).expect("commit_transaction");
    let (ends, got) = blocking(|| read_to_end(&b.bootstrap, topic, 2, "read_committed"));
    assert_eq!(ends, BTreeMap::from([(0, 17), (1, 17)]));
    assert_eq!(got, merge(&[&committed_recs, &open_recs]));

    drop(p);
    b.running.stop().await.expect("clean stop");
}

fn committed_offsets(consumer: &BaseConsumer, topic: &str) -> Vec<(i32, Offset)> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    tpl.add_partition(topic, 1);
    let got = consumer
        .committed_offsets(tpl, TIMEOUT)
        .expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| {
            e.error().expect("no partition error");
            (e.partition(), e.offset())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_to_a_transaction_are_committed_only_with_it() {
    let b = start_broker().await;
    let topic = "rd-txn-offsets";
    create_topic(&b.bootstrap, topic, 2).await;
    let group = "rd-txn-offsets-group";
    // the group's metadata comes from a consumer of the group (never subscribed: generation -1,
    // as for a consumer with a manual assignment)
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let cgm = consumer.group_metadata().expect("group metadata");
    let p = txn_producer(&b.bootstrap, "rd-txn-offsets");
    blocking(|| p.init_transactions(TIMEOUT)).expect("init_transactions");
    let data = values("in", 20, 2);
    p.begin_transaction().expect("begin");
    send_all(&p, topic, &data).await;
    blocking(|| p.commit_transaction(TIMEOUT)).expect("commit_transaction");

    let offsets = |o0: i64, o1: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(o0))
            .expect("tpl");
        tpl.add_partition_offset(topic, 1, Offset::Offset(o1))
            .expect("tpl");
        tpl
    };

    // aborted: nothing committed
    p.begin_transaction().expect("begin");
    blocking(|| p.send_offsets_to_transaction(&offsets(3, 4), &cgm, TIMEOUT))
        .expect("send_offsets_to_transaction");
    blocking(|| p.abort_transaction(TIMEOUT)).expect("abort_transaction");
    assert_eq!(
        blocking(|| committed_offsets(&consumer, topic)),
        vec![(0, Offset::Invalid), (1, Offset::Invalid)]
    );

    // committed, together with a record: exactly the sent offsets
    p.begin_transaction().expect("begin");
    send_all(&p, topic, &[(0, "with-offsets".to_string())]).await;
    blocking(|| p.send_offsets_to_transaction(&offsets(7, 9), &cgm, TIMEOUT))
        .expect("send_offsets_to_transaction");
    blocking(|| p.commit_transaction(TIMEOUT)).expect("commit_transaction");
    assert_eq!(
        blocking(|| committed_offsets(&consumer, topic)),
        vec![(0, Offset::Offset(7)), (1, Offset::Offset(9))]
    );

    // aborted again: the committed offsets stay
    p.begin_transaction().expect("begin");
    blocking(|| p.send_offsets_to_transaction(&offsets(10, 10), &cgm, TIMEOUT))
        .expect("send_offsets_to_transaction");
    blocking(|| p.abort_transaction(TIMEOUT)).expect("abort_transaction");
    assert_eq!(
        blocking(|| committed_offsets(&consumer, topic)),
        vec![(0, Offset::Offset(7)), (1, Offset::Offset(9))]
    );

    drop(p);
    drop(consumer);
    b.running.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let b = start_broker().await;
    let topic = "rd-txn-fence";
    create_topic(&b.bootstrap, topic, 1).await;

    let zombie = txn_producer(&b.bootstrap, "rd-txn-fence");
    blocking(|| zombie.init_transactions(TIMEOUT)).expect("init_transactions");
    zombie.begin_transaction().expect("begin");
    let zombie_data = values("zombie", 3, 1);
    assert_eq!(
        send_all(&zombie, topic, &zombie_data).await,
        vec![(0, 0), (0, 1), (0, 2)]
    );

    // the new instance's InitProducerId bumps the epoch and aborts the open transaction
    let fresh = txn_producer(&b.bootstrap, "rd-txn-fence");
    blocking(|| fresh.init_transactions(TIMEOUT)).expect("init_transactions");

    // the zombie's commit is refused with a fatal fencing error
    match blocking(|| zombie.commit_transaction(TIMEOUT)) {
        Err(KafkaError::Transaction(e)) => {
            assert!(e.is_fatal(), "not fatal: {e:?} {}", e.string());
            assert!(
                matches!(
                    e.code(),
                    RDKafkaErrorCode::Fenced
                        | RDKafkaErrorCode::ProducerFenced
                        | RDKafkaErrorCode::InvalidProducerEpoch
                ),
                "{:?}: {}",
                e.code(),
                e.string()
            );
        }
        other => panic!("the fenced producer's commit returned {other:?}"),
    }
    drop(zombie);

    fresh.begin_transaction().expect("begin");
    let fresh_data = values("fresh", 2, 1);
    // offset 3 is the abort marker of the zombie's transaction
    assert_eq!(
        send_all(&fresh, topic, &fresh_data).await,
        vec![(0, 4), (0, 5)]
    );
    blocking(|| fresh.commit_transaction(TIMEOUT)).expect("commit_transaction");

    let (ends, got) = blocking(|| read_to_end(&b.bootstrap, topic, 1, "read_committed"));
    assert_eq!(ends, BTreeMap::from([(0, 7)]));
    assert_eq!(
        got,
        BTreeMap::from([(
            0,
            vec![(4, "fresh-0".to_string()), (5, "fresh-1".to_string())]
        )])
    );
    let (_, got) = blocking(|| read_to_end(&b.bootstrap, topic, 1, "read_uncommitted"));
    let all: Vec<(i64, String)> = got[&0].clone();
    assert_eq!(
        all,
        vec![
            (0, "zombie-0".to_string()),
            (1, "zombie-1".to_string()),
            (2, "zombie-2".to_string()),
            (4, "fresh-0".to_string()),
            (5, "fresh-1".to_string()),
        ]
    );

    drop(fresh);
    b.running.stop().await.expect("clean stop");
}
