//! Consumer groups with librdkafka (the `rdkafka` crate) against an in-process broker:
//! balanced assignment, committed offsets with metadata, and resuming after a restart.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sluice_config::BrokerConfig;

async fn start(dir: &std::path::Path, port: u16) -> sluice_broker::RunningBroker {
    let log_dir = dir.to_string_lossy().into_owned();
    let listener = format!("PLAINTEXT://127.0.0.1:{port}");
    let config = BrokerConfig::from_properties([
        ("listeners", listener.as_str()),
        ("log.dirs", log_dir.as_str()),
        ("group.initial.rebalance.delay.ms", "0"),
    ])
    .expect("config");
    sluice_broker::start(config).await.expect("broker starts")
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
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .expect("consumer")
}

fn assigned(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls every consumer until `done` holds, or fails after `timeout`.
fn poll_until(consumers: &[&BaseConsumer], timeout: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        for c in consumers {
            if let Some(Err(e)) = c.poll(Duration::from_millis(50)) {
                panic!("consumer error while waiting for {what}: {e}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_the_partitions_and_one_leaving_hands_them_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 0).await;
    let bootstrap = broker.addresses[0].to_string();
    create_topic(&bootstrap, "orders", 4).await;

    let a = group_consumer(&bootstrap, "g1");
    let b = group_consumer(&bootstrap, "g1");
    a.subscribe(&["orders"]).expect("subscribe");
    b.subscribe(&["orders"]).expect("subscribe");
    let all: BTreeSet<i32> = (0..4).collect();
    poll_until(
        &[&a, &b],
        Duration::from_secs(30),
        "a balanced assignment",
        || {
            let (pa, pb) = (assigned(&a), assigned(&b));
            pa.len() == 2 && pb.len() == 2 && pa.union(&pb).cloned().collect::<BTreeSet<_>>() == all
        },
    );

    drop(b); // closes the consumer: LeaveGroup
    poll_until(
        &[&a],
        Duration::from_secs(30),
        "the survivor to own everything",
        || assigned(&a) == all,
    );
    drop(a);
    broker.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_keep_their_metadata_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let broker = start(dir.path(), port).await;
    let bootstrap = broker.addresses[0].to_string();
    create_topic(&bootstrap, "events", 2).await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    for i in 0..10 {
        let payload = format!("event-{i}");
        producer
            .send(
                FutureRecord::<(), _>::to("events")
                    .partition(1)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }

    let c = group_consumer(&bootstrap, "g2");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("events", 0, Offset::Offset(0))
        .expect("tpl");
    tpl.add_partition_offset("events", 1, Offset::Offset(7))
        .expect("tpl");
    for mut e in tpl.elements() {
        let meta = format!("checkpoint-p{}", e.partition());
        e.set_metadata(meta);
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    let mut want = TopicPartitionList::new();
    want.add_partition("events", 0);
    want.add_partition("events", 1);
    let committed = c
        .committed_offsets(want, Duration::from_secs(10))
        .expect("committed offsets");
    let got: Vec<(i32, Offset, String)> = committed
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset(), e.metadata().to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, Offset::Offset(0), "checkpoint-p0".to_string()),
            (1, Offset::Offset(7), "checkpoint-p1".to_string()),
        ]
    );
    drop(c);
    drop(producer);

    broker.stop().await.expect("stop");
    let broker = start(dir.path(), port).await;

    // A new member of the group resumes exactly at the committed offset.
    let c = group_consumer(&bootstrap, "g2");
    c.subscribe(&["events"]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        assert!(Instant::now() < deadline, "nothing consumed after restart");
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => break (m.partition(), m.offset(), m.payload().map(<[u8]>::to_vec)),
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    };
    assert_eq!(first, (1, 7, Some(b"event-7".to_vec())));
    drop(c);
    broker.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_consumer_protocol_balances_members_as_they_come_and_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 0).await;
    let bootstrap = broker.addresses[0].to_string();
    create_topic(&bootstrap, "clicks", 6).await;

    let consumer = || -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "g848")
            .set("group.protocol", "consumer")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer")
    };
    let all: BTreeSet<i32> = (0..6).collect();
    let a = consumer();
    a.subscribe(&["clicks"]).expect("subscribe");
    poll_until(
        &[&a],
        Duration::from_secs(30),
        "the first member to own everything",
        || assigned(&a) == all,
    );

    let b = consumer();
    b.subscribe(&["clicks"]).expect("subscribe");
    // Revocation happens before assignment: a gives up half, then b takes it.
    poll_until(&[&a, &b], Duration::from_secs(60), "a 3/3 split", || {
        let (pa, pb) = (assigned(&a), assigned(&b));
        pa.len() == 3 && pb.len() == 3 && pa.union(&pb).cloned().collect::<BTreeSet<_>>() == all
    });

    drop(a); // leaves with member epoch -1
    poll_until(
        &[&b],
        Duration::from_secs(60),
        "the survivor to own everything",
        || assigned(&b) == all,
    );
    drop(b);
    broker.stop().await.expect("stop");
}
