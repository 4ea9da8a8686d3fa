//! `sluice produce`: lines of standard input become records, batched per partition into
//! record batches (magic v2) and sent to each partition's leader.

use std::collections::BTreeMap;
use std::io::BufRead;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_protocol::ResponseError;
use sluice_protocol::names::error_name;
use tokio::sync::mpsc;

use crate::args::{Acks, CompressionArg, ProduceArgs};
use crate::client::{topic_name, Client, Target, RETRY_BACKOFF};
use crate::error::CliError;
use crate::interrupt::Interrupt;
use crate::metadata::Cluster;
use crate::output::Progress;
use crate::partitioner::{partition_for_key, Sticky};
use crate::topic::parse_pairs;

/// Uncompressed bytes after which a partition's batch is sent (brokers refuse batches over
/// message.max.bytes, 1 MiB by default).
const BATCH_BYTES: usize = 512 * 1024;
/// Uncompressed bytes after which the records read so far are sent.
const REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Lines buffered between the stdin reader and the sender.
const LINE_QUEUE: usize = 10_000;
/// Sends of a partition's batch after errors that mean nothing was written.
const SEND_ATTEMPTS: usize = 3;
/// Per-record overhead in the size estimate (lengths, deltas, attributes).
const RECORD_OVERHEAD: usize = 16;

/// One partition's records waiting to be sent.
#[derive(Default)]
struct Pending {
    records: Vec<Record>,
    bytes: usize,
}

/// Runs `sluice produce`.
pub(crate) async fn run(client: &mut Client, args: ProduceArgs) -> Result<(), CliError> {
    let headers: IndexMap<StrBytes, Option<Bytes>> = parse_pairs(&args.headers, "--header")?
        .into_iter()
        .map(|(k, v)| (StrBytes::from_string(k), Some(Bytes::from(v))))
        .collect();
    let topic = args.topic.clone();
    let mut cluster = topic_cluster(client, &topic).await?;
    let partitions = cluster.require_topic(&topic)?.partitions.len() as i32;
    if let Some(p) = args.partition {
        if !(0..partitions).contains(&p) {
            return Err(CliError::Kafka {
                context: format!("{topic}-{p}"),
                code: ResponseError::UnknownTopicOrPartition.code(),
                message: Some(format!("{topic} has {partitions} partitions")),
            });
        }
    }
    let separator = args
        .key_separator
        .as_deref()
        .map(str::as_bytes)
        .map(<[u8]>::to_vec);
    if separator.as_deref() == Some(b"") {
        return Err(CliError::Usage(
            "--key-separator must not be empty".to_string(),
        ));
    }
    let compression = match args.compression {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Snappy => Compression::Snappy,
        CompressionArg::Lz4 => Compression::Lz4,
        CompressionArg::Zstd => Compression::Zstd,
    };
    let acks: i16 = match args.acks {
        Acks::None => 0,
        Acks::Leader => 1,
        Acks::All => -1,
    };

    let mut lines = read_lines();
    let mut sticky = Sticky::new(partitions);
    let mut progress = Progress::new();
    let mut produced: u64 = 0;
    let mut failed: u64 = 0;
    // ^C (or SIGTERM) stops after the batch in flight, and the summary still says what was produced.
    let mut interrupt = Interrupt::new()?;
    loop {
        let first = tokio::select! {
            _ = interrupt.recv() => break,
            line = lines.recv() => match line {
                Some(line) => line,
                None => break,
            },
        };
        let mut pending: BTreeMap<i32, Pending> = BTreeMap::new();
        let mut total = 0;
        let mut next = Some(first);
        // Take what is already read, up to a request's worth: a pipe sends big batches,
        // a terminal sends each line as it is typed.
        while let Some(line) = next.take() {
            let line = line.map_err(|source| CliError::Io {
                what: "reading standard input",
                source,
            })?;
            let (key, value) = split_line(line, separator.as_deref());
            let partition = match (args.partition, &key) {
                (Some(p), _) => p,
                (None, Some(k)) => partition_for_key(k, partitions),
                (None, None) => sticky.current(),
            };
            let size = key.as_ref().map_or(0, Bytes::len) + value.len() + RECORD_OVERHEAD;
            let batch = pending.entry(partition).or_default();
            batch.records.push(record(key, value, &headers));
            batch.bytes += size;
            total += size;
            if batch.bytes >= BATCH_BYTES || total >= REQUEST_BYTES {
                break;
            }
            next = lines.try_recv().ok();
        }
        let count: u64 = pending.values().map(|p| p.records.len() as u64).sum();
        let errors = send(client, &mut cluster, &topic, pending, acks, compression).await?;
        sticky.rotate(partitions);
        let lost: u64 = errors.iter().map(|(_, n, _)| *n).sum();
        produced += count - lost;
        failed += lost;
        for (p, n, e) in errors {
            eprintln!("error: {n} records not produced to {topic}-{p}: {e}");
        }
        let secs = progress.elapsed().as_secs_f64().max(0.001);
        progress.tick(|| {
            format!(
                "produced {produced} records to {topic} ({:.0}/s)",
                produced as f64 / secs
            )
        });
    }
    eprintln!("produced {produced} records to {topic}");
    if failed > 0 {
        return Err(CliError::Incomplete(format!(
            "{failed} of {} records not produced to {topic}",
            produced + failed
        )));
    }
    Ok(())
}

/// Metadata for the topic, failing if it does not exist (no auto-creation here).
async fn topic_cluster(client: &mut Client, topic: &str) -> Result<Cluster, CliError> {
    let cluster = client.metadata(Some(&[topic.to_string()])).await?;
    cluster.require_topic(topic)?;
    Ok(cluster)
}

/// Reads standard input on its own thread (reads block), one line per message; the
/// line ending (\n or \r\n) is not part of the record.
fn read_lines() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(LINE_QUEUE);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if tx.blocking_send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

/// Key and value of a line: split at the first separator when one is given; a line
/// without the separator has no key.
fn split_line(line: Vec<u8>, separator: Option<&[u8]>) -> (Option<Bytes>, Bytes) {
    let line = Bytes::from(line);
    let Some(sep) = separator else {
        return (None, line);
    };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(i) => (Some(line.slice(..i)), line.slice(i + sep.len()..)),
        None => (None, line),
    }
}

fn record(key: Option<Bytes>, value: Bytes, headers: &IndexMap<StrBytes, Option<Bytes>>) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        // Offsets within the batch are set when the batch is encoded.
        offset: 0,
        sequence: -1,
        timestamp: now_ms(),
        key,
        value: Some(value),
        headers: headers.clone(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One record batch of `records`: offsets 0.., and base sequence -1 (no idempotence),
/// which the encoder derives from `offset - sequence` being 1 for every record.
fn encode_batch(records: &mut [Record], compression: Compression) -> Result<Bytes, CliError> {
    for (i, r) in records.iter_mut().enumerate() {
        r.offset = i as i64;
        r.sequence = i as i32 - 1;
    }
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| CliError::Protocol {
        addr: String::new(),
        api: "Produce",
        reason: format!("encoding a record batch: {e:#}"),
    })?;
    Ok(buf.freeze())
}

/// Errors after which the batch was certainly not written: resend after new metadata.
fn not_written(code: i16) -> bool {
    [
        ResponseError::NotLeaderOrFollower,
        ResponseError::LeaderNotAvailable,
        ResponseError::UnknownTopicOrPartition,
        ResponseError::NotEnoughReplicas,
    ]
    .iter()
    .any(|e| e.code() == code)
}

/// Sends each partition's batch to its leader; returns the partitions that failed, with
/// their record counts and errors.
async fn send(
    client: &mut Client,
    cluster: &mut Cluster,
    topic: &str,
    pending: BTreeMap<i32, Pending>,
    acks: i16,
    compression: Compression,
) -> Result<Vec<(i32, u64, CliError)>, CliError> {
    let mut batches: BTreeMap<i32, (Bytes, u64)> = BTreeMap::new();
    for (p, mut batch) in pending {
        let count = batch.records.len() as u64;
        batches.insert(p, (encode_batch(&mut batch.records, compression)?, count));
    }
    let timeout_ms = i32::try_from(client.request_timeout().as_millis()).unwrap_or(i32::MAX);
    let mut failed = Vec::new();
    for attempt in 1..=SEND_ATTEMPTS {
        let mut retry: BTreeMap<i32, (Bytes, u64)> = BTreeMap::new();
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in batches.keys() {
            match cluster.require_topic(topic)?.leader(*p) {
                Some(leader) => by_leader.entry(leader).or_default().push(*p),
                None => {
                    retry.insert(*p, batches[p].clone());
                }
            }
        }
        for (leader, parts) in by_leader {
            let build = |_| {
                ProduceRequest::default()
                    .with_acks(acks)
                    .with_timeout_ms(timeout_ms)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(topic_name(topic))
                        .with_partition_data(
                            parts
                                .iter()
                                .map(|p| {
                                    PartitionProduceData::default()
                                        .with_index(*p)
                                        .with_records(Some(batches[p].0.clone()))
                                })
                                .collect(),
                        )])
            };
            if acks == 0 {
                client.send_one_way(Target::Node(leader), build).await?;
                continue;
            }
            let (_, resp) = client.send(Target::Node(leader), build).await?;
            for t in resp.responses {
                for r in t.partition_responses {
                    let Some(batch) = batches.get(&r.index) else {
                        continue;
                    };
                    if r.error_code == 0 {
                        continue;
                    }
                    if not_written(r.error_code) && attempt < SEND_ATTEMPTS {
                        tracing::debug!(partition = r.index, error = %error_name(r.error_code), "resending");
                        retry.insert(r.index, batch.clone());
                        continue;
                    }
                    let e = CliError::check(r.error_code, r.error_message.as_ref(), || {
                        format!("{topic}-{}", r.index)
                    });
                    if let Err(e) = e {
                        failed.push((r.index, batch.1, e));
                    }
                }
            }
        }
        if retry.is_empty() {
            return Ok(failed);
        }
        if attempt == SEND_ATTEMPTS {
            for (p, (_, n)) in retry {
                failed.push((
                    p,
                    n,
                    CliError::Kafka {
                        context: format!("{topic}-{p}"),
                        code: ResponseError::LeaderNotAvailable.code(),
                        message: None,
                    },
                ));
            }
            return Ok(failed);
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
        *cluster = topic_cluster(client, topic).await?;
        batches = retry;
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator() {
        let (k, v) = split_line(b"a:b:c".to_vec(), Some(b":"));
        assert_eq!((k.as_deref(), &v[..]), (Some(&b"a"[..]), &b"b:c"[..]));
        let (k, v) = split_line(b"abc".to_vec(), Some(b"::"));
        assert_eq!((k, &v[..]), (None, &b"abc"[..]));
        let (k, v) = split_line(b"a:b".to_vec(), None);
        assert_eq!((k, &v[..]), (None, &b"a:b"[..]));
    }

    #[test]
    fn batches_carry_no_producer_sequence() {
        let headers = IndexMap::new();
        let mut records: Vec<Record> = (0..3)
            .map(|i| record(None, Bytes::from(format!("v{i}")), &headers))
            .collect();
        let batch = encode_batch(&mut records, Compression::None).expect("encodes");
        let header = sluice_protocol::batch::validate(&batch).expect("one valid batch");
        assert_eq!(header.size(), batch.len(), "one batch");
        assert_eq!(
            (
                header.base_sequence,
                header.records_count,
                header.last_offset_delta
            ),
            (-1, 3, 2)
        );
    }
}
