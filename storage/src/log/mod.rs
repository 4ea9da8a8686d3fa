//! The partition log: segments of raw batches, indexed in RocksDB.

mod partition;
mod recovery;
mod retention;
pub(crate) mod segment;
mod timestamp;

pub use partition::{AppendError, AppendInfo, FetchData, Partition, ReadError, LEADER_EPOCH};
pub use timestamp::TimestampOffset;
