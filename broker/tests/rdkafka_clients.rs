//! librdkafka (through the `rdkafka` crate) against an in-process broker on an ephemeral
//! port and a temporary data directory.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sluice_config::BrokerConfig;

struct TestBroker {
    running: sluice_broker::RunningBroker,
    bootstrap: String,
    _dir: tempfile::TempDir,
}

async fn start_broker(extra: &[(&str, &str)]) -> TestBroker {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().to_string_lossy().into_owned();
    let mut props = vec![
        ("listeners", "PLAINTEXT://127.0.0.1:0"),
        ("log.dirs", log_dir.as_str()),
    ];
    props.extend_from_slice(extra);
    let config = BrokerConfig::from_properties(props).expect("config");
    let running = sluice_broker::start(config).await.expect("broker starts");
    let bootstrap = running.addresses[0].to_string();
    TestBroker {
        running,
        bootstrap,
        _dir: dir,
    }
}

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "10000");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create().expect("producer")
}

/// A consumed record: offset, key, value, headers.
type Consumed = (i64, Vec<u8>, Vec<u8>, Vec<(String, Vec<u8>)>);

fn consume_all(bootstrap: &str, topic: &str, partition: i32, expected: usize) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "unused")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.len() < expected && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push((
                    m.offset(),
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                    headers,
                ));
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_exact_bytes_offsets_and_headers() {
    let b = start_broker(&[]).await;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .create()
        .expect("admin");
    let created = admin
        .create_topics(
            &[NewTopic::new("rd-exact", 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create_topics");
    assert_eq!(created, vec![Ok("rd-exact".to_string())]);
    let again = admin
        .create_topics(
            &[NewTopic::new("rd-exact", 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create_topics");
    assert_eq!(
        again,
        vec![Err((
            "rd-exact".to_string(),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );

    for (codec, idempotent) in [
        ("none", "false"),
        ("lz4", "true"),
        ("zstd", "true"),
        ("gzip", "false"),
        ("snappy", "true"),
    ] {
        let p = producer(
            &b.bootstrap,
            &[
                ("compression.codec", codec),
                ("enable.idempotence", idempotent),
                ("linger.ms", "5"),
            ],
        );
        let topic = format!("rd-{codec}");
        let mut futures = Vec::new();
        for i in 0..500u32 {
            let key = format!("key-{i}");
            let value = format!("value-{codec}-{i}-{}", "x".repeat((i % 50) as usize));
            let headers = OwnedHeaders::new().insert(Header {
                key: "h",
                value: Some(&i.to_be_bytes()),
            });
            futures.push(
                p.send_result(
                    FutureRecord::to(&topic)
                        .partition(0)
                        .key(&key)
                        .payload(&value)
                        .headers(headers),
                )
                .expect("enqueue"),
            );
        }
        for (i, f) in futures.into_iter().enumerate() {
            let delivery = f.await.expect("not cancelled").expect("delivered");
            assert_eq!(
                (delivery.partition, delivery.offset),
                (0, i as i64),
                "{codec}"
            );
        }
        let got = consume_all(&b.bootstrap, &topic, 0, 500);
        assert_eq!(got.len(), 500, "{codec}");
        for (i, (offset, key, value, headers)) in got.into_iter().enumerate() {
            assert_eq!(offset, i as i64);
            assert_eq!(key, format!("key-{i}").into_bytes());
            assert_eq!(
                value,
                format!("value-{codec}-{i}-{}", "x".repeat(i % 50)).into_bytes()
            );
            assert_eq!(
                headers,
                vec![("h".to_string(), (i as u32).to_be_bytes().to_vec())]
            );
        }
    }
    b.running.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_without_auto_create_is_refused() {
    let b = start_broker(&[("auto.create.topics.enable", "false")]).await;
    // librdkafka waits topic.metadata.propagation.max.ms for a missing topic to appear,
    // then fails the message with the broker's error.
    let p = producer(
        &b.bootstrap,
        &[
            ("message.timeout.ms", "20000"),
            ("topic.metadata.propagation.max.ms", "500"),
        ],
    );
    let res = p
        .send(
            FutureRecord::<str, str>::to("missing").payload("x"),
            Duration::from_secs(5),
        )
        .await;
    match res {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert!(
                matches!(
                    code,
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
                ),
                "{code:?}"
            );
        }
        other => panic!("expected an unknown-topic error, got {other:?}"),
    }
    b.running.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_offsets_survive_restart_and_watermarks_are_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().to_string_lossy().into_owned();
    let config = || {
        BrokerConfig::from_properties([
            ("listeners", "PLAINTEXT://127.0.0.1:0"),
            ("log.dirs", log_dir.as_str()),
            ("log.segment.bytes", "4096"),
        ])
        .expect("config")
    };
    let running = sluice_broker::start(config()).await.expect("start");
    let bootstrap = running.addresses[0].to_string();
    let p = producer(
        &bootstrap,
        &[("enable.idempotence", "true"), ("linger.ms", "0")],
    );
    for i in 0..300u32 {
        p.send(
            FutureRecord::to("restart")
                .key(&i.to_string())
                .payload(&format!("v{i}")),
            Duration::from_secs(5),
        )
        .await
        .expect("delivered");
    }
    drop(p);
    running.stop().await.expect("stop");

    let running = sluice_broker::start(config()).await.expect("restart");
    let bootstrap = running.addresses[0].to_string();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "unused")
        .create()
        .expect("consumer");
    let (low, high) = consumer
        .fetch_watermarks("restart", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, 300));
    let got = consume_all(&bootstrap, "restart", 0, 300);
    let values: Vec<Vec<u8>> = got.into_iter().map(|m| m.2).collect();
    let expected: Vec<Vec<u8>> = (0..300).map(|i| format!("v{i}").into_bytes()).collect();
    assert_eq!(values, expected);
    running.stop().await.expect("stop");
}
