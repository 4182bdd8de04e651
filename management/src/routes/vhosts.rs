//! `/api/vhosts`: list, show, create and delete vhosts.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::User;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::listing;
use crate::rates::QueueRates;
use crate::render;
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/vhosts", get(list))
        .route("/api/vhosts/{vhost}", get(show).put(put).delete(delete))
}

fn vhost_json(api: &Api, v: &warren_broker::VhostView) -> Value {
    let queues = api.admin.queues(Some(&v.name)).unwrap_or_default();
    let ready = queues.iter().map(|q| q.messages_ready).sum();
    let unacked = queues.iter().map(|q| q.messages_unacknowledged).sum();
    let mut rates = QueueRates::default();
    for q in &queues {
        let r = api.rates.queue(&q.vhost, &q.name);
        rates.messages += r.messages;
        rates.messages_ready += r.messages_ready;
        rates.messages_unacknowledged += r.messages_unacknowledged;
    }
    render::vhost(v, &api.node, ready, unacked, &rates)
}

async fn list(State(api): State<Api>, user: User, Query(query): Query<listing::Query>) -> ApiResult<Json<Value>> {
    let items = api
        .admin
        .vhosts()
        .iter()
        .filter(|v| user.sees_vhost(&api, &v.name))
        .map(|v| vhost_json(&api, v))
        .collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn show(State(api): State<Api>, user: User, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let v = api.admin.vhost_view(&name).ok_or_else(ApiError::not_found)?;
    user.require_sees_vhost(&api, &name)?;
    Ok(Json(vhost_json(&api, &v)))
}

#[derive(Deserialize)]
struct VhostBody {
    description: Option<String>,
    /// A list, or a comma-separated string (older clients).
    tags: Option<Value>,
    default_queue_type: Option<String>,
}

async fn put(State(api): State<Api>, user: User, Path(name): Path<String>, bytes: Bytes) -> ApiResult<StatusCode> {
    user.require_admin()?;
    let body: VhostBody = body::parse(&bytes)?;
    let tags = body.tags.map(|t| match t {
        Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(String::from)).collect(),
        Value::String(s) => s
            .split(',')
            .map(|w| w.trim().to_string())
            .filter(|w| !w.is_empty())
            .collect(),
        _ => Vec::new(),
    });
    let created = api.admin.put_vhost(
        &name,
        body.description,
        tags,
        body.default_queue_type,
        Some(user.name()),
    )?;
    Ok(super::created(created))
}

async fn delete(State(api): State<Api>, user: User, Path(name): Path<String>) -> ApiResult<StatusCode> {
    user.require_admin()?;
    api.admin.delete_vhost(&name)?;
    Ok(StatusCode::NO_CONTENT)
}
