//! `/api/channels` and `/api/consumers`: what is open on connections.

use axum::extract::{Path, Query, State};
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
        .route("/api/channels", get(list_channels))
        .route("/api/channels/{name}", get(show_channel))
        .route("/api/vhosts/{vhost}/channels", get(channels_in_vhost))
        .route("/api/connections/{name}/channels", get(channels_of_connection))
        .route("/api/consumers", get(list_consumers))
        .route("/api/consumers/{vhost}", get(consumers_in_vhost))
}

/// Channels the user may see: all for monitoring users, else its own.
fn channels(api: &Api, user: &User, connection: Option<&str>) -> ApiResult<Vec<Value>> {
    Ok(api
        .admin
        .channels(connection)?
        .iter()
        .filter(|c| user.sees_everything() || c.user == user.name())
        .map(|c| render::channel(c, &api.node))
        .collect())
}

async fn list_channels(
    State(api): State<Api>,
    user: User,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    Ok(Json(listing::respond(channels(&api, &user, None)?, &query)?))
}

async fn show_channel(State(api): State<Api>, user: User, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    channels(&api, &user, None)?
        .into_iter()
        .find(|c| c["name"] == name.as_str())
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

async fn channels_in_vhost(
    State(api): State<Api>,
    user: User,
    Path(vhost): Path<String>,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    api.admin.vhost_view(&vhost).ok_or_else(ApiError::not_found)?;
    let items = channels(&api, &user, None)?
        .into_iter()
        .filter(|c| c["vhost"] == vhost.as_str())
        .collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn channels_of_connection(
    State(api): State<Api>,
    user: User,
    Path(name): Path<String>,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    Ok(Json(listing::respond(channels(&api, &user, Some(&name))?, &query)?))
}

fn consumers(api: &Api, user: &User, vhost: Option<&str>) -> ApiResult<Vec<Value>> {
    let timeout = api.admin.consumer_timeout_ms();
    Ok(api
        .admin
        .consumers(vhost)?
        .iter()
        .filter(|c| user.sees_vhost(api, &c.vhost))
        .map(|c| render::consumer(c, &api.node, timeout))
        .collect())
}

async fn list_consumers(
    State(api): State<Api>,
    user: User,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    Ok(Json(listing::respond(consumers(&api, &user, None)?, &query)?))
}

async fn consumers_in_vhost(
    State(api): State<Api>,
    user: User,
    Path(vhost): Path<String>,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    Ok(Json(listing::respond(consumers(&api, &user, Some(&vhost))?, &query)?))
}
