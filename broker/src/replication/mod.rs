//! Kafka's replication protocol: what a leader tracks about its followers
//! ([`leader`]) and how a follower finds where its log diverged from the leader's
//! ([`truncation`]).

pub(crate) mod leader;
pub(crate) mod truncation;
