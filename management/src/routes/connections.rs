//! `/api/connections`: list, show and close connections.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::auth::User;
use crate::error::{ApiError, ApiResult};
use crate::listing;
use crate::render;
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/connections", get(list_all))
        .route("/api/connections/{name}", get(show).delete(close))
        .route("/api/vhosts/{vhost}/connections", get(list_vhost))
        .route("/api/connections/username/{user}", get(list_user).delete(close_user))
}

/// Monitoring users see every connection, others their own.
fn visible(api: &Api, user: &User) -> Vec<Value> {
    api.admin
        .connections()
        .iter()
        .filter(|c| user.sees_everything() || c.user == user.name())
        .map(|c| render::connection(c, &api.node, api.rates.connection(&c.name)))
        .collect()
}

async fn list_all(State(api): State<Api>, user: User, Query(query): Query<listing::Query>) -> ApiResult<Json<Value>> {
    Ok(Json(listing::respond(visible(&api, &user), &query)?))
}

async fn list_vhost(
    State(api): State<Api>,
    user: User,
    Path(vhost): Path<String>,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    api.admin.vhost_view(&vhost).ok_or_else(ApiError::not_found)?;
    let items = visible(&api, &user)
        .into_iter()
        .filter(|c| c["vhost"] == vhost.as_str())
        .collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn list_user(State(api): State<Api>, user: User, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    if !user.sees_everything() && name != user.name() {
        return Err(ApiError::unauthorized("Not monitor user"));
    }
    let items: Vec<Value> = visible(&api, &user)
        .into_iter()
        .filter(|c| c["user"] == name.as_str())
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn close_user(
    State(api): State<Api>,
    user: User,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    if !user.is_admin() && name != user.name() {
        return Err(ApiError::unauthorized("Not administrator user"));
    }
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Closed via management plugin");
    for c in api.admin.connections().iter().filter(|c| c.user == name) {
        api.admin.close_connection(&c.name, reason)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn show(State(api): State<Api>, user: User, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let c = api.admin.connection(&name)?;
    if !user.sees_everything() && c.user != user.name() {
        return Err(ApiError::unauthorized("Not monitor user"));
    }
    Ok(Json(render::connection(&c, &api.node, api.rates.connection(&c.name))))
}

/// Closes with 320 and the `X-Reason` header's text (RabbitMQ's default
/// "Closed via management plugin").
async fn close(
    State(api): State<Api>,
    user: User,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let c = api.admin.connection(&name)?;
    if !user.is_admin() && c.user != user.name() {
        return Err(ApiError::unauthorized("Not administrator user"));
    }
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Closed via management plugin");
    api.admin.close_connection(&name, reason)?;
    Ok(StatusCode::NO_CONTENT)
}
