//! `/api/vhost-limits` and `/api/user-limits`: list, set and clear limits
//! (administrators).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::auth::User;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/vhost-limits", get(|s, u| list(s, u, None, true)))
        .route(
            "/api/vhost-limits/{name}",
            get(|s, u, Path(n)| list(s, u, Some(n), true)),
        )
        .route(
            "/api/vhost-limits/{name}/{limit}",
            put(|s, u, p, b| set(s, u, p, b, true)).delete(|s, u, p| clear(s, u, p, true)),
        )
        .route("/api/user-limits", get(|s, u| list(s, u, None, false)))
        .route(
            "/api/user-limits/{name}",
            get(|s, u, Path(n)| list(s, u, Some(n), false)),
        )
        .route(
            "/api/user-limits/{name}/{limit}",
            put(|s, u, p, b| set(s, u, p, b, false)).delete(|s, u, p| clear(s, u, p, false)),
        )
}

async fn list(State(api): State<Api>, user: User, name: Option<String>, vhost: bool) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    let key = if vhost { "vhost" } else { "user" };
    let items: Vec<Value> = api
        .admin
        .limits(vhost, name.as_deref())?
        .into_iter()
        .map(|(name, limits)| {
            let value: Map<String, Value> = limits.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
            json!({ key: name, "value": value })
        })
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn set(
    State(api): State<Api>,
    user: User,
    Path((name, limit)): Path<(String, String)>,
    bytes: Bytes,
    vhost: bool,
) -> ApiResult<StatusCode> {
    user.require_admin()?;
    let body: Map<String, Value> = body::parse(&bytes)?;
    let value = body
        .get("value")
        .ok_or_else(|| ApiError::bad_request("[{key_missing,value}]"))?;
    api.admin.set_limit(vhost, &name, &limit, value)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear(
    State(api): State<Api>,
    user: User,
    Path((name, limit)): Path<(String, String)>,
    vhost: bool,
) -> ApiResult<StatusCode> {
    user.require_admin()?;
    api.admin.clear_limit(vhost, &name, &limit)?;
    Ok(StatusCode::NO_CONTENT)
}
