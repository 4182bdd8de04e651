//! Open connections through the admin interface: listed, and closed by
//! name as an operator closes them.

use std::sync::atomic::Ordering;

use super::{Admin, AdminError, AdminResult, ChannelView, ConnectionView, ConsumerView};
use crate::connections::{ChannelInfo, ConnectionInfo};
use crate::json::table_to_json;

fn connection_view(c: &ConnectionInfo) -> ConnectionView {
    ConnectionView {
        name: c.name.to_string(),
        user: c.user.clone(),
        vhost: c.vhost.clone(),
        peer: c.name.peer,
        local: c.name.local,
        auth_mechanism: c.auth_mechanism.clone(),
        tls: c.tls,
        connected_at: c.connected_at,
        channels: c.channel_count(),
        frame_max: c.frame_max,
        channel_max: c.channel_max,
        heartbeat: c.heartbeat,
        client_properties: table_to_json(&c.client_properties),
        traffic: c.traffic.totals(),
    }
}

impl Admin {
    pub fn connections(&self) -> Vec<ConnectionView> {
        self.broker
            .connections
            .list()
            .iter()
            .map(|c| connection_view(c))
            .collect()
    }

    pub fn connection(&self, name: &str) -> AdminResult<ConnectionView> {
        let c = self.broker.connections.by_name(name).ok_or(AdminError::NotFound)?;
        Ok(connection_view(&c))
    }

    /// Closes a connection with 320 CONNECTION_FORCED and `reason`.
    pub fn close_connection(&self, name: &str, reason: &str) -> AdminResult<()> {
        let c = self.broker.connections.by_name(name).ok_or(AdminError::NotFound)?;
        c.force_close(reason);
        Ok(())
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.broker.connections.count()
    }

    /// Message counts since start, over every connection.
    pub fn message_totals(&self) -> crate::MessageTotals {
        self.broker.connections.message_totals()
    }

    /// Connections, channels and queues opened, closed, declared, created
    /// and deleted since start.
    pub fn churn(&self) -> crate::Churn {
        self.broker.churn.read()
    }
}

fn channel_view(c: &ConnectionInfo, ch: &ChannelInfo) -> ChannelView {
    let load = |a: &std::sync::atomic::AtomicU32| a.load(Ordering::Relaxed);
    ChannelView {
        name: format!("{} ({})", c.name, ch.number),
        number: ch.number,
        connection: c.name.to_string(),
        peer: c.name.peer,
        user: c.user.clone(),
        vhost: c.vhost.clone(),
        prefetch_count: load(&ch.prefetch),
        global_prefetch_count: load(&ch.global_prefetch),
        confirm: ch.confirm.load(Ordering::Relaxed),
        transactional: ch.transactional.load(Ordering::Relaxed),
        consumer_count: load(&ch.consumers),
        messages_unacknowledged: load(&ch.unacked),
    }
}

impl Admin {
    /// Every open channel (of one connection, if named).
    pub fn channels(&self, connection: Option<&str>) -> AdminResult<Vec<ChannelView>> {
        let connections = match connection {
            Some(name) => vec![self.broker.connections.by_name(name).ok_or(AdminError::NotFound)?],
            None => self.broker.connections.list(),
        };
        Ok(connections
            .iter()
            .flat_map(|c| c.channel_list().into_iter().map(move |ch| channel_view(c, &ch)))
            .collect())
    }

    /// Every consumer (of one vhost, if named).
    pub fn consumers(&self, vhost: Option<&str>) -> AdminResult<Vec<ConsumerView>> {
        let mut all = Vec::new();
        for v in self.vhosts_or_one(vhost)? {
            for queue in v.queues() {
                // Other nodes' consumers are listed by their own nodes.
                for consumer in queue.consumers().into_iter().filter(|c| !c.stands_in) {
                    let channel = self.broker.connections.by_id(consumer.connection).and_then(|c| {
                        let ch = c.channels.lock().get(&consumer.channel).cloned()?;
                        Some(channel_view(&c, &ch))
                    });
                    all.push(ConsumerView {
                        queue: queue.name.to_string(),
                        vhost: v.name.to_string(),
                        consumer_tag: consumer.tag.to_string(),
                        ack_required: !consumer.no_ack,
                        exclusive: consumer.exclusive,
                        prefetch_count: consumer.credit.limit(),
                        priority: consumer.priority,
                        arguments: table_to_json(&consumer.arguments),
                        channel,
                    });
                }
            }
        }
        Ok(all)
    }
}
