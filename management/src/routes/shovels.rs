//! Dynamic shovels: `/api/parameters/shovel/...` (define, show, delete, as
//! runtime parameters) and `/api/shovels/...` (their status, delete and
//! restart), as RabbitMQ 3.10's shovel management plugin answers.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{Datelike, Timelike};
use serde_json::{json, Map, Value};
use warren_broker::{ShovelState, ShovelView};

use crate::auth::User;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::listing;
use crate::state::Api;

/// The one runtime-parameter component Warren has.
const SHOVEL: &str = "shovel";

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/parameters", get(list_parameters))
        .route("/api/parameters/{component}", get(list_component))
        .route("/api/parameters/{component}/{vhost}", get(list_component_vhost))
        .route(
            "/api/parameters/{component}/{vhost}/{name}",
            get(show_parameter).put(put_parameter).delete(delete_parameter),
        )
        .route("/api/shovels", get(list_shovels))
        .route("/api/shovels/{vhost}", get(list_vhost_shovels))
        .route(
            "/api/shovels/vhost/{vhost}/{name}",
            get(show_shovel).delete(delete_parameter_of_shovel),
        )
        .route("/api/shovels/vhost/{vhost}/{name}/restart", delete(restart_shovel))
}

/// A time as RabbitMQ's shovel status writes it: `2026-12-02 0:38:49`.
fn status_time(time: std::time::SystemTime) -> String {
    let t: chrono::DateTime<chrono::Utc> = time.into();
    format!(
        "{}-{:02}-{:02} {}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn render_status(api: &Api, s: &ShovelView) -> Value {
    let mut out = Map::new();
    out.insert("node".into(), api.node.as_ref().into());
    out.insert("timestamp".into(), status_time(s.since).into());
    out.insert("name".into(), s.name.clone().into());
    out.insert("vhost".into(), s.vhost.clone().into());
    out.insert("type".into(), "dynamic".into());
    out.insert("state".into(), s.state.as_str().into());
    if let ShovelState::Terminated(reason) = &s.state {
        out.insert("reason".into(), reason.clone().into());
    }
    for end in ["src", "dest"] {
        let uri = s.value.get(&format!("{end}-uri")).cloned().unwrap_or(Value::Null);
        let uri = match uri {
            Value::Array(mut uris) if !uris.is_empty() => uris.swap_remove(0),
            other => other,
        };
        out.insert(format!("{end}_uri"), uri);
        let protocol = s.value.get(&format!("{end}-protocol")).cloned();
        out.insert(format!("{end}_protocol"), protocol.unwrap_or_else(|| "amqp091".into()));
        for key in ["queue", "exchange", "exchange-key"] {
            if let Some(v) = s.value.get(&format!("{end}-{key}")) {
                out.insert(format!("{end}_{}", key.replace('-', "_")), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn render_parameter(s: &ShovelView) -> Value {
    json!({ "value": s.value, "vhost": s.vhost, "component": SHOVEL, "name": s.name })
}

fn visible(api: &Api, user: &User, vhost: Option<&str>) -> ApiResult<Vec<ShovelView>> {
    if let Some(v) = vhost {
        user.require_sees_vhost(api, v)?;
    }
    Ok(api
        .admin
        .shovels(vhost)?
        .into_iter()
        .filter(|s| user.sees_vhost(api, &s.vhost))
        .collect())
}

async fn list_parameters(
    State(api): State<Api>,
    user: User,
    Query(q): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    let items = visible(&api, &user, None)?.iter().map(render_parameter).collect();
    Ok(Json(listing::respond(items, &q)?))
}

async fn list_component(
    State(api): State<Api>,
    user: User,
    Path(component): Path<String>,
    Query(q): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    let items = if component == SHOVEL {
        visible(&api, &user, None)?.iter().map(render_parameter).collect()
    } else {
        Vec::new()
    };
    Ok(Json(listing::respond(items, &q)?))
}

async fn list_component_vhost(
    State(api): State<Api>,
    user: User,
    Path((component, vhost)): Path<(String, String)>,
    Query(q): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    let shovels = visible(&api, &user, Some(&vhost))?;
    let items = if component == SHOVEL {
        shovels.iter().map(render_parameter).collect()
    } else {
        Vec::new()
    };
    Ok(Json(listing::respond(items, &q)?))
}

async fn show_parameter(
    State(api): State<Api>,
    user: User,
    Path((component, vhost, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    if component != SHOVEL {
        return Err(ApiError::not_found());
    }
    let shovel = api.admin.shovel(&vhost, &name)?;
    user.require_sees_vhost(&api, &vhost)?;
    Ok(Json(render_parameter(&shovel)))
}

async fn put_parameter(
    State(api): State<Api>,
    user: User,
    Path((component, vhost, name)): Path<(String, String, String)>,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    if api.admin.vhost_view(&vhost).is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "vhost_not_found"));
    }
    user.require_policymaker(&api, &vhost)?;
    let body: Map<String, Value> = body::parse(&bytes)?;
    let Some(value) = body.get("value") else {
        return Err(ApiError::bad_request("[{key_missing,value}]"));
    };
    if component != SHOVEL {
        return Err(ApiError::bad_request(format!(
            "Validation failed\n\ncomponent {component} not found\n"
        )));
    }
    let created = api.admin.put_shovel(&vhost, &name, value).map_err(|e| match e {
        // RabbitMQ escapes the Erlang terms of validation errors as HTML.
        warren_broker::AdminError::BadRequest(reason) => {
            ApiError::bad_request(reason.replace('<', "&lt;").replace('>', "&gt;"))
        }
        other => other.into(),
    })?;
    Ok(super::created(created))
}

async fn delete_parameter(
    State(api): State<Api>,
    user: User,
    Path((component, vhost, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    if component != SHOVEL {
        return Err(ApiError::not_found());
    }
    user.require_policymaker(&api, &vhost)?;
    api.admin.delete_shovel(&vhost, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_shovels(State(api): State<Api>, user: User, Query(q): Query<listing::Query>) -> ApiResult<Json<Value>> {
    let items = visible(&api, &user, None)?
        .iter()
        .map(|s| render_status(&api, s))
        .collect();
    Ok(Json(listing::respond(items, &q)?))
}

async fn list_vhost_shovels(
    State(api): State<Api>,
    user: User,
    Path(vhost): Path<String>,
    Query(q): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    let items = visible(&api, &user, Some(&vhost))?
        .iter()
        .map(|s| render_status(&api, s))
        .collect();
    Ok(Json(listing::respond(items, &q)?))
}

/// One shovel's status; RabbitMQ 3.10 answers it as a list of one.
async fn show_shovel(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let shovel = api.admin.shovel(&vhost, &name)?;
    user.require_sees_vhost(&api, &vhost)?;
    Ok(Json(json!([render_status(&api, &shovel)])))
}

async fn delete_parameter_of_shovel(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    user.require_policymaker(&api, &vhost)?;
    api.admin.delete_shovel(&vhost, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart_shovel(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    user.require_policymaker(&api, &vhost)?;
    api.admin.restart_shovel(&vhost, &name)?;
    Ok(StatusCode::NO_CONTENT)
}
