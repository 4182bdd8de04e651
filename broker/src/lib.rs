//! Warren's broker as a library: accepts AMQP 0-9-1 connections and runs
//! vhosts, exchanges, queues and consumers with RabbitMQ's semantics.
//!
//! Start one with [`start`] and a [`BrokerConfig`]; the returned
//! [`RunningBroker`] gives its address and shuts it down. Everything else
//! is private to the crate; ARCHITECTURE.md at the repository's root says
//! how the modules fit together and which may import which.

#![warn(unreachable_pub)]

mod access;
mod admin;
mod alarm;
mod blocking;
mod broker;
mod channel;
mod client_capabilities;
mod clock;
mod config;
mod connection;
mod connection_slots;
mod connections;
mod durability;
mod erlang;
mod error;
mod exchange;
mod ids;
mod json;
mod memory;
mod message;
mod message_stats;
mod names;
mod outbound;
mod policy;
mod queue;
mod recovery;
mod replicated_topology;
mod replication;
mod reply_to;
mod server;
pub(crate) mod shovel;
mod tls;
mod vhost;

#[doc(hidden)]
pub mod bench;

#[cfg(test)]
mod tests;

pub use admin::*;
pub use config::{
    BrokerConfig, ClusterPeer, ClusterSecret, ClusterSettings, ClusterTls, ConfigError, ServerIdentity, Settings,
};
pub use memory::MemoryWatermark;
pub use message_stats::{Churn, MessageTotals};
pub use replication::{
    ClusterLink, LeaderStamp, MachineImage, MemberView, MetadataChange, Proposal, Replicas, ReplicatedGroup,
    ReplicatedMachine, ReplicationError, Replied,
};
pub use server::{start, RunningBroker};
pub use tls::{read_certificates, read_private_key, TlsSettings};
