//! Identifiers shared across the broker's layers.

use std::fmt;
use std::net::SocketAddr;

/// Identifies a connection for the life of the broker, e.g. as the owner
/// of exclusive queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnectionId(pub u64);

impl ConnectionId {
    /// No connection of this node: what a consumer on another node is
    /// known by where it stands in (connections count from 1).
    pub(crate) const ELSEWHERE: ConnectionId = ConnectionId(0);
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A connection as RabbitMQ names it in logs: `127.0.0.1:60428 -> 127.0.0.1:5672`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionName {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

impl fmt::Display for ConnectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.peer, self.local)
    }
}
