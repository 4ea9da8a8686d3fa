//! The partition log: segments of raw batches, indexed in RocksDB.

mod aborted;
mod cleaner;
mod delete_records;
pub(crate) mod open_files;
mod partition;
mod producer_expiry;
mod recovery;
mod region;
mod retention;
pub(crate) mod segment;
mod timestamp;
mod validate;

pub use cleaner::{CleanOptions, CleanStats, Cleanability, CleanerCrashPoint};
pub use partition::{
    AbortedTxn, AppendError, AppendInfo, FetchData, Isolation, Partition, ProducerInfo, ReadError,
    COORDINATOR_EPOCH, LEADER_EPOCH,
};
pub use region::FileRegion;
pub use timestamp::TimestampOffset;
pub use validate::RecordError;
