//! librdkafka clients (through the `rdkafka` crate) as the scenarios use them: topic
//! administration, a producer that counts acknowledgements, consumers, payloads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode as Code;

/// How long an admin request may take; creating thousands of partitions is not quick.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);

/// A client configuration with the bootstrap address and `settings` on top.
pub(crate) fn config(bootstrap: &str, settings: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap);
    for (k, v) in settings {
        cfg.set(*k, *v);
    }
    cfg
}

/// An admin client.
pub(crate) fn admin(bootstrap: &str) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    config(bootstrap, &[])
        .create()
        .context("creating the admin client")
}

/// Creates `topics` (name, partitions) with `configs`, `per_request` topics per
/// CreateTopics request.
pub(crate) fn create_topics(
    bootstrap: &str,
    topics: &[(String, i32)],
    configs: &[(&str, &str)],
    per_request: usize,
) -> anyhow::Result<()> {
    create_replicated_topics(bootstrap, topics, configs, per_request, 1)
}

/// Like [`create_topics`], with `replication` replicas per partition.
pub(crate) fn create_replicated_topics(
    bootstrap: &str,
    topics: &[(String, i32)],
    configs: &[(&str, &str)],
    per_request: usize,
    replication: i32,
) -> anyhow::Result<()> {
    let admin = admin(bootstrap)?;
    let options = AdminOptions::new()
        .request_timeout(Some(ADMIN_TIMEOUT))
        .operation_timeout(Some(ADMIN_TIMEOUT));
    for chunk in topics.chunks(per_request.max(1)) {
        let new: Vec<NewTopic<'_>> = chunk
            .iter()
            .map(|(name, partitions)| {
                configs.iter().fold(
                    NewTopic::new(name, *partitions, TopicReplication::Fixed(replication)),
                    |t, (k, v)| t.set(k, v),
                )
            })
            .collect();
        let results = futures::executor::block_on(admin.create_topics(&new, &options))
            .context("CreateTopics")?;
        for result in results {
            if let Err((topic, code)) = result {
                bail!("creating topic {topic}: {code}");
            }
        }
    }
    Ok(())
}

/// Deletes `topics`; a topic already gone is fine.
pub(crate) fn delete_topics(bootstrap: &str, topics: &[&str]) -> anyhow::Result<()> {
    let admin = admin(bootstrap)?;
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let results = futures::executor::block_on(admin.delete_topics(topics, &options))
        .context("DeleteTopics")?;
    for result in results {
        match result {
            Ok(_) | Err((_, Code::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => bail!("deleting topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Counts the producer's acknowledgements and failures.
#[derive(Default)]
pub(crate) struct Acks {
    /// Records acknowledged by the broker.
    pub(crate) delivered: AtomicU64,
    /// Records that failed for good.
    pub(crate) failed: AtomicU64,
    /// The first failure, for the report.
    pub(crate) first_error: Mutex<Option<String>>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self
                    .first_error
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

impl Acks {
    /// Fails unless every one of `sent` records was acknowledged.
    pub(crate) fn check(&self, sent: u64) -> anyhow::Result<()> {
        let delivered = self.delivered.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        if delivered != sent {
            let first = self
                .first_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone()
                .unwrap_or_else(|| "no error reported".into());
            bail!("{delivered} of {sent} records acknowledged, {failed} failed (first: {first})");
        }
        Ok(())
    }
}

/// A producer whose background thread serves delivery reports into [`Acks`].
pub(crate) fn producer(
    bootstrap: &str,
    settings: &[(&str, &str)],
) -> anyhow::Result<ThreadedProducer<Acks>> {
    config(bootstrap, settings)
        .set("message.timeout.ms", "120000")
        .create_with_context(Acks::default())
        .context("creating the producer")
}

/// Sends `record`, waiting while librdkafka's queue is full (the producer is ahead of the broker).
pub(crate) fn send<'a, C>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'a, [u8], [u8], C::DeliveryOpaque>,
) -> anyhow::Result<()>
where
    C: ProducerContext + 'static,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_micros(100));
            }
            Err((e, _)) => bail!("send: {e}"),
        }
    }
}

/// A consumer outside any group (partitions are assigned, never subscribed).
pub(crate) fn consumer(bootstrap: &str, settings: &[(&str, &str)]) -> anyhow::Result<BaseConsumer> {
    config(bootstrap, settings)
        // librdkafka's poll reports "Unknown group" without one, although assign needs none.
        .set("group.id", "sluice-bench-reader")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the consumer")
}

/// `count` distinct payloads of `size` bytes of word-like text: compressible about as
/// much as typical JSON or log lines, so lz4 does real work without a flattering ratio.
pub(crate) fn payloads(size: usize, count: usize) -> Vec<Vec<u8>> {
    const WORDS: &[&str] = &[
        "user", "order", "event", "click", "view", "cart", "price", "id", "session", "region",
        "eu-west", "us-east", "status", "ok", "error", "timeout", "latency", "mobile", "web",
        "checkout", "search", "query", "item", "amount", "currency", "EUR", "USD", "true", "false",
        "null", "count", "page",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: deterministic, cheap, good enough for test data.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..count)
        .map(|_| {
            let mut p = Vec::with_capacity(size + 24);
            while p.len() < size {
                let r = next();
                if r % 3 == 0 {
                    p.extend_from_slice((r >> 8).to_string().as_bytes());
                } else {
                    p.extend_from_slice(WORDS[(r >> 8) as usize % WORDS.len()].as_bytes());
                }
                p.push(if r % 7 == 0 { b',' } else { b' ' });
            }
            p.truncate(size);
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_size_and_differ() {
        let p = payloads(100, 3);
        assert!(p.iter().all(|x| x.len() == 100));
        assert_ne!(p[0], p[1]);
    }
}
