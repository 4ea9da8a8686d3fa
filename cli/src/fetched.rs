//! The records a consumer shows from one partition's fetched bytes: whole batches are
//! split off (a trailing partial batch waits for the next fetch), control batches and,
//! under read_committed, batches of aborted transactions are skipped as the Java
//! consumer skips them.

use std::collections::HashSet;

use bytes::Bytes;
use sluice_protocol::batch::{self, BatchError, ControlType};

/// A record to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Visible {
    pub(crate) offset: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
}

/// What one partition's fetched bytes hold from `position` on.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) records: Vec<Visible>,
    /// Where the next fetch starts: after the last whole batch.
    pub(crate) next_offset: i64,
}

/// The visible records of `data` at or after `position`. `aborted` is the Fetch
/// response's aborted transactions (producer id, first offset); it is only sent, and only
/// used, for read_committed.
pub(crate) fn visible_records(
    data: &Bytes,
    position: i64,
    aborted: &[(i64, i64)],
) -> Result<Fetched, BatchError> {
    // Transactions in order of first offset, taken off the front as batches reach them.
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|(_, first)| std::cmp::Reverse(*first));
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut records = Vec::new();
    let mut next_offset = position;
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let header = match batch::read_header(rest) {
            Ok(h) => h,
            // The broker cuts the answer at max bytes, mid-batch.
            Err(BatchError::Truncated) => break,
            Err(e) => return Err(e),
        };
        if rest.len() < header.size() {
            break;
        }
        let bytes = data.slice(pos..pos + header.size());
        pos += header.size();
        let last = header.last_offset();
        if last < next_offset {
            continue;
        }
        if header.has_producer_id() {
            while let Some(&(producer, first)) = pending.last() {
                if first > last {
                    break;
                }
                aborting.insert(producer);
                pending.pop();
            }
            if header.is_control() {
                if batch::control_type(&bytes) == Some(ControlType::Abort) {
                    aborting.remove(&header.producer_id);
                }
            } else if header.is_transactional() && aborting.contains(&header.producer_id) {
                next_offset = last + 1;
                continue;
            }
        }
        if header.is_control() {
            next_offset = last + 1;
            continue;
        }
        let (_, decoded) = sluice_protocol::records::decode_records(&bytes)?;
        for r in decoded {
            let offset = header.base_offset + i64::from(r.offset_delta);
            if offset >= position {
                records.push(Visible {
                    offset,
                    key: r.key,
                    value: r.value,
                });
            }
        }
        next_offset = last + 1;
    }
    Ok(Fetched {
        records,
        next_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::batch::{control_batch, set_base_offset};
    use sluice_protocol::records::{encode_batch, Record};

    fn data_batch(base: i64, values: &[&str], producer_id: i64, transactional: bool) -> Vec<u8> {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                attributes: 0,
                timestamp: 0,
                offset_delta: i as i32,
                key: None,
                value: Some(Bytes::copy_from_slice(v.as_bytes())),
                headers: Bytes::from_static(&[0]),
            })
            .collect();
        let header = batch::BatchHeader {
            base_offset: base,
            batch_length: 0,
            partition_leader_epoch: 0,
            crc: 0,
            attributes: if transactional { 0x10 } else { 0 },
            last_offset_delta: values.len() as i32 - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: 0,
            base_sequence: 0,
            records_count: values.len() as i32,
        };
        encode_batch(&header, &records).expect("encodes")
    }

    fn marker(offset: i64, producer_id: i64, kind: ControlType) -> Vec<u8> {
        let mut b = control_batch(producer_id, 0, kind, 0, 0).to_vec();
        set_base_offset(&mut b, offset);
        b
    }

    fn values(f: &Fetched) -> Vec<(i64, String)> {
        f.records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn aborted_transactions_and_markers_are_skipped() {
        // offsets 0-1 aborted (producer 7), 2 abort marker, 3-4 committed (7), 5 commit
        // marker, 6 plain.
        let mut data = data_batch(0, &["a0", "a1"], 7, true);
        data.extend(marker(2, 7, ControlType::Abort));
        data.extend(data_batch(3, &["c3", "c4"], 7, true));
        data.extend(marker(5, 7, ControlType::Commit));
        data.extend(data_batch(6, &["p6"], -1, false));
        let data = Bytes::from(data);
        let committed = visible_records(&data, 0, &[(7, 0)]).expect("decodes");
        assert_eq!(
            values(&committed),
            vec![(3, "c3".into()), (4, "c4".into()), (6, "p6".into())]
        );
        assert_eq!(committed.next_offset, 7);
        let uncommitted = visible_records(&data, 0, &[]).expect("decodes");
        assert_eq!(values(&uncommitted).len(), 5, "markers are never shown");
        let from_4 = visible_records(&data, 4, &[]).expect("decodes");
        assert_eq!(values(&from_4), vec![(4, "c4".into()), (6, "p6".into())]);
    }

    #[test]
    fn a_partial_trailing_batch_waits() {
        let mut data = data_batch(0, &["x"], -1, false);
        let second = data_batch(1, &["y"], -1, false);
        data.extend_from_slice(&second[..second.len() - 3]);
        let f = visible_records(&Bytes::from(data), 0, &[]).expect("decodes");
        assert_eq!((values(&f), f.next_offset), (vec![(0, "x".into())], 1));
    }
}
