//! `/api/health/checks/...` and `/api/aliveness-test/{vhost}`: what
//! Kubernetes probes and monitoring call. 200 `{"status":"ok"}` when
//! healthy, 503 `{"status":"failed","reason":...}` when not.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::auth::User;
use crate::error::{ApiError, ApiResult};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/health/checks/alarms", get(alarms))
        .route("/api/health/checks/local-alarms", get(alarms))
        .route("/api/health/checks/port-listener/{port}", get(port_listener))
        .route(
            "/api/health/checks/protocol-listener/{protocol}",
            get(protocol_listener),
        )
        .route("/api/health/checks/virtual-hosts", get(ok))
        .route("/api/health/checks/node-is-quorum-critical", get(single_node))
        .route("/api/health/checks/node-is-mirror-sync-critical", get(single_node))
        .route(
            "/api/health/checks/certificate-expiration/{within}/{unit}",
            get(certificate_expiration),
        )
        .route("/api/health/checks/ready-to-serve-clients", get(ready))
        .route("/api/health/checks/is-in-service", get(ok))
        .route("/api/aliveness-test/{vhost}", get(aliveness))
}

fn healthy() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

fn failed(reason: String, extra: Map<String, Value>) -> Response {
    let mut body = Map::new();
    body.insert("status".into(), "failed".into());
    body.insert("reason".into(), reason.into());
    body.extend(extra);
    (StatusCode::SERVICE_UNAVAILABLE, Json(Value::Object(body))).into_response()
}

async fn ok(_: User) -> Response {
    healthy()
}

/// A single node has no quorum or mirrors to lose: RabbitMQ says so.
async fn single_node(_: User) -> Response {
    Json(json!({"status": "ok", "reason": "single node cluster"})).into_response()
}

/// Whether a TLS certificate in use (the server's, the CA bundle's)
/// expires within the period: 503 naming those that do.
async fn certificate_expiration(
    State(api): State<Api>,
    _: User,
    Path((within, unit)): Path<(String, String)>,
) -> Response {
    let days: i64 = match unit.as_str() {
        "days" => 1,
        "weeks" => 7,
        "months" => 30,
        "years" => 365,
        _ => {
            return ApiError::bad_request("Time unit not recognised. Supported units: days, weeks, months, years.")
                .into_response()
        }
    };
    let Ok(within) = within.parse::<i64>() else {
        return ApiError::bad_request("Time period must be a positive integer.").into_response();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let deadline = now.saturating_add(within.saturating_mul(days * 86_400));
    match api.admin.certificates_expiring_before(deadline) {
        Ok(expiring) if expiring.is_empty() => healthy(),
        Ok(expiring) => {
            let mut extra = Map::new();
            let listed: Vec<Value> = expiring
                .iter()
                .map(|(subject, at)| json!({"subject": subject, "expires_at": at}))
                .collect();
            extra.insert("expired".into(), Value::Array(listed));
            failed("Certificates expiring".into(), extra)
        }
        Err(e) => failed(format!("the certificates could not be read: {e}"), Map::new()),
    }
}

async fn alarms(State(api): State<Api>, _: User) -> Response {
    let node = api.admin.node();
    let mut raised = Vec::new();
    if node.memory_alarm {
        raised.push(json!({"node": &*api.node, "resource": "memory"}));
    }
    if node.disk_alarm {
        raised.push(json!({"node": &*api.node, "resource": "disk"}));
    }
    if raised.is_empty() {
        return healthy();
    }
    let mut extra = Map::new();
    extra.insert("alarms".into(), Value::Array(raised));
    failed("resource alarm(s) in effect".into(), extra)
}

async fn ready(State(api): State<Api>, _: User) -> Response {
    if api.admin.amqp_listeners().is_empty() {
        return failed("no AMQP listener".into(), Map::new());
    }
    healthy()
}

async fn port_listener(State(api): State<Api>, _: User, Path(port): Path<String>) -> Response {
    let mut ports: Vec<u16> = api.admin.amqp_listeners().iter().map(|a| a.port()).collect();
    ports.push(api.http_port);
    match port.parse::<u16>() {
        Ok(p) if ports.contains(&p) => healthy(),
        _ => {
            let mut extra = Map::new();
            extra.insert("missing".into(), port.clone().into());
            extra.insert("ports".into(), json!(ports));
            failed(format!("No active listener on port {port}"), extra)
        }
    }
}

async fn protocol_listener(State(api): State<Api>, _: User, Path(protocol): Path<String>) -> Response {
    let amqp = ["amqp", "amqp091", "amqp0-9-1", "amqp0.9.1"];
    if protocol == "http" || amqp.contains(&protocol.as_str()) && !api.admin.amqp_listeners().is_empty() {
        return healthy();
    }
    let mut extra = Map::new();
    extra.insert("missing".into(), protocol.clone().into());
    extra.insert("protocols".into(), json!(["amqp", "http"]));
    failed(format!("No active listener for protocol {protocol}"), extra)
}

/// Declares `aliveness-test` in the vhost, publishes to it and gets the
/// message back, as RabbitMQ's aliveness test does.
async fn aliveness(State(api): State<Api>, user: User, Path(vhost): Path<String>) -> ApiResult<Response> {
    // A vhost that does not exist is 404, before any permission question.
    if api.admin.vhost_view(&vhost).is_none() {
        return Err(ApiError::not_found());
    }
    user.require_vhost(&api, &vhost)?;
    const QUEUE: &str = "aliveness-test";
    api.admin.declare_queue(&vhost, QUEUE, false, false, &Map::new())?;
    let request = warren_broker::PublishRequest {
        routing_key: QUEUE.into(),
        payload: b"test_message".to_vec(),
        properties: Map::new(),
    };
    api.admin.publish(&vhost, "", request)?;
    let got = api
        .admin
        .get_messages(&vhost, QUEUE, 1, warren_broker::AckMode::Ack, false, None)?;
    if got.iter().any(|(m, _)| m.payload == b"test_message") {
        Ok(healthy())
    } else {
        Ok(failed("aliveness test failed".into(), Map::new()))
    }
}
