//! Reads from the remote tier for fetches and offset lookups: whole batches located
//! through the segment's uploaded offset index, fetched in fixed-size chunks kept in a
//! bounded cache, so consumers replaying old data read each chunk from the object store
//! once.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;
use moka::future::Cache;
use sluice_storage::{
    decode_batch_index, decode_txn_index, AbortedTxn, BatchEntry, RemoteRead, RemoteSegment,
    TimestampOffset,
};
use uuid::Uuid;

use crate::layout::ObjectKind;
use crate::{RemoteStore, TierError, TierMetrics};

/// Bytes of one cached piece of a remote segment.
const CHUNK_BYTES: u64 = 4 * 1024 * 1024;
/// Segment indexes kept (each a few KiB per thousand batches).
const INDEXES_CACHED: u64 = 1024;

/// Whole batches read from a remote segment for one partition of a fetch.
#[derive(Debug, Clone, Default)]
pub struct RemoteBatches {
    /// The batches, byte for byte as the producer's were stored.
    pub records: Bytes,
    /// For read_committed: the aborted transactions with records among them.
    pub aborted: Vec<AbortedTxn>,
}

/// Reads remote segments through the chunk and index caches.
#[derive(Clone)]
pub struct RemoteReader {
    store: RemoteStore,
    chunks: Cache<(Uuid, u64), Bytes>,
    indexes: Cache<Uuid, Arc<Vec<BatchEntry>>>,
    txn_indexes: Cache<Uuid, Arc<Vec<AbortedTxn>>>,
    metrics: TierMetrics,
}

impl std::fmt::Debug for RemoteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteReader")
            .field("store", &self.store.describe())
            .finish()
    }
}

impl RemoteReader {
    /// A reader of `store` keeping at most `cache_bytes` of segment chunks in memory.
    pub fn new(store: RemoteStore, cache_bytes: u64, metrics: TierMetrics) -> Self {
        RemoteReader {
            store,
            chunks: Cache::builder()
                .max_capacity(cache_bytes)
                .weigher(|_, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
                .build(),
            indexes: Cache::new(INDEXES_CACHED),
            txn_indexes: Cache::new(INDEXES_CACHED),
            metrics,
        }
    }

    /// Whole batches from `read.offset` in `read.segment`, below `read.upper`, within
    /// `max_bytes`; with `at_least_one`, the first batch even if it is larger (KIP-74).
    pub async fn read(
        &self,
        read: &RemoteRead,
        max_bytes: usize,
        at_least_one: bool,
        read_committed: bool,
    ) -> Result<RemoteBatches, TierError> {
        let started = Instant::now();
        let result = self
            .read_batches(read, max_bytes, at_least_one, read_committed)
            .await;
        self.metrics
            .read_latency
            .observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => self.metrics.available.set(1),
            Err(e) => {
                self.metrics.add_error("fetch");
                if matches!(e, TierError::Store(_)) {
                    self.metrics.available.set(0);
                }
            }
        }
        result
    }

    async fn read_batches(
        &self,
        read: &RemoteRead,
        max_bytes: usize,
        at_least_one: bool,
        read_committed: bool,
    ) -> Result<RemoteBatches, TierError> {
        let (seg, offset) = (&read.segment, read.offset);
        let index = self.index(seg).await?;
        let first = index.partition_point(|e| e.last_offset < offset);
        let Some(head) = index.get(first) else {
            return Ok(RemoteBatches::default());
        };
        if head.base_offset >= read.upper || (!at_least_one && head.size as usize > max_bytes) {
            return Ok(RemoteBatches::default());
        }
        let mut end = head.position + u64::from(head.size);
        let mut next_offset = head.last_offset + 1;
        for e in &index[first + 1..] {
            let grown = e.position + u64::from(e.size);
            if e.base_offset >= read.upper || (grown - head.position) as usize > max_bytes {
                break;
            }
            end = grown;
            next_offset = e.last_offset + 1;
        }
        let records = self.bytes(seg, head.position, end).await?;
        let aborted = if read_committed {
            self.txn_index(seg)
                .await?
                .iter()
                .filter(|t| t.last_offset >= offset && t.first_offset < next_offset)
                .copied()
                .collect()
        } else {
            Vec::new()
        };
        Ok(RemoteBatches { records, aborted })
    }

    /// The earliest record at or after `target` in `segments` (in offset order), with its
    /// timestamp, as ListOffsets by timestamp answers.
    pub async fn offset_for_timestamp(
        &self,
        segments: &[RemoteSegment],
        target: i64,
        log_start_offset: i64,
    ) -> Result<Option<TimestampOffset>, TierError> {
        for seg in segments.iter().filter(|s| s.max_timestamp >= target) {
            let found = self
                .find_record(
                    seg,
                    log_start_offset,
                    |ts| ts >= target,
                    |e| e.max_timestamp >= target,
                )
                .await;
            match found {
                Ok(Some(hit)) => return Ok(Some(hit)),
                Ok(None) => continue,
                Err(e) => {
                    self.metrics.add_error("fetch");
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// The first record of the largest timestamp in `segment` (ListOffsets max-timestamp).
    pub async fn max_timestamp_offset(
        &self,
        segment: &RemoteSegment,
        log_start_offset: i64,
    ) -> Result<Option<TimestampOffset>, TierError> {
        let max = segment.max_timestamp;
        self.find_record(
            segment,
            log_start_offset,
            |ts| ts == max,
            |e| e.max_timestamp == max,
        )
        .await
    }

    /// The first record at or above `log_start_offset` matching `record`, looked for in
    /// the batches matching `batch`.
    async fn find_record(
        &self,
        seg: &RemoteSegment,
        log_start_offset: i64,
        record: impl Fn(i64) -> bool,
        batch: impl Fn(&BatchEntry) -> bool,
    ) -> Result<Option<TimestampOffset>, TierError> {
        let index = self.index(seg).await?;
        for e in index
            .iter()
            .filter(|e| e.last_offset >= log_start_offset && batch(e))
        {
            let mut bytes = self
                .bytes(seg, e.position, e.position + u64::from(e.size))
                .await?;
            let set = RecordBatchDecoder::decode(&mut bytes).map_err(|err| TierError::Corrupt {
                path: self.store.path(seg, ObjectKind::Log).to_string(),
                reason: format!(
                    "the batch at offset {} does not decode: {err}",
                    e.base_offset
                ),
            })?;
            let hit = set
                .records
                .iter()
                .filter(|r| r.offset >= log_start_offset)
                .find(|r| record(r.timestamp));
            if let Some(r) = hit {
                return Ok(Some(TimestampOffset {
                    offset: r.offset,
                    timestamp: r.timestamp,
                }));
            }
        }
        Ok(None)
    }

    /// Bytes `[start, end)` of the segment, assembled from cached chunks.
    async fn bytes(&self, seg: &RemoteSegment, start: u64, end: u64) -> Result<Bytes, TierError> {
        if end > seg.size_bytes || start > end {
            return Err(TierError::Corrupt {
                path: self.store.path(seg, ObjectKind::Log).to_string(),
                reason: format!(
                    "the index names bytes {start}..{end} of a {}-byte segment",
                    seg.size_bytes
                ),
            });
        }
        let first = start / CHUNK_BYTES;
        let last = end.saturating_sub(1) / CHUNK_BYTES;
        let chunks =
            futures::future::try_join_all((first..=last).map(|c| self.chunk(seg, c))).await?;
        if chunks.len() == 1 {
            let base = first * CHUNK_BYTES;
            return Ok(chunks[0].slice((start - base) as usize..(end - base) as usize));
        }
        let mut out = BytesMut::with_capacity((end - start) as usize);
        for (i, chunk) in chunks.iter().enumerate() {
            let base = (first + i as u64) * CHUNK_BYTES;
            let from = start.saturating_sub(base) as usize;
            let to = ((end - base) as usize).min(chunk.len());
            out.extend_from_slice(&chunk[from..to]);
        }
        Ok(out.freeze())
    }

    /// Chunk `n` of the segment's log object, from the cache or the store.
    async fn chunk(&self, seg: &RemoteSegment, n: u64) -> Result<Bytes, TierError> {
        let key = (seg.segment_id, n);
        if let Some(hit) = self.chunks.get(&key).await {
            self.metrics.cache.with_label_values(&["hit"]).inc();
            return Ok(hit);
        }
        self.metrics.cache.with_label_values(&["miss"]).inc();
        let range = n * CHUNK_BYTES..((n + 1) * CHUNK_BYTES).min(seg.size_bytes);
        let expected = range.end - range.start;
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let seg = seg.clone();
        // Concurrent readers of one chunk share one request.
        self.chunks
            .try_get_with(key, async move {
                let bytes = store.get_range(&seg, ObjectKind::Log, range).await?;
                if bytes.len() as u64 != expected {
                    return Err(TierError::Corrupt {
                        path: store.path(&seg, ObjectKind::Log).to_string(),
                        reason: format!("asked for {expected} bytes, got {}", bytes.len()),
                    });
                }
                metrics.add_bytes("fetched", bytes.len() as u64);
                Ok(bytes)
            })
            .await
            .map_err(unshare)
    }

    /// The segment's offset index.
    async fn index(&self, seg: &RemoteSegment) -> Result<Arc<Vec<BatchEntry>>, TierError> {
        self.load(
            &self.indexes,
            seg,
            ObjectKind::OffsetIndex,
            decode_batch_index,
        )
        .await
    }

    /// The segment's aborted transactions.
    async fn txn_index(&self, seg: &RemoteSegment) -> Result<Arc<Vec<AbortedTxn>>, TierError> {
        self.load(
            &self.txn_indexes,
            seg,
            ObjectKind::TxnIndex,
            decode_txn_index,
        )
        .await
    }

    /// One of the segment's index objects, fetched and decoded once into `cache`.
    async fn load<T: Send + Sync + 'static>(
        &self,
        cache: &Cache<Uuid, Arc<T>>,
        seg: &RemoteSegment,
        kind: ObjectKind,
        decode: fn(&[u8]) -> Result<T, sluice_storage::StorageError>,
    ) -> Result<Arc<T>, TierError> {
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let s = seg.clone();
        cache
            .try_get_with(seg.segment_id, async move {
                let bytes = store.get(&s, kind).await?;
                metrics.add_bytes("fetched", bytes.len() as u64);
                decode(&bytes)
                    .map(Arc::new)
                    .map_err(|e| TierError::Corrupt {
                        path: store.path(&s, kind).to_string(),
                        reason: e.to_string(),
                    })
            })
            .await
            .map_err(unshare)
    }

    /// The producer snapshot uploaded with `seg` (a follower starting its local log past
    /// the segment restores its producers from it).
    pub async fn producer_snapshot(&self, seg: &RemoteSegment) -> Result<Bytes, TierError> {
        let bytes = self.store.get(seg, ObjectKind::ProducerSnapshot).await?;
        self.metrics.add_bytes("fetched", bytes.len() as u64);
        Ok(bytes)
    }
}

/// The error of a load shared by concurrent callers, as the caller's own.
fn unshare(e: Arc<TierError>) -> TierError {
    match Arc::try_unwrap(e) {
        Ok(e) => e,
        Err(shared) => match &*shared {
            TierError::Misconfigured(m) => TierError::Misconfigured(m.clone()),
            TierError::Corrupt { path, reason } => TierError::Corrupt {
                path: path.clone(),
                reason: reason.clone(),
            },
            TierError::Timeout(d) => TierError::Timeout(*d),
            other => TierError::Store(object_store::Error::Generic {
                store: "remote tier",
                source: other.to_string().into(),
            }),
        },
    }
}
