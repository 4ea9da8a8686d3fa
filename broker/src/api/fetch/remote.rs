//! The remote tier's part of a consumer's fetch (tiered storage): partitions whose fetch
//! offset is below the local log start are read from the object store, concurrently and
//! for at most `remote.fetch.max.wait.ms`, so a slow store never holds up the local data
//! of the same answer. A read still running then goes on in the background and fills the
//! cache for the consumer's next fetch.

use kafka_protocol::ResponseError;

use super::read::ReadResult;
use crate::broker::Broker;
use crate::error::code;

/// Fills in the records of every result that needs the remote tier.
pub(super) async fn read_remote(
    broker: &Broker,
    mut results: Vec<ReadResult>,
    read_committed: bool,
) -> Vec<ReadResult> {
    if results.iter().all(|r| r.remote.is_none()) {
        return results;
    }
    let Some(tier) = &broker.tier else {
        // Remote segments with the remote tier turned off: nothing can read them.
        for r in results.iter_mut().filter(|r| r.remote.is_some()) {
            r.remote = None;
            r.error_code = code(ResponseError::KafkaStorageError);
        }
        return results;
    };
    let mut reads = Vec::new();
    for (i, r) in results.iter_mut().enumerate() {
        let Some((read, budget, at_least_one)) = r.remote.take() else {
            continue;
        };
        let reader = tier.reader.clone();
        let handle = tokio::spawn(async move {
            reader
                .read(&read, budget, at_least_one, read_committed)
                .await
        });
        reads.push((i, handle));
    }
    let deadline = tokio::time::Instant::now() + tier.fetch_max_wait;
    for (i, handle) in reads {
        let r = &mut results[i];
        match tokio::time::timeout_at(deadline, handle).await {
            Ok(Ok(Ok(batches))) => {
                r.remote_records = Some(batches.records);
                r.aborted = batches.aborted;
            }
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, "read from the remote tier failed");
                r.error_code = code(ResponseError::KafkaStorageError);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "remote read task failed");
                r.error_code = code(ResponseError::KafkaStorageError);
            }
            // Answered without it; the read finishes in the background.
            Err(_) => tracing::debug!("remote read not done within remote.fetch.max.wait.ms"),
        }
    }
    results
}
