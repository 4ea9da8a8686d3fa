//! Kafka's LogValidator checks of single records (KIP-467): each refused record is named by
//! its index in the batch, and nothing of a batch with one is appended.

use sluice_protocol::records::Record;

use super::types::{AppendError, RecordError};

/// Kafka's `RecordBatch.NO_TIMESTAMP`: a record without a timestamp is not range-checked.
const NO_TIMESTAMP: i64 = -1;

/// The CreateTime range a batch's records must keep to: (now, before max, after max).
pub(super) type TimeRange = (i64, i64, i64);

/// Checks each record of a batch of `topic`-`index`: a key on a compacted topic, a
/// timestamp within `times`; refuses the batch with every failing record listed.
pub(super) fn check_records(
    topic: &str,
    index: i32,
    base_offset: i64,
    recs: &[Record],
    compacted: bool,
    times: Option<TimeRange>,
) -> Result<(), AppendError> {
    let mut errors = Vec::new();
    let mut invalid_timestamp = false;
    for (i, r) in recs.iter().enumerate() {
        let batch_index = i32::try_from(i).unwrap_or(i32::MAX);
        if compacted && r.key.is_none() {
            errors.push(RecordError {
                batch_index,
                message: format!(
                    "Compacted topic cannot accept message without key in topic partition \
                     {topic}-{index}"
                ),
            });
        } else if let Some((now, before, after)) = times {
            // Java's arithmetic, overflow included, so the bounds print as Kafka's do.
            let out =
                now.wrapping_sub(r.timestamp) > before || r.timestamp.wrapping_sub(now) > after;
            if r.timestamp != NO_TIMESTAMP && out {
                invalid_timestamp = true;
                let (timestamp, offset) = (r.timestamp, base_offset + i64::from(r.offset_delta));
                let (low, high) = (now.wrapping_sub(before), now.wrapping_add(after));
                errors.push(RecordError {
                    batch_index,
                    message: format!(
                        "Timestamp {timestamp} of message with offset {offset} is out of range. \
                         The timestamp should be within [{low}, {high}]"
                    ),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppendError::records(errors, invalid_timestamp))
    }
}
