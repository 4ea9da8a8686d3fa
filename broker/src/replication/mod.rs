//! Kafka's replication protocol in a cluster: the replicas of this broker and their roles
//! ([`manager`]), what a leader tracks about its followers ([`leader`]), the followers'
//! fetchers ([`fetcher`]), where a diverged follower truncates ([`truncation`]) and the
//! replication quotas ([`throttle`]).

pub(crate) mod broker_client;
pub(crate) mod broker_defaults;
pub(crate) mod epochs;
pub(crate) mod fetcher;
mod isr;
pub(crate) mod leader;
mod local_topics;
pub(crate) mod manager;
pub(crate) mod node;
pub(crate) mod producer_ids;
mod read_replica;
pub(crate) mod reassignment;
pub(crate) mod remote_metadata;
pub(crate) mod throttle;
pub(crate) mod truncation;
pub(crate) mod txn_verification;
pub(crate) mod view_catalog;

pub(crate) use manager::ReplicaManager;
pub(crate) use node::ClusterNode;
