//! The partition log as a replica uses it: follower appends, the high watermark apart
//! from the log end offset, leader epochs, and truncation. One test binary (each costs
//! hundreds of megabytes of disk), one module per subject.

// Tests may unwrap, as clippy.toml allows inside #[test] functions; helpers too.
#![allow(clippy::unwrap_used)]

mod common;
mod follower;
mod truncation;
