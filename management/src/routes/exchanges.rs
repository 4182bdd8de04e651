//! `/api/exchanges`: list, show, declare and delete exchanges, publish to
//! them, and list the bindings from and to them.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use warren_broker::{DestinationKind, PublishRequest};

use crate::auth::User;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::listing;
use crate::render;
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/exchanges", get(list_all))
        .route("/api/exchanges/{vhost}", get(list_vhost))
        .route("/api/exchanges/{vhost}/{name}", get(show).put(put).delete(remove))
        .route("/api/exchanges/{vhost}/{name}/publish", post(publish))
        .route("/api/exchanges/{vhost}/{name}/bindings/source", get(bindings_from))
        .route("/api/exchanges/{vhost}/{name}/bindings/destination", get(bindings_to))
}

/// The default exchange is named "amq.default" in paths.
fn exchange_name(name: String) -> String {
    if name == "amq.default" {
        String::new()
    } else {
        name
    }
}

async fn list_all(State(api): State<Api>, user: User, Query(query): Query<listing::Query>) -> ApiResult<Json<Value>> {
    let items = api
        .admin
        .exchanges(None)?
        .iter()
        .filter(|x| user.sees_vhost(&api, &x.vhost))
        .map(render::exchange)
        .collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn list_vhost(
    State(api): State<Api>,
    user: User,
    Path(vhost): Path<String>,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    let exchanges = api.admin.exchanges(Some(&vhost))?;
    user.require_sees_vhost(&api, &vhost)?;
    let items = exchanges.iter().map(render::exchange).collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn show(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    let x = api.admin.exchange(&vhost, &exchange_name(name))?;
    user.require_sees_vhost(&api, &vhost)?;
    Ok(Json(listing::one(render::exchange(&x), &query)))
}

#[derive(Deserialize)]
struct ExchangeBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "body::flexible_bool")]
    durable: Option<bool>,
    #[serde(default, deserialize_with = "body::flexible_bool")]
    auto_delete: Option<bool>,
    #[serde(default, deserialize_with = "body::flexible_bool")]
    internal: Option<bool>,
    #[serde(default)]
    arguments: Map<String, Value>,
}

async fn put(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    let body: ExchangeBody = body::parse(&bytes)?;
    api.admin.vhost_view(&vhost).ok_or_else(ApiError::not_found)?;
    user.require_vhost(&api, &vhost)?;
    api.admin.check(user.name(), &vhost, "configure", false, &name)?;
    let kind = body.kind.unwrap_or_else(|| "direct".into());
    let created = api.admin.declare_exchange(
        &vhost,
        &name,
        &kind,
        body.durable.unwrap_or(true),
        body.auto_delete.unwrap_or(false),
        body.internal.unwrap_or(false),
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
    api.admin.check(user.name(), &vhost, "configure", false, &name)?;
    let if_unused = query.get("if-unused").is_some_and(|v| v == "true");
    api.admin.delete_exchange(&vhost, &exchange_name(name), if_unused)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct PublishBody {
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    payload_encoding: Option<String>,
    #[serde(default)]
    properties: Map<String, Value>,
}

async fn publish(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    let body: PublishBody = body::parse(&bytes)?;
    let name = exchange_name(name);
    user.require_vhost(&api, &vhost)?;
    api.admin.check(user.name(), &vhost, "write", false, &name)?;
    let payload = match body.payload_encoding.as_deref() {
        None | Some("string") => body.payload.into_bytes(),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(body.payload.as_bytes())
            .map_err(|e| ApiError::bad_request(format!("payload is not base64: {e}")))?,
        Some(other) => return Err(ApiError::bad_request(format!("Unsupported payload_encoding: {other}"))),
    };
    let routed = api.admin.publish(
        &vhost,
        &name,
        PublishRequest {
            routing_key: body.routing_key,
            payload,
            properties: body.properties,
        },
    )?;
    Ok(Json(json!({ "routed": routed })))
}

async fn bindings_from(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let name = exchange_name(name);
    api.admin.exchange(&vhost, &name)?;
    user.require_sees_vhost(&api, &vhost)?;
    let items: Vec<Value> = api
        .admin
        .bindings(Some(&vhost))?
        .iter()
        .filter(|b| b.source == name)
        .map(render::binding)
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn bindings_to(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let name = exchange_name(name);
    api.admin.exchange(&vhost, &name)?;
    user.require_sees_vhost(&api, &vhost)?;
    let items: Vec<Value> = api
        .admin
        .bindings(Some(&vhost))?
        .iter()
        .filter(|b| b.destination_kind == DestinationKind::Exchange && b.destination == name)
        .map(render::binding)
        .collect();
    Ok(Json(Value::Array(items)))
}
