//! Helpers of the replication tests: batches, a random-ish leader log, and everything a
//! partition shows through its public interface, to compare two partitions.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_config::BrokerConfig;
use sluice_protocol::batch::{split_batches, validate, ControlType};
use sluice_storage::{AbortedTxn, Isolation, Partition, ProducerInfo};

/// A broker configuration on `dir` with these extra properties.
pub(crate) fn config(dir: &std::path::Path, extra: &[(&str, &str)]) -> BrokerConfig {
    let d = dir.to_string_lossy().into_owned();
    let mut props: Vec<(&str, &str)> = vec![("log.dirs", d.as_str())];
    props.extend_from_slice(extra);
    BrokerConfig::from_properties(props).unwrap()
}

/// Topic overrides that roll a segment every few batches.
pub(crate) fn small_segments() -> BTreeMap<String, String> {
    BTreeMap::from([("segment.bytes".to_string(), "700".to_string())])
}

/// Who writes a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Producer {
    pub(crate) id: i64,
    pub(crate) epoch: i16,
    pub(crate) seq: i32,
    pub(crate) transactional: bool,
}

/// A batch of `n` records with timestamps from `ts0`, from `producer` (none: -1 ids).
pub(crate) fn batch(n: i32, ts0: i64, producer: Option<Producer>) -> Bytes {
    let (pid, epoch, seq, txn) = producer.map_or((-1, -1, -1, false), |p| {
        (p.id, p.epoch, p.seq, p.transactional)
    });
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: txn,
            delete_horizon: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            // The encoder batches records whose offset - sequence is constant; without a
            // producer the batch's base sequence must come out as -1.
            sequence: if seq < 0 { i - 1 } else { seq + i },
            timestamp: ts0 + i64::from(i),
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{pid}-{seq}-{ts0}-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Appends a producer's batch as a leader does; the base offset or the error's text.
pub(crate) fn append(p: &Partition, b: &Bytes, now: i64) -> Result<i64, String> {
    p.append(validate(b).unwrap(), b, now)
        .map(|i| i.base_offset)
        .map_err(|e| format!("{e:?}"))
}

/// A small deterministic generator (SplitMix64), so a failing log can be rebuilt.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes a random-ish log to a leader: plain batches, two idempotent producers (one
/// bumping its epoch once), two transactional producers committing and aborting, and
/// leader epoch changes; timestamps jump back and forth so the time index has work.
pub(crate) fn build_leader_log(p: &Partition, seed: u64, steps: usize) {
    let mut rng = Rng::new(seed);
    let mut producers = [
        Producer {
            id: 1,
            epoch: 0,
            seq: 0,
            transactional: false,
        },
        Producer {
            id: 2,
            epoch: 0,
            seq: 0,
            transactional: false,
        },
        Producer {
            id: 10,
            epoch: 0,
            seq: 0,
            transactional: true,
        },
        Producer {
            id: 11,
            epoch: 0,
            seq: 0,
            transactional: true,
        },
    ];
    let mut epoch = 0;
    p.become_leader(epoch).unwrap();
    let mut now = 10_000i64;
    for _ in 0..steps {
        now += rng.below(50) as i64;
        let ts = now - 200 + rng.below(400) as i64;
        let n = 1 + rng.below(3) as i32;
        match rng.below(20) {
            0..=3 => {
                append(p, &batch(n, ts, None), now).unwrap();
            }
            4..=8 => {
                // Producer 1 writes most, so that it outgrows what its entry remembers.
                let pr = &mut producers[usize::from(rng.below(3) == 2)];
                if rng.below(12) == 0 {
                    pr.epoch += 1;
                    pr.seq = 0;
                }
                append(p, &batch(n, ts, Some(*pr)), now).unwrap();
                pr.seq += n;
            }
            9..=14 => {
                let pr = &mut producers[2 + rng.below(2) as usize];
                append(p, &batch(n, ts, Some(*pr)), now).unwrap();
                pr.seq += n;
            }
            15..=17 => {
                let pr = &producers[2 + rng.below(2) as usize];
                let control = if rng.below(2) == 0 {
                    ControlType::Commit
                } else {
                    ControlType::Abort
                };
                p.append_marker(pr.id, pr.epoch, control, now).unwrap();
            }
            _ => {
                epoch += 1 + rng.below(2) as i32;
                p.become_leader(epoch).unwrap();
            }
        }
    }
    // The latest epoch gets a batch, so that a replica of the batches learns of it too.
    append(p, &batch(1, now, None), now).unwrap();
}

/// Every batch of a partition, read as a follower reads: (base, last, bytes).
pub(crate) fn all_batches(p: &Partition) -> Vec<(i64, i64, Bytes)> {
    let mut out = Vec::new();
    let mut at = p.log_start_offset();
    while at < p.log_end_offset() {
        let data = p.read(at, 1, Isolation::LogEnd).unwrap();
        let batches = split_batches(&data.records).unwrap();
        assert_eq!(batches.len(), 1, "a 1-byte read returns one whole batch");
        let (h, b) = &batches[0];
        out.push((h.base_offset, h.last_offset(), b.clone()));
        at = h.last_offset() + 1;
    }
    out
}

/// What one read returned, or its error.
pub(crate) type ReadResult = Result<(Bytes, i64, i64, i64, Vec<AbortedTxn>), String>;

/// Everything observable of a partition through its public interface.
#[derive(Debug, PartialEq)]
pub(crate) struct Observed {
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) producers: Vec<ProducerInfo>,
    pub(crate) epochs: Vec<(i32, i64)>,
    pub(crate) leader_epoch: i32,
    pub(crate) end_offsets: Vec<(i32, i64)>,
    /// (offset, isolation, max bytes) → result.
    pub(crate) reads: Vec<(i64, String, usize, ReadResult)>,
    /// Timestamp lookups: target → (offset, timestamp).
    pub(crate) times: Vec<(i64, Option<(i64, i64)>)>,
    pub(crate) max_timestamp: Option<(i64, i64)>,
}

/// Reads a partition at every offset with every isolation.
pub(crate) fn observe(p: &Partition) -> Observed {
    let leo = p.log_end_offset();
    let mut reads = Vec::new();
    for offset in p.log_start_offset()..=leo + 1 {
        for iso in [
            Isolation::ReadUncommitted,
            Isolation::ReadCommitted,
            Isolation::LogEnd,
        ] {
            for max in [1usize, 1 << 20] {
                let r = p
                    .read(offset, max, iso)
                    .map(|d| {
                        (
                            d.records,
                            d.high_watermark,
                            d.log_start_offset,
                            d.last_stable_offset,
                            d.aborted_transactions,
                        )
                    })
                    .map_err(|e| format!("{e:?}"));
                reads.push((offset, format!("{iso:?}"), max, r));
            }
        }
    }
    let times = (9_000..12_000)
        .step_by(97)
        .map(|t| {
            (
                t,
                p.offset_for_timestamp(t)
                    .unwrap()
                    .map(|o| (o.offset, o.timestamp)),
            )
        })
        .collect();
    Observed {
        log_start_offset: p.log_start_offset(),
        log_end_offset: leo,
        high_watermark: p.high_watermark(),
        last_stable_offset: p.last_stable_offset(),
        producers: p.producers(),
        epochs: p.epoch_entries(),
        leader_epoch: p.leader_epoch(),
        end_offsets: (-1..12).map(|e| p.end_offset_for_epoch(e)).collect(),
        reads,
        times,
        max_timestamp: p
            .max_timestamp_offset()
            .unwrap()
            .map(|o| (o.offset, o.timestamp)),
    }
}

/// Asserts two observations equal, naming the first difference (the whole Debug of a
/// mismatch is too long to read).
pub(crate) fn assert_same(a: &Observed, b: &Observed, what: &str) {
    assert_eq!(
        (
            a.log_start_offset,
            a.log_end_offset,
            a.high_watermark,
            a.last_stable_offset
        ),
        (
            b.log_start_offset,
            b.log_end_offset,
            b.high_watermark,
            b.last_stable_offset
        ),
        "{what}: offsets"
    );
    assert_eq!(a.producers, b.producers, "{what}: producers");
    assert_eq!(a.epochs, b.epochs, "{what}: leader epochs");
    assert_eq!(a.leader_epoch, b.leader_epoch, "{what}: leader epoch");
    assert_eq!(
        a.end_offsets, b.end_offsets,
        "{what}: end offsets for epochs"
    );
    assert_eq!(a.reads.len(), b.reads.len(), "{what}: number of reads");
    for (x, y) in a.reads.iter().zip(&b.reads) {
        assert_eq!(x, y, "{what}: read");
    }
    assert_eq!(a.times, b.times, "{what}: timestamp lookups");
    assert_eq!(a.max_timestamp, b.max_timestamp, "{what}: max timestamp");
}

/// Appends the same probes to both partitions and asserts the same answers: for every
/// producer the next sequence, a repeat of its last sequence (duplicate or out of order)
/// and a transactional batch, and a marker for each transactional producer.
pub(crate) fn assert_same_probes(a: &Partition, b: &Partition, what: &str) {
    let pa = a.producers();
    assert_eq!(pa, b.producers(), "{what}: producers before probes");
    for info in pa {
        let last = info.last_sequence;
        for (seq, txn) in [
            (last, false),
            (last + 1, false),
            (last + 1, true),
            (0, false),
        ] {
            let pr = Producer {
                id: info.producer_id,
                epoch: info.producer_epoch,
                seq: seq.max(0),
                transactional: txn,
            };
            let bytes = batch(1, 20_000, Some(pr));
            assert_eq!(
                append(a, &bytes, 20_000),
                append(b, &bytes, 20_000),
                "{what}: probe of producer {} at sequence {seq}",
                info.producer_id
            );
        }
        if info.producer_id >= 10 {
            let ma = a
                .append_marker(
                    info.producer_id,
                    info.producer_epoch,
                    ControlType::Abort,
                    20_000,
                )
                .map(|i| i.base_offset)
                .map_err(|e| format!("{e:?}"));
            let mb = b
                .append_marker(
                    info.producer_id,
                    info.producer_epoch,
                    ControlType::Abort,
                    20_000,
                )
                .map(|i| i.base_offset)
                .map_err(|e| format!("{e:?}"));
            assert_eq!(ma, mb, "{what}: marker probe of {}", info.producer_id);
        }
    }
    assert_same(&observe(a), &observe(b), &format!("{what} after probes"));
}
