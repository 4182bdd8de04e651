//! `/api/definitions`: export and import RabbitMQ definitions, for the
//! whole node or one vhost.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::auth::User;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/definitions", get(export_all).post(import_all))
        .route("/api/definitions/{vhost}", get(export_vhost).post(import_vhost))
}

async fn export_all(State(api): State<Api>, user: User) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    Ok(Json(api.admin.export_definitions(None)?))
}

async fn export_vhost(State(api): State<Api>, user: User, Path(vhost): Path<String>) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    api.admin.vhost_view(&vhost).ok_or_else(ApiError::not_found)?;
    Ok(Json(api.admin.export_definitions(Some(&vhost))?))
}

/// The document itself, or the UI's form field wrapping it.
fn document(bytes: &Bytes) -> ApiResult<Value> {
    let value: Value = body::parse(bytes)?;
    match value.get("file").and_then(Value::as_str) {
        Some(text) => serde_json::from_str(text).map_err(|e| ApiError::bad_request(e.to_string())),
        None => Ok(value),
    }
}

async fn import_all(State(api): State<Api>, user: User, bytes: Bytes) -> ApiResult<StatusCode> {
    user.require_admin()?;
    let document = document(&bytes)?;
    let admin = api.admin.clone();
    tokio::task::spawn_blocking(move || admin.import_definitions(&document, None))
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn import_vhost(
    State(api): State<Api>,
    user: User,
    Path(vhost): Path<String>,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    user.require_admin()?;
    api.admin.vhost_view(&vhost).ok_or_else(ApiError::not_found)?;
    let document = document(&bytes)?;
    let admin = api.admin.clone();
    tokio::task::spawn_blocking(move || admin.import_definitions(&document, Some(&vhost)))
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}
