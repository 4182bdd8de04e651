//! Message rates: every [`SAMPLE_EVERY`] a task reads each queue's
//! counters (kept by the broker where the events happen) and turns the
//! difference with the previous reading into per-second rates, as
//! RabbitMQ's management plugin samples its statistics; each connection's
//! socket bytes likewise. Readers only look the last rates up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::RwLock;
use warren_broker::{Admin, QueueView};

pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Per-second rates of one queue (or of all, summed).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct QueueRates {
    pub publish: f64,
    pub deliver_get: f64,
    /// deliver_get's parts: to consumers with and without acks, by
    /// basic.get with and without them; and empty basic.gets.
    pub deliver: f64,
    pub deliver_no_ack: f64,
    pub get: f64,
    pub get_no_ack: f64,
    pub get_empty: f64,
    pub redeliver: f64,
    pub ack: f64,
    pub messages: f64,
    pub messages_ready: f64,
    pub messages_unacknowledged: f64,
}

impl QueueRates {
    fn add(&mut self, other: &QueueRates) {
        self.publish += other.publish;
        self.deliver_get += other.deliver_get;
        self.deliver += other.deliver;
        self.deliver_no_ack += other.deliver_no_ack;
        self.get += other.get;
        self.get_no_ack += other.get_no_ack;
        self.get_empty += other.get_empty;
        self.redeliver += other.redeliver;
        self.ack += other.ack;
        self.messages += other.messages;
        self.messages_ready += other.messages_ready;
        self.messages_unacknowledged += other.messages_unacknowledged;
    }
}

#[derive(Clone, Copy)]
struct Reading {
    at: Instant,
    published: u64,
    delivered: u64,
    delivered_no_ack: u64,
    got: u64,
    got_no_ack: u64,
    get_empty: u64,
    redelivered: u64,
    acked: u64,
    ready: u64,
    unacked: u64,
    /// When a counter or the depth last changed (as of the sample that
    /// saw it), and whether none did between the last two samples.
    changed_at: SystemTime,
    idle: bool,
}

impl Reading {
    fn of(q: &QueueView, at: Instant, wall: SystemTime) -> Reading {
        Reading {
            at,
            changed_at: wall,
            idle: false,
            published: q.published,
            delivered: q.delivered,
            delivered_no_ack: q.delivered_no_ack,
            got: q.got,
            got_no_ack: q.got_no_ack,
            get_empty: q.get_empty,
            redelivered: q.redelivered,
            acked: q.acked,
            ready: q.messages_ready,
            unacked: q.messages_unacknowledged,
        }
    }

    /// Handed to consumers that ack.
    fn deliver(&self) -> u64 {
        self.delivered
            .saturating_sub(self.delivered_no_ack + self.got + self.got_no_ack)
    }

    fn same_as(&self, before: &Reading) -> bool {
        (
            self.published,
            self.delivered,
            self.get_empty,
            self.redelivered,
            self.acked,
            self.ready,
            self.unacked,
        ) == (
            before.published,
            before.delivered,
            before.get_empty,
            before.redelivered,
            before.acked,
            before.ready,
            before.unacked,
        )
    }

    fn rates_since(&self, before: &Reading) -> QueueRates {
        let seconds = self.at.duration_since(before.at).as_secs_f64().max(0.001);
        let up = |now: u64, then: u64| now.saturating_sub(then) as f64 / seconds;
        let change = |now: u64, then: u64| (now as f64 - then as f64) / seconds;
        QueueRates {
            publish: up(self.published, before.published),
            deliver_get: up(self.delivered, before.delivered),
            deliver: up(self.deliver(), before.deliver()),
            deliver_no_ack: up(self.delivered_no_ack, before.delivered_no_ack),
            get: up(self.got, before.got),
            get_no_ack: up(self.got_no_ack, before.got_no_ack),
            get_empty: up(self.get_empty, before.get_empty),
            redeliver: up(self.redelivered, before.redelivered),
            ack: up(self.acked, before.acked),
            messages: change(self.ready + self.unacked, before.ready + before.unacked),
            messages_ready: change(self.ready, before.ready),
            messages_unacknowledged: change(self.unacked, before.unacked),
        }
    }
}

#[derive(Default)]
struct Sampled {
    readings: HashMap<(String, String), Reading>,
    rates: HashMap<(String, String), QueueRates>,
    totals: QueueRates,
    /// The node's counters at the last sample, and their rates.
    node: Option<(Instant, Vec<(&'static str, u64)>)>,
    node_rates: HashMap<&'static str, f64>,
    /// Each connection's bytes received and sent at the last sample, and
    /// their rates.
    connections: HashMap<String, (Instant, u64, u64)>,
    connection_rates: HashMap<String, ConnectionRates>,
}

/// Bytes a second a connection received and sent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConnectionRates {
    pub received: f64,
    pub sent: f64,
}

/// The node-wide counters that get rates, by the name RabbitMQ gives their
/// `_details` in `message_stats` and `churn_rates`.
fn node_counters(admin: &Admin) -> Vec<(&'static str, u64)> {
    let m = admin.message_totals();
    let c = admin.churn();
    vec![
        ("publish", m.received),
        ("confirm", m.confirmed),
        ("deliver_get", m.delivered_and_got()),
        ("deliver", m.delivered_manual_ack),
        ("deliver_no_ack", m.delivered_auto_ack),
        ("get", m.get_manual_ack),
        ("get_no_ack", m.get_auto_ack),
        ("get_empty", m.get_empty),
        ("redeliver", m.redelivered),
        ("ack", m.acknowledged),
        ("drop_unroutable", m.unroutable_dropped),
        ("return_unroutable", m.unroutable_returned),
        ("connection_created", c.connections_opened),
        ("connection_closed", c.connections_closed),
        ("channel_created", c.channels_opened),
        ("channel_closed", c.channels_closed),
        ("queue_declared", c.queues_declared),
        ("queue_created", c.queues_created),
        ("queue_deleted", c.queues_deleted),
    ]
}

#[derive(Default)]
pub(crate) struct Rates {
    sampled: RwLock<Sampled>,
}

impl Rates {
    /// The last rates of a queue (zero before two readings).
    pub(crate) fn queue(&self, vhost: &str, name: &str) -> QueueRates {
        self.sampled
            .read()
            .rates
            .get(&(vhost.to_string(), name.to_string()))
            .copied()
            .unwrap_or_default()
    }

    /// Since when a queue has been idle (nothing published, delivered,
    /// acked or changed between the last samples), as RabbitMQ's
    /// `idle_since`; None while it is active.
    pub(crate) fn idle_since(&self, vhost: &str, name: &str) -> Option<SystemTime> {
        let sampled = self.sampled.read();
        let reading = sampled.readings.get(&(vhost.to_string(), name.to_string()))?;
        reading.idle.then_some(reading.changed_at)
    }

    /// Rates summed over every queue.
    pub(crate) fn totals(&self) -> QueueRates {
        self.sampled.read().totals
    }

    /// The rate of a node-wide counter (see `node_counters`).
    pub(crate) fn node(&self, name: &str) -> f64 {
        self.sampled.read().node_rates.get(name).copied().unwrap_or(0.0)
    }

    /// The last rates of a connection's socket (zero before two readings).
    pub(crate) fn connection(&self, name: &str) -> ConnectionRates {
        self.sampled
            .read()
            .connection_rates
            .get(name)
            .copied()
            .unwrap_or_default()
    }

    /// Reads every queue's and connection's counters once.
    fn sample(&self, admin: &Admin) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let Ok(queues) = admin.queues(None) else {
            return;
        };
        let counters = node_counters(admin);
        let mut sampled = self.sampled.write();
        let mut node_rates = HashMap::new();
        if let Some((at, before)) = &sampled.node {
            let seconds = now.duration_since(*at).as_secs_f64().max(0.001);
            for ((name, value), (_, old)) in counters.iter().zip(before) {
                node_rates.insert(*name, value.saturating_sub(*old) as f64 / seconds);
            }
        }
        let mut readings = HashMap::with_capacity(queues.len());
        let mut rates = HashMap::with_capacity(queues.len());
        let mut totals = QueueRates::default();
        for q in &queues {
            let key = (q.vhost.clone(), q.name.clone());
            let mut reading = Reading::of(q, now, wall);
            if let Some(before) = sampled.readings.get(&key) {
                if reading.same_as(before) {
                    reading.changed_at = before.changed_at;
                    reading.idle = true;
                }
                let r = reading.rates_since(before);
                totals.add(&r);
                rates.insert(key.clone(), r);
            }
            readings.insert(key, reading);
        }
        let mut connections = HashMap::new();
        let mut connection_rates = HashMap::new();
        for c in admin.connections() {
            let (received, sent) = (c.traffic.received_bytes, c.traffic.sent_bytes);
            if let Some((at, received_before, sent_before)) = sampled.connections.get(&c.name) {
                let seconds = now.duration_since(*at).as_secs_f64().max(0.001);
                let rates = ConnectionRates {
                    received: received.saturating_sub(*received_before) as f64 / seconds,
                    sent: sent.saturating_sub(*sent_before) as f64 / seconds,
                };
                connection_rates.insert(c.name.clone(), rates);
            }
            connections.insert(c.name, (now, received, sent));
        }
        *sampled = Sampled {
            readings,
            rates,
            totals,
            node: Some((now, counters)),
            node_rates,
            connections,
            connection_rates,
        };
    }

    /// Samples until the broker stops.
    pub(crate) fn spawn_sampler(self: &Arc<Self>, admin: Admin) {
        let rates = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(SAMPLE_EVERY);
            let stopping = admin.stopping();
            tokio::pin!(stopping);
            loop {
                tokio::select! {
                    _ = ticker.tick() => rates.sample(&admin),
                    _ = &mut stopping => break,
                }
            }
        });
    }
}
