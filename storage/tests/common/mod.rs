//! Record batches the storage tests append: one 100-byte record each.

use bytes::BytesMut;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_protocol::batch::validate;
use sluice_storage::Partition;

/// Appends record `i`, timestamped 1000 + `i`.
pub(crate) fn append_one(p: &Partition, i: i64) {
    append_from(p, i, -1);
}

/// Appends record `i`, from idempotent producer `producer_id` (sequence `i`) unless -1.
pub(crate) fn append_from(p: &Partition, i: i64, producer_id: i64) {
    let r = Record {
        transactional: false,
        delete_horizon: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch: if producer_id < 0 { -1 } else { 0 },
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: if producer_id < 0 { -1 } else { i as i32 },
        // A producer's state expires after producer.id.expiration.ms of its last timestamp.
        timestamp: if producer_id < 0 {
            1_000 + i
        } else {
            sluice_storage::now_ms()
        },
        key: None,
        value: Some(bytes::Bytes::from(vec![b'v'; 100])),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &[r], &opts).unwrap();
    let b = buf.freeze();
    let now = if producer_id < 0 {
        1_000
    } else {
        sluice_storage::now_ms()
    };
    p.append(validate(&b).unwrap(), &b, now).unwrap();
}
