//! The partition log: segments of raw batches, indexed in RocksDB.

mod aborted;
mod append;
mod cleaner;
mod compact_batch;
mod delete_records;
mod epoch_cache;
mod flush;
mod index;
mod local_log;
mod log_state;
mod meta;
pub(crate) mod open_files;
mod partition;
mod producer_expiry;
mod read;
mod recovery;
mod region;
mod replica;
mod replicated_append;
mod retention;
pub(crate) mod segment;
mod segment_files;
mod tiered;
mod timestamp;
mod truncate;
mod types;
mod validate;

pub use cleaner::{CleanOptions, CleanStats, Cleanability, CleanerCrashPoint};
pub use partition::Partition;
pub use region::FileRegion;
pub use tiered::RemoteRead;
pub use timestamp::TimestampOffset;
pub use truncate::TruncationCrashPoint;
pub use types::{
    AbortedTxn, AppendError, AppendInfo, FetchData, Isolation, Marker, ProducerInfo, ReadError,
    RecordError, ReplicatedAppend, COORDINATOR_EPOCH, LEADER_EPOCH,
};
