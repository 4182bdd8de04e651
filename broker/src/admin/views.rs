//! What the admin API shows of the broker's objects: plain snapshots,
//! taken when asked for, that the management layer turns into RabbitMQ's
//! JSON.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

/// A queue: its declaration, depth and counters.
#[derive(Debug, Clone)]
pub struct QueueView {
    pub vhost: String,
    pub name: String,
    /// "classic" or "quorum".
    pub queue_type: &'static str,
    pub durable: bool,
    pub auto_delete: bool,
    pub exclusive: bool,
    pub arguments: Map<String, Value>,
    /// The policy and operator policy that apply, and what they set.
    pub policy: Option<String>,
    pub operator_policy: Option<String>,
    pub effective_policy_definition: Map<String, Value>,
    pub consumers: u64,
    pub messages_ready: u64,
    pub messages_ready_bytes: u64,
    /// Of the ready ones, those on disk only (paged out).
    pub messages_paged_out: u64,
    pub messages_paged_out_bytes: u64,
    pub messages_unacknowledged: u64,
    pub messages_unacknowledged_bytes: u64,
    /// Messages published into it, handed out (delivered or got),
    /// redelivered and acknowledged since it was created.
    pub published: u64,
    /// Handed out in every way (RabbitMQ's `deliver_get`); of those,
    /// delivered to consumers without acks, and taken by basic.get with
    /// and without them.
    pub delivered: u64,
    pub delivered_no_ack: u64,
    pub got: u64,
    pub got_no_ack: u64,
    /// basic.gets that found it empty.
    pub get_empty: u64,
    pub redelivered: u64,
    pub acked: u64,
    /// Consumer lag: how long its oldest ready message has waited (at
    /// least; since the restart for what was recovered from disk).
    pub oldest_ready_age: Option<Duration>,
    /// How long its oldest unacknowledged delivery has waited for its ack
    /// (as its channels last reported, at most a quarter second ago).
    pub oldest_unacked_age: Option<Duration>,
    /// The `timestamp` property of its head message (RabbitMQ's
    /// `head_message_timestamp`).
    pub head_message_timestamp: Option<u64>,
    /// A replicated queue's leader and members.
    pub replicas: Option<crate::replication::Replicas>,
    /// The node a classic queue lives on, when the whole cluster knows it.
    pub home: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExchangeView {
    pub vhost: String,
    pub name: String,
    pub kind: &'static str,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: Map<String, Value>,
    pub policy: Option<String>,
}

/// What a binding leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    Queue,
    Exchange,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Queue => "queue",
            DestinationKind::Exchange => "exchange",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BindingView {
    pub vhost: String,
    pub source: String,
    pub destination: String,
    pub destination_kind: DestinationKind,
    pub routing_key: String,
    pub arguments: Map<String, Value>,
    /// Names the binding among those between the same ends, as RabbitMQ's
    /// `properties_key` does (routing key, and a digest of the arguments).
    pub properties_key: String,
}

#[derive(Debug, Clone)]
pub struct UserView {
    pub name: String,
    pub password_hash: String,
    pub hashing_algorithm: &'static str,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct VhostView {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub default_queue_type: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PermissionView {
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

#[derive(Debug, Clone)]
pub struct TopicPermissionView {
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

#[derive(Debug, Clone)]
pub struct ConnectionView {
    /// `peer -> local`, as RabbitMQ names connections.
    pub name: String,
    pub user: String,
    pub vhost: String,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub auth_mechanism: String,
    pub tls: bool,
    pub connected_at: SystemTime,
    pub channels: u32,
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
    pub client_properties: Map<String, Value>,
    /// Its socket's bytes and reads/writes so far.
    pub traffic: super::TrafficTotals,
}

/// A message taken by [`crate::Admin::get_messages`].
#[derive(Debug, Clone)]
pub struct MessageView {
    pub exchange: String,
    pub routing_key: String,
    pub redelivered: bool,
    /// Ready messages left after this one.
    pub message_count: u64,
    pub properties: Map<String, Value>,
    pub payload: Vec<u8>,
    pub payload_bytes: u64,
}

/// The node's resource figures and alarms.
#[derive(Debug, Clone, Copy)]
pub struct NodeView {
    pub memory_used: u64,
    pub memory_limit: u64,
    pub memory_alarm: bool,
    pub disk_free: u64,
    pub disk_free_limit: u64,
    pub disk_alarm: bool,
    pub started_at: SystemTime,
}

/// One open channel of a connection.
#[derive(Debug, Clone)]
pub struct ChannelView {
    /// `connection name (number)`, as RabbitMQ names channels.
    pub name: String,
    pub number: u16,
    pub connection: String,
    pub peer: SocketAddr,
    pub user: String,
    pub vhost: String,
    pub prefetch_count: u32,
    pub global_prefetch_count: u32,
    pub confirm: bool,
    pub transactional: bool,
    pub consumer_count: u32,
    pub messages_unacknowledged: u32,
}

/// One consumer on a queue.
#[derive(Debug, Clone)]
pub struct ConsumerView {
    pub queue: String,
    pub vhost: String,
    pub consumer_tag: String,
    pub ack_required: bool,
    pub exclusive: bool,
    pub prefetch_count: u32,
    pub priority: i64,
    pub arguments: Map<String, Value>,
    /// The channel it is on (None if its connection just closed).
    pub channel: Option<ChannelView>,
}

/// A policy or an operator policy.
#[derive(Debug, Clone)]
pub struct PolicyView {
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    /// RabbitMQ's `apply-to`: queues, classic_queues, quorum_queues,
    /// streams, exchanges or all.
    pub apply_to: &'static str,
    pub priority: i64,
    pub definition: Map<String, Value>,
}
