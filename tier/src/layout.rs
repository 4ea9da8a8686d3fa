//! Where a remote segment's objects live: one key per file Kafka's tiered storage
//! uploads, under the topic (name and id) and partition, named by the segment's base
//! offset and its upload's unique id, so that a retried upload never overwrites an
//! earlier attempt and every object can be traced back to its metadata.

use object_store::path::Path;
use sluice_storage::RemoteSegment;

/// The files of a remote segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    /// The segment's batches, byte for byte as on disk.
    Log,
    /// Its offset index (batch positions and timestamps).
    OffsetIndex,
    /// Its aborted transactions.
    TxnIndex,
    /// The producer state when it was copied.
    ProducerSnapshot,
}

impl ObjectKind {
    /// Every kind, in upload order: the log first, so an index never names missing bytes.
    pub(crate) const ALL: [ObjectKind; 4] = [
        ObjectKind::Log,
        ObjectKind::OffsetIndex,
        ObjectKind::TxnIndex,
        ObjectKind::ProducerSnapshot,
    ];

    fn suffix(self) -> &'static str {
        match self {
            ObjectKind::Log => "log",
            ObjectKind::OffsetIndex => "index",
            ObjectKind::TxnIndex => "txnindex",
            ObjectKind::ProducerSnapshot => "snapshot",
        }
    }
}

/// The key of one object of `segment`, under `prefix` (empty for none).
pub(crate) fn object_path(prefix: &str, segment: &RemoteSegment, kind: ObjectKind) -> Path {
    let name = format!(
        "{:020}-{}.{}",
        segment.base_offset,
        segment.segment_id,
        kind.suffix()
    );
    let dir = format!("{}-{}", segment.topic, segment.topic_id);
    let partition = segment.partition.to_string();
    let base = if prefix.is_empty() {
        Path::from_iter([dir.as_str(), partition.as_str(), name.as_str()])
    } else {
        Path::from_iter([prefix, dir.as_str(), partition.as_str(), name.as_str()])
    };
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_storage::RemoteSegmentState;
    use uuid::Uuid;

    #[test]
    fn keys_name_topic_partition_offset_and_upload() {
        let id = Uuid::parse_str("6f2c1b9e-8a8e-4f47-9d43-2f7f6b1a0c11").unwrap();
        let topic_id = Uuid::parse_str("0b7f5c8e-0000-4000-8000-000000000001").unwrap();
        let s = RemoteSegment {
            segment_id: id,
            topic: "orders".into(),
            topic_id,
            partition: 2,
            base_offset: 1234,
            end_offset: 2000,
            max_timestamp: 0,
            size_bytes: 0,
            leader_epochs: vec![],
            state: RemoteSegmentState::CopyStarted,
            event_ms: 0,
        };
        assert_eq!(
            object_path("", &s, ObjectKind::Log).as_ref(),
            format!("orders-{topic_id}/2/00000000000000001234-{id}.log")
        );
        assert_eq!(
            object_path("tier", &s, ObjectKind::TxnIndex).as_ref(),
            format!("tier/orders-{topic_id}/2/00000000000000001234-{id}.txnindex")
        );
    }
}
