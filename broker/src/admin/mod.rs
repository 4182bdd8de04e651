//! The broker's administration interface, for the layers above it (the
//! management HTTP API, the CLI through it, definitions files at boot):
//! list and change users, vhosts, permissions, queues, exchanges,
//! bindings and connections, with RabbitMQ's rules and errors.
//!
//! Everything here works on the same state AMQP clients use, through the
//! same checks (a queue declared here is validated as queue.declare
//! validates it). What it returns are snapshots ([`views`]).

mod access;
mod cluster;
mod connections;
mod definitions;
mod limits;
mod messages;
mod policies;
mod replicated_state;
mod shovels;
mod topology;
mod views;

use std::sync::Arc;
use std::time::SystemTime;

pub use access::PasswordSpec;
pub use definitions::DefinitionsError;
pub use limits::LimitsView;
pub use messages::{AckMode, PublishRequest};
pub use shovels::{ShovelState, ShovelView};
pub use views::*;

pub use crate::connections::TrafficTotals;

use crate::access::{Operation, ResourceKind};
use crate::broker::Broker;
use crate::error::AmqpError;
use crate::vhost::VHost;

/// Why an administrative operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// The vhost, queue, exchange, user... does not exist.
    NotFound,
    /// The request is malformed or names something invalid.
    BadRequest(String),
    /// The user may not do this (its permissions refuse it).
    AccessRefused(String),
    /// The broker refused it as it would refuse the AMQP method: a reply
    /// code and the text after the code's name.
    Refused { code: u16, reason: String },
    /// The cluster cannot make the change now (no majority).
    Unavailable(String),
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::NotFound => f.write_str("Not Found"),
            AdminError::BadRequest(r)
            | AdminError::AccessRefused(r)
            | AdminError::Unavailable(r)
            | AdminError::Refused { reason: r, .. } => f.write_str(r),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<AmqpError> for AdminError {
    fn from(e: AmqpError) -> Self {
        if e.code == warren_protocol::reply_code::NOT_FOUND {
            return AdminError::NotFound;
        }
        AdminError::Refused {
            code: e.code,
            reason: e.detail().to_string(),
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// A handle on a running broker for administration. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    broker: Arc<Broker>,
    started_at: SystemTime,
}

/// A user who logged in to the admin interface.
#[derive(Debug, Clone)]
pub struct AdminUser {
    pub name: String,
    pub tags: Vec<String>,
}

impl AdminUser {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

impl Admin {
    pub(crate) fn new(broker: Arc<Broker>) -> Admin {
        Admin {
            broker,
            started_at: SystemTime::now(),
        }
    }

    /// The node's name: its cluster name if it has one, otherwise as
    /// RabbitMQ's `rabbit@host`.
    pub fn node_name(&self) -> String {
        match &self.broker.config.cluster {
            Some(cluster) => cluster.node_name.clone(),
            None => format!("rabbit@{}", hostname()),
        }
    }

    /// The TLS certificates in use (the server's and the CA bundle's) that
    /// stop being valid before `deadline` (seconds since the epoch), as
    /// (subject, expiry); empty without TLS.
    pub fn certificates_expiring_before(&self, deadline: i64) -> Result<Vec<(String, i64)>, String> {
        let Some(tls) = &self.broker.config.tls else {
            return Ok(Vec::new());
        };
        let mut expiring = Vec::new();
        for path in [Some(&tls.cert), tls.ca.as_ref()].into_iter().flatten() {
            let certificates = crate::tls::expiries(path).map_err(|e| e.to_string())?;
            expiring.extend(certificates.into_iter().filter(|(_, at)| *at < deadline));
        }
        Ok(expiring)
    }

    /// Where the broker takes AMQP connections.
    pub fn amqp_listeners(&self) -> Vec<std::net::SocketAddr> {
        self.broker.listeners()
    }

    /// Checks a login: the user, if the password is right and the user
    /// may log in from there (`loopback`: the client is on this host).
    pub fn authenticate(&self, user: &str, password: &str, loopback: bool) -> Option<AdminUser> {
        let user = self.broker.access.authenticate(user, password, loopback).ok()?;
        Some(AdminUser {
            name: user.name.clone(),
            tags: user.tags.iter().map(|t| t.as_str().to_string()).collect(),
        })
    }

    /// Whether `user` may do `operation` on a queue (`queue` true) or an
    /// exchange named `name` in `vhost`; refused with RabbitMQ's text.
    pub fn check(&self, user: &str, vhost: &str, operation: &str, queue: bool, name: &str) -> AdminResult<()> {
        let operation = match operation {
            "configure" => Operation::Configure,
            "write" => Operation::Write,
            _ => Operation::Read,
        };
        let kind = if queue {
            ResourceKind::Queue
        } else {
            ResourceKind::Exchange
        };
        let name = if !queue && name.is_empty() { "amq.default" } else { name };
        match self.broker.access.permissions(vhost, user) {
            Some(p) if p.allows(operation, name) => Ok(()),
            _ => Err(AdminError::AccessRefused(format!(
                "access to {} '{}' in vhost '{}' refused for user '{}'",
                kind.as_str(),
                name,
                vhost,
                user
            ))),
        }
    }

    /// Whether `user` has any permissions in `vhost`.
    pub fn has_vhost_access(&self, user: &str, vhost: &str) -> bool {
        self.broker.access.permissions(vhost, user).is_some()
    }

    /// Memory, disk and alarms.
    pub fn node(&self) -> NodeView {
        let alarms = self.broker.alarms();
        let raised = alarms.raised();
        let resident = crate::memory::resident_bytes().unwrap_or_else(|| alarms.resident());
        NodeView {
            memory_used: resident,
            memory_limit: alarms.watermark(),
            memory_alarm: raised.memory,
            disk_free: fs4::available_space(&self.broker.config.data_dir).unwrap_or(0),
            disk_free_limit: self.broker.config.disk_free_limit,
            disk_alarm: raised.disk,
            started_at: self.started_at,
        }
    }

    /// The consumer timeout in milliseconds (0: none).
    pub fn consumer_timeout_ms(&self) -> u64 {
        self.broker.config.consumer_timeout.map_or(0, |t| t.as_millis() as u64)
    }

    /// Resolves once the broker begins shutting down.
    pub async fn stopping(&self) {
        let mut signal = self.broker.shutdown_signal();
        Broker::stopping(&mut signal).await
    }

    fn vhost(&self, name: &str) -> AdminResult<Arc<VHost>> {
        self.broker.vhost(name).ok_or(AdminError::NotFound)
    }
}

/// This machine's host name (for the node name).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
