//! `/api/queues`: list, show, declare, delete and purge queues, get
//! messages from them, and list their bindings.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use warren_broker::{AckMode, DestinationKind};

use crate::auth::User;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::listing;
use crate::render;
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/queues", get(list_all))
        .route("/api/queues/{vhost}", get(list_vhost))
        .route("/api/queues/{vhost}/{name}", get(show).put(put).delete(remove))
        .route("/api/queues/{vhost}/{name}/contents", delete(purge))
        .route("/api/queues/{vhost}/{name}/get", post(get_messages))
        .route("/api/queues/{vhost}/{name}/bindings", get(bindings))
}

fn queue_json(api: &Api, q: &warren_broker::QueueView) -> Value {
    let mut out = render::queue(q, &api.node, &api.rates.queue(&q.vhost, &q.name));
    if let (Some(since), Some(map)) = (api.rates.idle_since(&q.vhost, &q.name), out.as_object_mut()) {
        map.insert("idle_since".into(), render::timestamp(since).into());
    }
    out
}

async fn list_all(State(api): State<Api>, user: User, Query(query): Query<listing::Query>) -> ApiResult<Json<Value>> {
    let items = api
        .admin
        .queues(None)?
        .iter()
        .filter(|q| user.sees_vhost(&api, &q.vhost))
        .map(|q| queue_json(&api, q))
        .collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn list_vhost(
    State(api): State<Api>,
    user: User,
    Path(vhost): Path<String>,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    let queues = api.admin.queues(Some(&vhost))?;
    user.require_sees_vhost(&api, &vhost)?;
    let items = queues.iter().map(|q| queue_json(&api, q)).collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn show(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    let q = api.admin.queue(&vhost, &name)?;
    user.require_sees_vhost(&api, &vhost)?;
    let mut out = queue_json(&api, &q);
    // One queue's page also lists its consumers, as RabbitMQ's does.
    let timeout = api.admin.consumer_timeout_ms();
    let consumers: Vec<Value> = api
        .admin
        .consumers(Some(&vhost))?
        .iter()
        .filter(|c| c.queue == name)
        .map(|c| render::consumer(c, &api.node, timeout))
        .collect();
    if let Some(map) = out.as_object_mut() {
        map.insert("consumer_details".into(), Value::Array(consumers));
    }
    Ok(Json(listing::one(out, &query)))
}

#[derive(Deserialize)]
struct QueueBody {
    #[serde(default, deserialize_with = "body::flexible_bool")]
    durable: Option<bool>,
    #[serde(default, deserialize_with = "body::flexible_bool")]
    auto_delete: Option<bool>,
    #[serde(default)]
    arguments: Map<String, Value>,
}

async fn put(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    let body: QueueBody = body::parse(&bytes)?;
    api.admin.vhost_view(&vhost).ok_or_else(ApiError::not_found)?;
    user.require_vhost(&api, &vhost)?;
    api.admin.check(user.name(), &vhost, "configure", true, &name)?;
    let created = api.admin.declare_queue(
        &vhost,
        &name,
        body.durable.unwrap_or(true),
        body.auto_delete.unwrap_or(false),
        &body.arguments,
    )?;
    Ok(super::created(created))
}

async fn remove(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    Query(query): Query<listing::Query>,
) -> ApiResult<StatusCode> {
    user.require_vhost(&api, &vhost)?;
    api.admin.check(user.name(), &vhost, "configure", true, &name)?;
    let flag = |key: &str| query.get(key).is_some_and(|v| v == "true");
    api.admin
        .delete_queue(&vhost, &name, flag("if-empty"), flag("if-unused"))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn purge(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    user.require_vhost(&api, &vhost)?;
    api.admin.check(user.name(), &vhost, "read", true, &name)?;
    api.admin.purge_queue(&vhost, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct GetBody {
    count: Option<Value>,
    ackmode: Option<String>,
    /// Older clients send `requeue` instead of `ackmode`.
    requeue: Option<Value>,
    encoding: Option<String>,
    truncate: Option<Value>,
}

fn number(value: &Option<Value>) -> Option<u64> {
    match value.as_ref()? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

async fn get_messages(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    let body: GetBody = body::parse(&bytes)?;
    user.require_vhost(&api, &vhost)?;
    api.admin.check(user.name(), &vhost, "read", true, &name)?;
    let count = number(&body.count).unwrap_or(1) as usize;
    let ack_mode = match (&body.ackmode, &body.requeue) {
        (Some(mode), _) => mode.parse::<AckMode>().map_err(ApiError::bad_request)?,
        (None, Some(Value::Bool(false))) => AckMode::Ack,
        (None, Some(Value::String(s))) if s == "false" => AckMode::Ack,
        (None, _) => AckMode::AckRequeue,
    };
    let base64 = match body.encoding.as_deref() {
        None | Some("auto") => false,
        Some("base64") => true,
        Some(other) => return Err(ApiError::bad_request(format!("Unsupported encoding: {other}"))),
    };
    let truncate = number(&body.truncate).map(|t| t as usize);
    let messages = api
        .admin
        .get_messages(&vhost, &name, count.min(10_000), ack_mode, base64, truncate)?;
    let items: Vec<Value> = messages
        .into_iter()
        .map(|(m, encoding)| {
            let payload = String::from_utf8(m.payload)
                .unwrap_or_else(|e| base64::engine::general_purpose::STANDARD.encode(e.into_bytes()));
            // No properties are an empty list in RabbitMQ's answer (an
            // empty Erlang property list), which clients show as a column.
            let properties = if m.properties.is_empty() {
                json!([])
            } else {
                Value::Object(m.properties)
            };
            json!({
                "payload_bytes": m.payload_bytes, "redelivered": m.redelivered,
                "exchange": m.exchange, "routing_key": m.routing_key,
                "message_count": m.message_count, "properties": properties,
                "payload": payload, "payload_encoding": encoding,
            })
        })
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn bindings(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    api.admin.queue(&vhost, &name)?;
    user.require_sees_vhost(&api, &vhost)?;
    let items: Vec<Value> = api
        .admin
        .bindings(Some(&vhost))?
        .iter()
        .filter(|b| b.destination_kind == DestinationKind::Queue && b.destination == name)
        .map(render::binding)
        .collect();
    Ok(Json(Value::Array(items)))
}
