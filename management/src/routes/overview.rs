//! The node as a whole: `/api/overview`, `/api/whoami`, `/api/nodes`,
//! `/api/cluster-name`, `/api/extensions`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use warren_broker::MemberView;

use crate::auth::User;
use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::state::Api;

/// The version Warren reports (RabbitMQ's, as it answers AMQP clients).
pub(crate) const VERSION: &str = "3.13.7";
const ERLANG: &str = "26.2";

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/overview", get(overview))
        .route("/api/whoami", get(whoami))
        .route("/api/nodes", get(nodes))
        .route("/api/nodes/{node}", get(node))
        .route("/api/cluster-name", get(cluster_name).put(set_cluster_name))
        .route("/api/extensions", get(|_: User| async { Json(json!([])) }))
}

async fn overview(State(api): State<Api>, user: User) -> ApiResult<Json<Value>> {
    let queues = api.admin.queues(None)?;
    let visible: Vec<_> = queues.iter().filter(|q| user.sees_vhost(&api, &q.vhost)).collect();
    let (ready, unacked) = visible.iter().fold((0, 0), |(r, u), q| {
        (r + q.messages_ready, u + q.messages_unacknowledged)
    });
    let rates = api.rates.totals();
    let totals = api.admin.message_totals();
    let churn = api.admin.churn();
    let counted = |name: &str, value: u64| {
        let rate = (api.rates.node(name) * 10.0).round() / 10.0;
        [
            (name.to_string(), json!(value)),
            (format!("{name}_details"), json!({ "rate": rate })),
        ]
    };
    let message_stats: serde_json::Map<String, Value> = [
        ("publish", totals.received),
        ("confirm", totals.confirmed),
        ("deliver_get", totals.delivered_and_got()),
        ("deliver", totals.delivered_manual_ack),
        ("deliver_no_ack", totals.delivered_auto_ack),
        ("get", totals.get_manual_ack),
        ("get_no_ack", totals.get_auto_ack),
        ("get_empty", totals.get_empty),
        ("redeliver", totals.redelivered),
        ("ack", totals.acknowledged),
        ("drop_unroutable", totals.unroutable_dropped),
        ("return_unroutable", totals.unroutable_returned),
    ]
    .into_iter()
    .flat_map(|(name, value)| counted(name, value))
    .collect();
    let churn_rates: serde_json::Map<String, Value> = [
        ("connection_created", churn.connections_opened),
        ("connection_closed", churn.connections_closed),
        ("channel_created", churn.channels_opened),
        ("channel_closed", churn.channels_closed),
        ("queue_declared", churn.queues_declared),
        ("queue_created", churn.queues_created),
        ("queue_deleted", churn.queues_deleted),
    ]
    .into_iter()
    .flat_map(|(name, value)| counted(name, value))
    .collect();
    let mut queue_totals = serde_json::Map::new();
    render::message_counts(&mut queue_totals, ready, unacked, &rates);
    let exchanges = api.admin.exchanges(None)?.len();
    let connections = api.admin.connections();
    let channels: u64 = connections.iter().map(|c| u64::from(c.channels)).sum();
    let consumers: u64 = visible.iter().map(|q| q.consumers).sum();
    let listeners: Vec<Value> = api
        .admin
        .amqp_listeners()
        .iter()
        .map(|addr| json!({"node": &*api.node, "protocol": "amqp", "ip_address": addr.ip().to_string(), "port": addr.port(), "socket_opts": {}}))
        .collect();
    Ok(Json(json!({
        "management_version": VERSION,
        "rates_mode": "basic",
        "exchange_types": [
            {"name": "direct", "description": "AMQP direct exchange, as per the AMQP specification", "enabled": true},
            {"name": "fanout", "description": "AMQP fanout exchange, as per the AMQP specification", "enabled": true},
            {"name": "headers", "description": "AMQP headers exchange, as per the AMQP specification", "enabled": true},
            {"name": "topic", "description": "AMQP topic exchange, as per the AMQP specification", "enabled": true},
            {"name": "x-consistent-hash", "description": "Consistent Hashing Exchange", "enabled": true},
        ],
        "product_version": VERSION,
        "product_name": "RabbitMQ",
        "rabbitmq_version": VERSION,
        "crypto_lib_version": "rustls",
        "cluster_name": api.admin.cluster_name(),
        "erlang_version": ERLANG,
        "erlang_full_version": format!("Erlang/OTP {ERLANG} [Warren {}]", env!("CARGO_PKG_VERSION")),
        "disable_stats": false,
        "enable_queue_totals": true,
        "is_op_policy_updating_enabled": true,
        "message_stats": message_stats,
        "churn_rates": churn_rates,
        "queue_totals": queue_totals,
        "object_totals": {
            "channels": channels, "connections": connections.len(), "consumers": consumers,
            "exchanges": exchanges, "queues": visible.len(),
        },
        "statistics_db_event_queue": 0,
        "node": &*api.node,
        "listeners": listeners,
        "contexts": [{"node": &*api.node, "description": "RabbitMQ Management", "path": "/", "port": "15672"}],
    })))
}

async fn whoami(user: User) -> Json<Value> {
    Json(json!({"name": user.0.name, "tags": user.0.tags}))
}

fn node_json(api: &Api) -> Value {
    let n = api.admin.node();
    let uptime = n.started_at.elapsed().map_or(0, |d| d.as_millis() as u64);
    json!({
        "name": &*api.node, "type": "disc", "running": true, "being_drained": false,
        "mem_used": n.memory_used, "mem_limit": n.memory_limit, "mem_alarm": n.memory_alarm,
        "disk_free": n.disk_free, "disk_free_limit": n.disk_free_limit, "disk_free_alarm": n.disk_alarm,
        "fd_used": 0, "fd_total": 1048576, "sockets_used": api.admin.connection_count(), "sockets_total": 943626,
        "proc_used": 0, "proc_total": 1048576, "run_queue": 0,
        "processors": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "uptime": uptime, "os_pid": std::process::id().to_string(),
        "rates_mode": "basic", "partitions": [], "contexts": [], "exchange_types": [],
        "auth_mechanisms": [{"name": "PLAIN", "enabled": true}, {"name": "AMQPLAIN", "enabled": true}],
        "enabled_plugins": ["rabbitmq_management", "rabbitmq_prometheus", "rabbitmq_consistent_hash_exchange",
            "rabbitmq_shovel", "rabbitmq_shovel_management"],
        "applications": [
            {"name": "rabbit", "description": "RabbitMQ", "version": VERSION},
            {"name": "rabbitmq_management", "description": "RabbitMQ Management Console", "version": VERSION},
        ],
        "rabbitmq_version": VERSION, "erlang_version": ERLANG,
        "erlang_full_version": format!("Erlang/OTP {ERLANG} [Warren {}]", env!("CARGO_PKG_VERSION")),
        "crypto_lib_version": "rustls",
    })
}

/// A cluster member as `/api/nodes` lists it: this node in full, another
/// with what this node knows of it (RabbitMQ lists a stopped member with
/// its name, type and `running: false`). Warren adds the member's cluster
/// address and whether it leads the metadata log.
fn member_json(api: &Api, member: &MemberView) -> Value {
    let mut value = if member.this_node {
        node_json(api)
    } else {
        json!({"name": member.name, "type": "disc", "running": member.running, "being_drained": false})
    };
    let clustered = !member.address.is_empty();
    if let Some(object) = value.as_object_mut().filter(|_| clustered) {
        object.insert("cluster_address".into(), json!(member.address));
        object.insert("metadata_leader".into(), json!(member.leader));
    }
    value
}

async fn nodes(State(api): State<Api>, user: User) -> ApiResult<Json<Value>> {
    user.require_monitoring()?;
    let members = api.admin.cluster_members();
    Ok(Json(Value::Array(
        members.iter().map(|m| member_json(&api, m)).collect(),
    )))
}

async fn node(State(api): State<Api>, user: User, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    user.require_monitoring()?;
    let members = api.admin.cluster_members();
    let member = members
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(member_json(&api, member)))
}

async fn cluster_name(State(api): State<Api>, _: User) -> Json<Value> {
    Json(json!({"name": api.admin.cluster_name()}))
}

#[derive(serde::Deserialize)]
struct ClusterName {
    name: Option<String>,
}

/// Administrators name the cluster; RabbitMQ answers 204.
async fn set_cluster_name(State(api): State<Api>, user: User, body: axum::body::Bytes) -> ApiResult<StatusCode> {
    user.require_admin()?;
    let body: ClusterName = crate::body::parse(&body)?;
    let name = body.name.ok_or_else(|| ApiError::bad_request("[{key_missing,name}]"))?;
    api.admin.set_cluster_name(&name)?;
    Ok(StatusCode::NO_CONTENT)
}
