//! Warren's broker as a library: accepts AMQP 0-9-1 connections and runs
//! vhosts, exchanges, queues and consumers with RabbitMQ's semantics.
//!
//! Start one with [`start`] and a [`BrokerConfig`]; the returned
//! [`RunningBroker`] gives its address and shuts it down.

pub mod broker;
pub mod channel;
pub mod config;
pub mod connection;
pub mod durability;
pub mod error;
pub mod exchange;
pub mod message;
mod names;
pub mod queue;
mod recovery;
pub mod server;
pub mod vhost;

pub use broker::Broker;
pub use config::BrokerConfig;
pub use error::{AmqpError, AmqpResult};
pub use server::{start, RunningBroker};
