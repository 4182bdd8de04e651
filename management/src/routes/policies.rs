//! `/api/policies` and `/api/operator-policies`: list, show, set and
//! clear policies (policymakers and administrators).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use warren_broker::PolicyView;

use crate::auth::User;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::listing;
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/policies", get(|s, u, q| list(s, u, q, false)))
        .route("/api/policies/{vhost}", get(|s, u, p, q| list_vhost(s, u, p, q, false)))
        .route(
            "/api/policies/{vhost}/{name}",
            get(|s, u, p| show(s, u, p, false))
                .put(|s, u, p, b| put(s, u, p, b, false))
                .delete(|s, u, p| delete(s, u, p, false)),
        )
        .route("/api/operator-policies", get(|s, u, q| list(s, u, q, true)))
        .route(
            "/api/operator-policies/{vhost}",
            get(|s, u, p, q| list_vhost(s, u, p, q, true)),
        )
        .route(
            "/api/operator-policies/{vhost}/{name}",
            get(|s, u, p| show(s, u, p, true))
                .put(|s, u, p, b| put(s, u, p, b, true))
                .delete(|s, u, p| delete(s, u, p, true)),
        )
}

pub(crate) fn render(p: &PolicyView) -> Value {
    json!({
        "vhost": p.vhost, "name": p.name, "pattern": p.pattern,
        "apply-to": p.apply_to, "definition": p.definition, "priority": p.priority,
    })
}

/// Operator policies are the administrators'; policies the policymakers'.
fn may_change(user: &User, api: &Api, vhost: &str, operator: bool) -> ApiResult<()> {
    if operator {
        return user.require_admin();
    }
    user.require_policymaker(api, vhost)
}

async fn list(
    State(api): State<Api>,
    user: User,
    Query(query): Query<listing::Query>,
    operator: bool,
) -> ApiResult<Json<Value>> {
    let items = api
        .admin
        .policies(operator, None)?
        .iter()
        .filter(|p| user.sees_vhost(&api, &p.vhost))
        .map(render)
        .collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn list_vhost(
    State(api): State<Api>,
    user: User,
    Path(vhost): Path<String>,
    Query(query): Query<listing::Query>,
    operator: bool,
) -> ApiResult<Json<Value>> {
    let policies = api.admin.policies(operator, Some(&vhost))?;
    user.require_sees_vhost(&api, &vhost)?;
    let items = policies.iter().map(render).collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn show(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    operator: bool,
) -> ApiResult<Json<Value>> {
    let p = api.admin.policy(operator, &vhost, &name)?;
    user.require_sees_vhost(&api, &vhost)?;
    Ok(Json(render(&p)))
}

#[derive(Deserialize)]
struct PolicyBody {
    pattern: Option<String>,
    definition: Option<Map<String, Value>>,
    #[serde(default)]
    priority: Option<Value>,
    #[serde(rename = "apply-to")]
    apply_to: Option<String>,
}

async fn put(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
    operator: bool,
) -> ApiResult<StatusCode> {
    if api.admin.vhost_view(&vhost).is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "vhost_not_found"));
    }
    may_change(&user, &api, &vhost, operator)?;
    let body: PolicyBody = body::parse(&bytes)?;
    let missing_flags = [
        ("pattern", body.pattern.is_none()),
        ("definition", body.definition.is_none()),
    ];
    let (Some(pattern), Some(definition)) = (body.pattern, body.definition) else {
        let missing: Vec<&str> = missing_flags
            .iter()
            .filter(|(_, missing)| *missing)
            .map(|(key, _)| *key)
            .collect();
        let terms: Vec<String> = missing.iter().map(|k| format!("{{key_missing,{k}}}")).collect();
        return Err(ApiError::bad_request(format!("[{}]", terms.join(","))));
    };
    let priority = match body.priority {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("priority must be an integer"))?,
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| ApiError::bad_request("priority must be an integer"))?,
        Some(_) => return Err(ApiError::bad_request("priority must be an integer")),
    };
    let created = api
        .admin
        .put_policy(
            operator,
            &vhost,
            &name,
            &pattern,
            body.apply_to.as_deref(),
            priority,
            definition,
        )
        .map_err(|e| match e {
            // RabbitMQ escapes the Erlang terms of a policy's validation
            // error as HTML (not an operator policy's).
            warren_broker::AdminError::BadRequest(reason) if !operator => {
                ApiError::bad_request(reason.replace('<', "&lt;").replace('>', "&gt;"))
            }
            other => other.into(),
        })?;
    Ok(super::created(created))
}

async fn delete(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    operator: bool,
) -> ApiResult<StatusCode> {
    may_change(&user, &api, &vhost, operator)?;
    api.admin.delete_policy(operator, &vhost, &name)?;
    Ok(StatusCode::NO_CONTENT)
}
