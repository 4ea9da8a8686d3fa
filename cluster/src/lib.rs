//! The cluster's control plane: the metadata port ([`ClusterMetadata`]) with its etcd and
//! in-memory implementations, replica assignment, leader election and the controller.
//! Nothing here knows about the partition log or sockets.

pub mod assign;
pub mod controller;
pub mod elect;
mod error;
mod etcd;
mod memory;
mod model;
mod port;
pub mod reassign;
mod term;

pub use error::MetadataError;
pub use etcd::{EtcdMetadata, EtcdSettings, EtcdTls};
pub use memory::MemoryMetadata;
pub use model::{
    new_cluster_id, BrokerRegistration, ClusterView, Endpoint, Liveness, PartitionState,
    TopicRecord, NO_LEADER, OFFLINE_LOG_DIRS,
};
pub use port::ClusterMetadata;
pub use term::{ControllerTerm, Fence};
