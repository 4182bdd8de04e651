//! The open connections: who each is (peer, user, vhost, client
//! properties, tuned limits) and how to reach it, for the management API
//! and for closing connections when their vhost or user is deleted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;
use warren_protocol::FieldTable;

use crate::ids::{ConnectionId, ConnectionName};
use crate::message_stats::{self, MessageCounters, MessageTotals};
use crate::outbound::{ConnectionHandle, Outbound};

/// One open connection, as the management API shows it.
pub(crate) struct ConnectionInfo {
    pub id: ConnectionId,
    pub name: ConnectionName,
    pub user: String,
    pub vhost: String,
    /// PLAIN, AMQPLAIN or EXTERNAL.
    pub auth_mechanism: String,
    pub tls: bool,
    pub client_properties: FieldTable,
    pub connected_at: SystemTime,
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
    /// Channels open now.
    pub channels: parking_lot::Mutex<BTreeMap<u16, Arc<ChannelInfo>>>,
    pub handle: ConnectionHandle,
    /// Its messages, counted by its own task.
    pub counters: MessageCounters,
    /// Its socket's bytes, counted where they are read and written.
    pub traffic: Arc<Traffic>,
}

/// A connection's socket traffic since it opened (after the handshake):
/// bytes and reads from the client, bytes and writes to it, as RabbitMQ's
/// `recv_oct`, `recv_cnt`, `send_oct` and `send_cnt`. Relaxed counters,
/// bumped once per socket read or write, not per frame.
#[derive(Default, Debug)]
pub(crate) struct Traffic {
    received_bytes: AtomicU64,
    reads: AtomicU64,
    sent_bytes: AtomicU64,
    writes: AtomicU64,
}

/// [`Traffic`]'s counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficTotals {
    pub received_bytes: u64,
    pub reads: u64,
    pub sent_bytes: u64,
    pub writes: u64,
}

impl Traffic {
    pub(crate) fn read(&self, bytes: usize) {
        self.received_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn wrote(&self, bytes: usize) {
        self.sent_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn totals(&self) -> TrafficTotals {
        TrafficTotals {
            received_bytes: self.received_bytes.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            sent_bytes: self.sent_bytes.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// One open channel, as the management API shows it: figures the channel
/// updates as they change (relaxed stores on its connection's task).
#[derive(Default)]
pub(crate) struct ChannelInfo {
    pub number: u16,
    /// basic.qos prefetch for new consumers, and the channel-wide one.
    pub prefetch: AtomicU32,
    pub global_prefetch: AtomicU32,
    pub confirm: AtomicBool,
    pub transactional: AtomicBool,
    pub consumers: AtomicU32,
    pub unacked: AtomicU32,
}

impl ChannelInfo {
    pub(crate) fn new(number: u16) -> ChannelInfo {
        ChannelInfo {
            number,
            ..ChannelInfo::default()
        }
    }

    pub(crate) fn set(field: &AtomicU32, value: usize) {
        field.store(u32::try_from(value).unwrap_or(u32::MAX), Ordering::Relaxed);
    }
}

impl ConnectionInfo {
    /// Asks the connection to close with 320 CONNECTION_FORCED and `reason`.
    pub(crate) fn force_close(&self, reason: &str) {
        let _ = self.handle.send(Outbound::ForceClose {
            reason: reason.to_string(),
        });
    }

    pub(crate) fn channel_count(&self) -> u32 {
        self.channels.lock().len() as u32
    }

    pub(crate) fn channel_opened(&self, channel: Arc<ChannelInfo>) {
        self.channels.lock().insert(channel.number, channel);
    }

    pub(crate) fn channel_closed(&self, number: u16) {
        self.channels.lock().remove(&number);
    }

    pub(crate) fn channel_list(&self) -> Vec<Arc<ChannelInfo>> {
        self.channels.lock().values().cloned().collect()
    }
}

#[derive(Default)]
pub(crate) struct Connections {
    open: DashMap<ConnectionId, Arc<ConnectionInfo>>,
    /// The message counts of connections that closed.
    closed_totals: MessageCounters,
}

/// Removes its connection from the registry when dropped.
pub(crate) struct Registration<'a> {
    connections: &'a Connections,
    id: ConnectionId,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Some((_, info)) = self.connections.open.remove(&self.id) {
            self.connections.closed_totals.absorb(&info.counters.read());
        }
    }
}

impl Connections {
    pub(crate) fn register(&self, info: Arc<ConnectionInfo>) -> Registration<'_> {
        let id = info.id;
        self.open.insert(id, info);
        Registration { connections: self, id }
    }

    pub(crate) fn list(&self) -> Vec<Arc<ConnectionInfo>> {
        let mut all: Vec<_> = self.open.iter().map(|c| c.clone()).collect();
        all.sort_by_key(|c| c.id);
        all
    }

    pub(crate) fn count(&self) -> usize {
        self.open.len()
    }

    /// Message counts of every connection, open or closed, since start.
    pub(crate) fn message_totals(&self) -> MessageTotals {
        let open: Vec<MessageTotals> = self.open.iter().map(|c| c.counters.read()).collect();
        let closed = self.closed_totals.read();
        message_stats::sum(open.iter().chain(std::iter::once(&closed)))
    }

    /// How many open connections `which` picks.
    pub(crate) fn count_where(&self, which: impl Fn(&ConnectionInfo) -> bool) -> usize {
        self.open.iter().filter(|c| which(c)).count()
    }

    /// Channels open on a user's connections.
    pub(crate) fn channels_of_user(&self, user: &str) -> usize {
        self.open
            .iter()
            .filter(|c| c.user == user)
            .map(|c| c.channel_count() as usize)
            .sum()
    }

    pub(crate) fn by_id(&self, id: ConnectionId) -> Option<Arc<ConnectionInfo>> {
        self.open.get(&id).map(|c| c.clone())
    }

    /// The connection named `name` (`peer -> local`, as RabbitMQ names it).
    pub(crate) fn by_name(&self, name: &str) -> Option<Arc<ConnectionInfo>> {
        self.open.iter().find(|c| c.name.to_string() == name).map(|c| c.clone())
    }

    /// Closes every connection `which` picks; returns how many.
    pub(crate) fn close_where(&self, which: impl Fn(&ConnectionInfo) -> bool, reason: &str) -> usize {
        let picked: Vec<_> = self.open.iter().filter(|c| which(c)).map(|c| c.clone()).collect();
        for connection in &picked {
            connection.force_close(reason);
        }
        picked.len()
    }
}
