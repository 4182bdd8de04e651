//! The broker's views as RabbitMQ 3.x's management API writes them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use warren_broker::{
    BindingView, ChannelView, ConnectionView, ConsumerView, ExchangeView, PermissionView, QueueView,
    TopicPermissionView, UserView, VhostView,
};

use crate::rates::{ConnectionRates, QueueRates};

pub(crate) fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A time as RabbitMQ 3.10 writes `idle_since`: `2026-12-02T00:35:13.752+00:00`.
pub(crate) fn timestamp(time: SystemTime) -> String {
    let time: chrono::DateTime<chrono::Utc> = time.into();
    time.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()
}

fn details(rate: f64) -> Value {
    json!({ "rate": (rate * 10.0).round() / 10.0 })
}

/// A queue's `message_stats` as RabbitMQ writes it: each counter with its
/// rate.
pub(crate) fn message_stats(q: &QueueView, rates: &QueueRates) -> Value {
    let deliver = q.delivered.saturating_sub(q.delivered_no_ack + q.got + q.got_no_ack);
    json!({
        "publish": q.published, "publish_details": details(rates.publish),
        "deliver_get": q.delivered, "deliver_get_details": details(rates.deliver_get),
        "deliver": deliver, "deliver_details": details(rates.deliver),
        "deliver_no_ack": q.delivered_no_ack, "deliver_no_ack_details": details(rates.deliver_no_ack),
        "get": q.got, "get_details": details(rates.get),
        "get_no_ack": q.got_no_ack, "get_no_ack_details": details(rates.get_no_ack),
        "get_empty": q.get_empty, "get_empty_details": details(rates.get_empty),
        "redeliver": q.redelivered, "redeliver_details": details(rates.redeliver),
        "ack": q.acked, "ack_details": details(rates.ack),
    })
}

/// The message counts of a queue, a vhost or the node.
pub(crate) fn message_counts(out: &mut Map<String, Value>, ready: u64, unacked: u64, rates: &QueueRates) {
    out.insert("messages".into(), (ready + unacked).into());
    out.insert("messages_details".into(), details(rates.messages));
    out.insert("messages_ready".into(), ready.into());
    out.insert("messages_ready_details".into(), details(rates.messages_ready));
    out.insert("messages_unacknowledged".into(), unacked.into());
    out.insert(
        "messages_unacknowledged_details".into(),
        details(rates.messages_unacknowledged),
    );
}

pub(crate) fn queue(q: &QueueView, node: &str, rates: &QueueRates) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), q.name.clone().into());
    out.insert("vhost".into(), q.vhost.clone().into());
    out.insert("type".into(), q.queue_type.into());
    out.insert("durable".into(), q.durable.into());
    out.insert("auto_delete".into(), q.auto_delete.into());
    out.insert("exclusive".into(), q.exclusive.into());
    out.insert("arguments".into(), Value::Object(q.arguments.clone()));
    match &q.replicas {
        // As RabbitMQ's quorum queues: the leader is the queue's node.
        Some(replicas) => {
            let leader = replicas.leader.clone().map_or(Value::Null, Value::String);
            out.insert("node".into(), leader.clone());
            out.insert("leader".into(), leader);
            out.insert("members".into(), replicas.members.clone().into());
            out.insert("online".into(), replicas.online.clone().into());
        }
        None => {
            out.insert("node".into(), q.home.as_deref().unwrap_or(node).into());
        }
    }
    out.insert("state".into(), "running".into());
    out.insert("policy".into(), q.policy.clone().map_or(Value::Null, Value::String));
    out.insert(
        "operator_policy".into(),
        q.operator_policy.clone().map_or(Value::Null, Value::String),
    );
    out.insert(
        "effective_policy_definition".into(),
        Value::Object(q.effective_policy_definition.clone()),
    );
    out.insert("consumers".into(), q.consumers.into());
    let utilisation = if q.consumers > 0 { 1.0 } else { 0.0 };
    out.insert("consumer_utilisation".into(), json!(utilisation));
    out.insert("consumer_capacity".into(), json!(utilisation));
    out.insert("exclusive_consumer_tag".into(), Value::Null);
    out.insert("single_active_consumer_tag".into(), Value::Null);
    out.insert("head_message_timestamp".into(), q.head_message_timestamp.into());
    // Beyond RabbitMQ: consumer lag, in seconds (null when nothing waits).
    let seconds = |age: Option<std::time::Duration>| age.map(|a| (a.as_secs_f64() * 1000.0).round() / 1000.0);
    out.insert("oldest_ready_age_seconds".into(), seconds(q.oldest_ready_age).into());
    out.insert(
        "oldest_unacked_age_seconds".into(),
        seconds(q.oldest_unacked_age).into(),
    );
    out.insert("memory".into(), 0.into());
    message_counts(&mut out, q.messages_ready, q.messages_unacknowledged, rates);
    let in_memory = q.messages_ready.saturating_sub(q.messages_paged_out);
    let bytes_in_memory = q.messages_ready_bytes.saturating_sub(q.messages_paged_out_bytes);
    out.insert(
        "message_bytes".into(),
        (q.messages_ready_bytes + q.messages_unacknowledged_bytes).into(),
    );
    out.insert("message_bytes_ready".into(), q.messages_ready_bytes.into());
    out.insert(
        "message_bytes_unacknowledged".into(),
        q.messages_unacknowledged_bytes.into(),
    );
    out.insert("message_bytes_paged_out".into(), q.messages_paged_out_bytes.into());
    out.insert(
        "message_bytes_ram".into(),
        (bytes_in_memory + q.messages_unacknowledged_bytes).into(),
    );
    out.insert("messages_paged_out".into(), q.messages_paged_out.into());
    out.insert("messages_ram".into(), (in_memory + q.messages_unacknowledged).into());
    out.insert("messages_ready_ram".into(), in_memory.into());
    out.insert("messages_unacknowledged_ram".into(), q.messages_unacknowledged.into());
    out.insert("message_stats".into(), message_stats(q, rates));
    Value::Object(out)
}

pub(crate) fn exchange(x: &ExchangeView) -> Value {
    json!({
        "name": x.name, "vhost": x.vhost, "type": x.kind, "durable": x.durable,
        "auto_delete": x.auto_delete, "internal": x.internal, "arguments": x.arguments,
        "policy": x.policy, "user_who_performed_action": "rmq-internal",
    })
}

pub(crate) fn binding(b: &BindingView) -> Value {
    json!({
        "source": b.source, "vhost": b.vhost, "destination": b.destination,
        "destination_type": b.destination_kind.as_str(), "routing_key": b.routing_key,
        "arguments": b.arguments, "properties_key": b.properties_key,
    })
}

pub(crate) fn user(u: &UserView) -> Value {
    json!({
        "name": u.name, "password_hash": u.password_hash,
        "hashing_algorithm": u.hashing_algorithm, "tags": u.tags, "limits": {},
    })
}

pub(crate) fn vhost(v: &VhostView, node: &str, ready: u64, unacked: u64, rates: &QueueRates) -> Value {
    let default_queue_type = v.default_queue_type.clone().unwrap_or_else(|| "classic".into());
    let mut out = Map::new();
    out.insert("name".into(), v.name.clone().into());
    out.insert("description".into(), v.description.clone().into());
    out.insert("tags".into(), v.tags.clone().into());
    out.insert("default_queue_type".into(), default_queue_type.clone().into());
    out.insert(
        "metadata".into(),
        json!({"description": v.description, "tags": v.tags, "default_queue_type": default_queue_type}),
    );
    out.insert("tracing".into(), false.into());
    out.insert("cluster_state".into(), json!({ node: "running" }));
    message_counts(&mut out, ready, unacked, rates);
    Value::Object(out)
}

pub(crate) fn permission(p: &PermissionView) -> Value {
    json!({"user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write, "read": p.read})
}

pub(crate) fn topic_permission(p: &TopicPermissionView) -> Value {
    json!({"user": p.user, "vhost": p.vhost, "exchange": p.exchange, "write": p.write, "read": p.read})
}

pub(crate) fn connection(c: &ConnectionView, node: &str, rates: ConnectionRates) -> Value {
    json!({
        "name": c.name, "node": node, "type": "network", "state": "running", "protocol": "AMQP 0-9-1",
        "user": c.user, "user_who_performed_action": c.user, "vhost": c.vhost,
        "host": c.local.ip().to_string(), "port": c.local.port(),
        "peer_host": c.peer.ip().to_string(), "peer_port": c.peer.port(),
        "ssl": c.tls, "auth_mechanism": c.auth_mechanism,
        "connected_at": millis(c.connected_at), "channels": c.channels,
        "frame_max": c.frame_max, "channel_max": c.channel_max, "timeout": c.heartbeat,
        "client_properties": c.client_properties,
        "recv_oct": c.traffic.received_bytes, "recv_oct_details": {"rate": rates.received},
        "recv_cnt": c.traffic.reads,
        "send_oct": c.traffic.sent_bytes, "send_oct_details": {"rate": rates.sent},
        "send_cnt": c.traffic.writes,
    })
}

pub(crate) fn channel(c: &ChannelView, node: &str) -> Value {
    json!({
        "name": c.name, "number": c.number, "node": node, "state": "running",
        "user": c.user, "user_who_performed_action": c.user, "vhost": c.vhost,
        "connection_details": {"name": c.connection, "peer_host": c.peer.ip().to_string(), "peer_port": c.peer.port()},
        "prefetch_count": c.prefetch_count, "global_prefetch_count": c.global_prefetch_count,
        "confirm": c.confirm, "transactional": c.transactional,
        "consumer_count": c.consumer_count, "messages_unacknowledged": c.messages_unacknowledged,
        "messages_unconfirmed": 0, "messages_uncommitted": 0, "acks_uncommitted": 0,
    })
}

pub(crate) fn consumer(c: &ConsumerView, node: &str, consumer_timeout: u64) -> Value {
    let channel_details = match &c.channel {
        Some(ch) => json!({
            "name": ch.name, "number": ch.number, "connection_name": ch.connection, "node": node,
            "peer_host": ch.peer.ip().to_string(), "peer_port": ch.peer.port(), "user": ch.user,
        }),
        None => json!({}),
    };
    json!({
        "consumer_tag": c.consumer_tag, "queue": {"name": c.queue, "vhost": c.vhost},
        "channel_details": channel_details, "ack_required": c.ack_required, "exclusive": c.exclusive,
        "prefetch_count": c.prefetch_count, "priority": c.priority, "arguments": c.arguments,
        "active": true, "activity_status": "up", "consumer_timeout": consumer_timeout,
    })
}
