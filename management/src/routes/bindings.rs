//! `/api/bindings`: list bindings, and create, show and delete the ones
//! between an exchange and a queue (`/e/{x}/q/{q}`) or another exchange
//! (`/e/{x}/e/{y}`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value};
use warren_broker::DestinationKind;

use crate::auth::User;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::listing;
use crate::render;
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/bindings", get(list_all))
        .route("/api/bindings/{vhost}", get(list_vhost))
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{destination}",
            get(between).post(create),
        )
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{destination}/{props}",
            get(show).delete(remove),
        )
}

fn kind(letter: &str) -> ApiResult<DestinationKind> {
    match letter {
        "q" => Ok(DestinationKind::Queue),
        "e" => Ok(DestinationKind::Exchange),
        _ => Err(ApiError::not_found()),
    }
}

fn source_name(name: String) -> String {
    if name == "amq.default" {
        String::new()
    } else {
        name
    }
}

async fn list_all(State(api): State<Api>, user: User, Query(query): Query<listing::Query>) -> ApiResult<Json<Value>> {
    let items = api
        .admin
        .bindings(None)?
        .iter()
        .filter(|b| user.sees_vhost(&api, &b.vhost))
        .map(render::binding)
        .collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn list_vhost(
    State(api): State<Api>,
    user: User,
    Path(vhost): Path<String>,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    let bindings = api.admin.bindings(Some(&vhost))?;
    user.require_sees_vhost(&api, &vhost)?;
    let items = bindings.iter().map(render::binding).collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn between(
    State(api): State<Api>,
    user: User,
    Path((vhost, source, letter, destination)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let kind = kind(&letter)?;
    user.require_sees_vhost(&api, &vhost)?;
    let items: Vec<Value> = api
        .admin
        .bindings_between(&vhost, &source_name(source), kind, &destination)?
        .iter()
        .map(render::binding)
        .collect();
    Ok(Json(Value::Array(items)))
}

#[derive(Deserialize)]
struct BindingBody {
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    arguments: Map<String, Value>,
}

async fn create(
    State(api): State<Api>,
    user: User,
    Path((vhost, source, letter, destination)): Path<(String, String, String, String)>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let kind = kind(&letter)?;
    let body: BindingBody = body::parse(&bytes)?;
    user.require_vhost(&api, &vhost)?;
    let queue = kind == DestinationKind::Queue;
    api.admin.check(user.name(), &vhost, "write", queue, &destination)?;
    api.admin.check(user.name(), &vhost, "read", false, &source)?;
    let key = api.admin.bind(
        &vhost,
        &source_name(source),
        kind,
        &destination,
        &body.routing_key,
        &body.arguments,
    )?;
    // As RabbitMQ: the new binding's address, relative to this one's
    // (its last segment is the properties key).
    let location = format!("{}/{key}", percent_segment(&destination));
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

/// Percent-encodes a path segment.
fn percent_segment(text: &str) -> String {
    /// RFC 3986's unreserved characters stay as they are.
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

async fn show(
    State(api): State<Api>,
    user: User,
    Path((vhost, source, letter, destination, props)): Path<(String, String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let kind = kind(&letter)?;
    user.require_sees_vhost(&api, &vhost)?;
    let binding = api
        .admin
        .bindings_between(&vhost, &source_name(source), kind, &destination)?
        .into_iter()
        .find(|b| b.properties_key == props || percent_decoded_equals(&b.properties_key, &props))
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(render::binding(&binding)))
}

/// Whether a properties key (percent-encoded) is `decoded` once decoded
/// (axum hands path segments over decoded).
fn percent_decoded_equals(key: &str, decoded: &str) -> bool {
    percent_encoding::percent_decode_str(key).eq(decoded.bytes())
}

async fn remove(
    State(api): State<Api>,
    user: User,
    Path((vhost, source, letter, destination, props)): Path<(String, String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let kind = kind(&letter)?;
    user.require_vhost(&api, &vhost)?;
    let queue = kind == DestinationKind::Queue;
    api.admin.check(user.name(), &vhost, "write", queue, &destination)?;
    api.admin.check(user.name(), &vhost, "read", false, &source)?;
    let source = source_name(source);
    let key = api
        .admin
        .bindings_between(&vhost, &source, kind, &destination)?
        .into_iter()
        .map(|b| b.properties_key)
        .find(|k| *k == props || percent_decoded_equals(k, &props))
        .ok_or_else(ApiError::not_found)?;
    api.admin.unbind(&vhost, &source, kind, &destination, &key)?;
    Ok(StatusCode::NO_CONTENT)
}
