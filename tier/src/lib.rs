//! Sluice's remote tier (KIP-405): sealed segments copied to object storage (S3 or an
//! S3-compatible server, a local directory, or memory in tests), deleted from it by total
//! retention, and read back through a bounded cache when a fetch or an offset lookup
//! reaches below the local log start.
//!
//! The partition's side (which segment to copy, what is remote, the log start offset)
//! lives with the log in `sluice-storage`; this crate moves the bytes.

mod error;
mod layout;
mod manager;
mod metrics;
mod reader;
mod store;

pub use error::TierError;
pub use manager::{RemoteLogManager, TieredLogs};
pub use metrics::{TierMetrics, TierSnapshot};
pub use reader::{RemoteBatches, RemoteReader};
pub use store::RemoteStore;
