//! The Fetch response frame with each partition's records left in its segment file.
//!
//! kafka-protocol encodes a response into one buffer, which would copy every fetched byte.
//! Here the crate encodes each partition without its records, and this module writes the
//! framing around them (the same layout the crate writes, checked byte for byte in the
//! tests) so that the records go out as file regions.

use anyhow::{bail, ensure, Result};
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use sluice_storage::FileRegion;

use crate::api::reply::PartitionRecords;
use crate::response::{Piece, Response};

/// First version with compact (varint-prefixed) fields and tagged fields.
const FLEXIBLE: i16 = 12;

/// Encodes `response` as a whole frame. `records` holds, in the order of the response's
/// partitions, the records to send for those that have a region; such a partition has no
/// records of its own.
pub(crate) fn encode(
    response: &FetchResponse,
    records: &[PartitionRecords],
    version: i16,
    correlation_id: i32,
) -> Result<Response> {
    let flexible = version >= FLEXIBLE;
    ensure!(
        response.unknown_tagged_fields.is_empty()
            && (version < 16 || response.node_endpoints.is_empty()),
        "top-level tagged fields are not written with file regions"
    );
    let mut w = Writer {
        pieces: Vec::new(),
        buf: BytesMut::with_capacity(512),
    };
    w.buf.put_i32(0); // the frame size, set below
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header.encode(&mut w.buf, ApiKey::Fetch.response_header_version(version))?;

    w.buf.put_i32(response.throttle_time_ms);
    if version >= 7 {
        w.buf.put_i16(response.error_code);
        w.buf.put_i32(response.session_id);
    } else if response.session_id != 0 {
        bail!("a fetch session id is not available at version {version}");
    }
    let mut regions = records.iter().peekable();
    put_array_len(&mut w.buf, response.responses.len(), flexible)?;
    for (ti, topic) in response.responses.iter().enumerate() {
        if version < 13 {
            put_string(&mut w.buf, &topic.topic, flexible)?;
        } else {
            w.buf.put_slice(topic.topic_id.as_bytes());
        }
        put_array_len(&mut w.buf, topic.partitions.len(), flexible)?;
        for (pi, partition) in topic.partitions.iter().enumerate() {
            match regions.next_if(|r| (r.topic, r.partition) == (ti, pi)) {
                Some(r) => w.put_partition(partition, r.region.clone(), version)?,
                None => partition.encode(&mut w.buf, version)?,
            }
        }
        if flexible {
            ensure!(
                topic.unknown_tagged_fields.is_empty(),
                "topic tagged fields are not written with file regions"
            );
            put_uvarint(&mut w.buf, 0);
        }
    }
    ensure!(
        regions.next().is_none(),
        "file regions for partitions the response does not have, or out of order"
    );
    if flexible {
        put_uvarint(&mut w.buf, 0);
    }
    w.finish()
}

struct Writer {
    pieces: Vec<Piece>,
    buf: BytesMut,
}

impl Writer {
    /// A partition whose records are `region`: the crate encodes it with null records,
    /// which are its last field before the tagged ones, and the region goes in their place.
    fn put_partition(
        &mut self,
        partition: &PartitionData,
        region: FileRegion,
        version: i16,
    ) -> Result<()> {
        ensure!(
            partition.records.is_none(),
            "a partition has both records and a file region"
        );
        let flexible = version >= FLEXIBLE;
        // Null records, then (flexible versions) an empty tagged-field section: only
        // default tagged fields keep that section one byte long.
        let tail: &[u8] = if flexible {
            ensure!(
                partition.unknown_tagged_fields.is_empty()
                    && partition.diverging_epoch == Default::default()
                    && partition.current_leader == Default::default()
                    && partition.snapshot_id == Default::default(),
                "partition tagged fields are not written with file regions"
            );
            &[0, 0]
        } else {
            &[0xff, 0xff, 0xff, 0xff]
        };
        let start = self.buf.len();
        partition.encode(&mut self.buf, version)?;
        ensure!(
            self.buf.len() >= start + tail.len() && self.buf.ends_with(tail),
            "unexpected layout of an encoded fetch partition"
        );
        self.buf.truncate(self.buf.len() - tail.len());
        let len = region.len();
        if flexible {
            put_uvarint(&mut self.buf, u32::try_from(len + 1)?);
        } else {
            self.buf.put_i32(i32::try_from(len)?);
        }
        if len > 0 {
            self.pieces.push(Piece::Bytes(self.buf.split().freeze()));
            self.pieces.push(Piece::File(region));
        }
        if flexible {
            put_uvarint(&mut self.buf, 0);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Response> {
        if !self.buf.is_empty() {
            self.pieces.push(Piece::Bytes(self.buf.split().freeze()));
        }
        let mut response = Response {
            pieces: self.pieces,
        };
        let size = i32::try_from(response.len() - 4)?;
        // The first piece starts with the size placeholder.
        if let Some(Piece::Bytes(first)) = response.pieces.first_mut() {
            let mut head = BytesMut::from(&first[..]);
            head[..4].copy_from_slice(&size.to_be_bytes());
            *first = head.freeze();
        }
        Ok(response)
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_array_len(buf: &mut BytesMut, len: usize, flexible: bool) -> Result<()> {
    if flexible {
        put_uvarint(buf, u32::try_from(len + 1)?);
    } else {
        buf.put_i32(i32::try_from(len)?);
    }
    Ok(())
}

fn put_string(buf: &mut BytesMut, s: &str, flexible: bool) -> Result<()> {
    if flexible {
        put_uvarint(buf, u32::try_from(s.len() + 1)?);
    } else {
        buf.put_i16(i16::try_from(s.len())?);
    }
    buf.put_slice(s.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The frame equals, byte for byte, what kafka-protocol encodes for the same response
    //! with the records in memory, at every Fetch version Sluice answers.

    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse};
    use kafka_protocol::messages::{ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use std::collections::BTreeMap;

    /// A partition with `len` bytes of records in a real segment file, and those bytes.
    fn regions(dir: &std::path::Path) -> (sluice_storage::Storage, Vec<FileRegion>) {
        let config = sluice_config::BrokerConfig::from_properties(vec![(
            "log.dirs",
            dir.to_string_lossy().as_ref(),
        )])
        .unwrap();
        let storage = sluice_storage::Storage::open(&config).unwrap();
        let t = storage.create_topic("t", 1, BTreeMap::new()).unwrap();
        let p = &t.partitions[0];
        for i in 0..3 {
            let batch = batch(i);
            let header = sluice_protocol::batch::validate(&batch).unwrap();
            p.append(header, &batch, 1).unwrap();
        }
        let mut out = Vec::new();
        for (offset, max) in [(0, 1), (1, 1 << 20), (2, 1)] {
            let data = p
                .read_region(offset, max, sluice_storage::Isolation::ReadUncommitted)
                .unwrap();
            out.push(data.records.unwrap());
        }
        (storage, out)
    }

    /// One record whose value is `300 * (i + 1)` bytes.
    fn batch(i: usize) -> Bytes {
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let record = Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![b'v'; 300 * (i + 1)])),
            headers: Default::default(),
            delete_horizon: false,
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &[record], &options).unwrap();
        buf.freeze()
    }

    fn partition(index: i32, version: i16) -> PartitionData {
        let mut pd = PartitionData::default();
        pd.partition_index = index;
        pd.high_watermark = 3;
        pd.last_stable_offset = 3;
        if version >= 5 {
            pd.log_start_offset = 0;
        }
        pd
    }

    #[test]
    fn frames_match_the_crate_encoding_at_every_version() {
        let dir = tempfile::tempdir().unwrap();
        let (_storage, files) = regions(dir.path());
        for version in 4..=17 {
            let mut with_regions = FetchResponse::default();
            with_regions.throttle_time_ms = 7;
            if version >= 7 {
                with_regions.session_id = 99;
            }
            let mut regions = Vec::new();
            for (t, name) in ["alpha", "b"].iter().enumerate() {
                let mut topic = FetchableTopicResponse::default();
                if version < 13 {
                    topic.topic = TopicName(StrBytes::from_static_str(name));
                } else {
                    topic.topic_id = uuid::Uuid::from_u128(0x1234_5678 + t as u128);
                }
                for i in 0..3 {
                    let mut pd = partition(i, version);
                    match (t, i) {
                        // An error partition: null records.
                        (1, 0) => pd.error_code = 3,
                        // Empty records in memory.
                        (0, 2) => pd.records = Some(Bytes::new()),
                        _ => {}
                    }
                    if i == 1 {
                        pd.aborted_transactions = Some(vec![AbortedTransaction::default()
                            .with_producer_id(ProducerId(5))
                            .with_first_offset(1)]);
                    }
                    if pd.error_code == 0 && pd.records.is_none() {
                        regions.push(PartitionRecords {
                            topic: t,
                            partition: i as usize,
                            region: files[(t + i as usize) % files.len()].clone(),
                        });
                    }
                    topic.partitions.push(pd);
                }
                with_regions.responses.push(topic);
            }
            let frame = encode(&with_regions, &regions, version, 42)
                .unwrap()
                .to_bytes()
                .unwrap();

            // The same response with the records read into memory, encoded by the crate.
            let mut in_memory = with_regions.clone();
            for r in &regions {
                in_memory.responses[r.topic].partitions[r.partition].records =
                    Some(r.region.read().unwrap());
            }
            let mut expected = BytesMut::new();
            expected.put_i32(0);
            let mut header = ResponseHeader::default();
            header.correlation_id = 42;
            header
                .encode(
                    &mut expected,
                    ApiKey::Fetch.response_header_version(version),
                )
                .unwrap();
            in_memory.encode(&mut expected, version).unwrap();
            let size = (expected.len() - 4) as i32;
            expected[..4].copy_from_slice(&size.to_be_bytes());
            assert_eq!(frame, expected.freeze(), "Fetch v{version}");
        }
    }

    #[test]
    fn a_partition_with_both_records_and_a_region_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_storage, files) = regions(dir.path());
        let mut r = FetchResponse::default();
        let mut topic = FetchableTopicResponse::default();
        let mut pd = partition(0, 12);
        pd.records = Some(Bytes::from_static(b"x"));
        topic.partitions.push(pd);
        r.responses.push(topic);
        let region = PartitionRecords {
            topic: 0,
            partition: 0,
            region: files[0].clone(),
        };
        assert!(encode(&r, &[region], 12, 1).is_err());
    }
}
