//! `/api/users`, `/api/permissions` and `/api/topic-permissions`: users and
//! what they may do (administrators only, as in RabbitMQ).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use warren_broker::PasswordSpec;

use crate::auth::User;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::listing;
use crate::render;
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/users", get(list_users))
        .route("/api/users/without-permissions", get(users_without_permissions))
        .route("/api/users/bulk-delete", post(bulk_delete))
        .route("/api/users/{user}", get(show_user).put(put_user).delete(delete_user))
        .route("/api/users/{user}/permissions", get(permissions_of_user))
        .route("/api/users/{user}/topic-permissions", get(topic_permissions_of_user))
        .route("/api/permissions", get(list_permissions))
        .route(
            "/api/permissions/{vhost}/{user}",
            get(show_permission).put(put_permission).delete(delete_permission),
        )
        .route("/api/vhosts/{vhost}/permissions", get(permissions_in_vhost))
        .route("/api/topic-permissions", get(list_topic_permissions))
        .route(
            "/api/topic-permissions/{vhost}/{user}",
            get(show_topic_permissions)
                .put(put_topic_permission)
                .delete(delete_topic_permissions),
        )
        .route("/api/vhosts/{vhost}/topic-permissions", get(topic_permissions_in_vhost))
}

async fn list_users(State(api): State<Api>, user: User, Query(query): Query<listing::Query>) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    let items = api.admin.users().iter().map(render::user).collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn users_without_permissions(State(api): State<Api>, user: User) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    let permitted: Vec<String> = api.admin.permissions().into_iter().map(|p| p.user).collect();
    let items: Vec<Value> = api
        .admin
        .users()
        .iter()
        .filter(|u| !permitted.contains(&u.name))
        .map(render::user)
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn show_user(State(api): State<Api>, user: User, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    let u = api.admin.user(&name).ok_or_else(ApiError::not_found)?;
    Ok(Json(render::user(&u)))
}

#[derive(Deserialize)]
struct UserBody {
    password: Option<String>,
    password_hash: Option<String>,
    hashing_algorithm: Option<String>,
    /// A list, or a comma-separated string.
    tags: Option<Value>,
}

fn tag_words(tags: Option<Value>) -> Vec<String> {
    match tags {
        Some(Value::Array(items)) => items.iter().filter_map(|i| i.as_str().map(String::from)).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|w| w.trim().to_string())
            .filter(|w| !w.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

async fn put_user(State(api): State<Api>, user: User, Path(name): Path<String>, bytes: Bytes) -> ApiResult<StatusCode> {
    user.require_admin()?;
    let body: UserBody = body::parse(&bytes)?;
    let password = match (body.password, body.password_hash) {
        (Some(p), _) => PasswordSpec::Plain(p),
        (None, Some(hash)) if hash.is_empty() => PasswordSpec::None,
        (None, Some(hash)) => PasswordSpec::Hash {
            hash,
            algorithm: body.hashing_algorithm,
        },
        (None, None) => {
            // An existing user keeps its password when only tags change.
            match api.admin.user(&name) {
                Some(existing) => PasswordSpec::Hash {
                    hash: existing.password_hash,
                    algorithm: Some(existing.hashing_algorithm.to_string()),
                },
                None => return Err(ApiError::bad_request("Missing key(s): password or password_hash")),
            }
        }
    };
    let new = api.admin.put_user(&name, password, &tag_words(body.tags))?;
    Ok(super::created(new))
}

async fn delete_user(State(api): State<Api>, user: User, Path(name): Path<String>) -> ApiResult<StatusCode> {
    user.require_admin()?;
    api.admin.delete_user(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct BulkDelete {
    users: Vec<String>,
}

async fn bulk_delete(State(api): State<Api>, user: User, bytes: Bytes) -> ApiResult<StatusCode> {
    user.require_admin()?;
    let body: BulkDelete = body::parse(&bytes)?;
    for name in body.users {
        match api.admin.delete_user(&name) {
            Ok(()) | Err(warren_broker::AdminError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn permissions_of_user(State(api): State<Api>, user: User, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    api.admin.user(&name).ok_or_else(ApiError::not_found)?;
    let items: Vec<Value> = api
        .admin
        .permissions()
        .iter()
        .filter(|p| p.user == name)
        .map(render::permission)
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn topic_permissions_of_user(
    State(api): State<Api>,
    user: User,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    api.admin.user(&name).ok_or_else(ApiError::not_found)?;
    let items: Vec<Value> = api
        .admin
        .topic_permissions()
        .iter()
        .filter(|p| p.user == name)
        .map(render::topic_permission)
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn list_permissions(
    State(api): State<Api>,
    user: User,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    let items = api.admin.permissions().iter().map(render::permission).collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn permissions_in_vhost(State(api): State<Api>, user: User, Path(vhost): Path<String>) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    api.admin.vhost_view(&vhost).ok_or_else(ApiError::not_found)?;
    let items: Vec<Value> = api
        .admin
        .permissions()
        .iter()
        .filter(|p| p.vhost == vhost)
        .map(render::permission)
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn show_permission(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    let p = api.admin.permission(&vhost, &name).ok_or_else(ApiError::not_found)?;
    Ok(Json(render::permission(&p)))
}

#[derive(Deserialize)]
struct PermissionBody {
    configure: Option<String>,
    write: Option<String>,
    read: Option<String>,
}

impl PermissionBody {
    /// The three expressions; missing ones are named as RabbitMQ names
    /// them (`[{key_missing,configure},...]`).
    fn patterns(self) -> ApiResult<(String, String, String)> {
        match (self.configure, self.write, self.read) {
            (Some(c), Some(w), Some(r)) => Ok((c, w, r)),
            (c, w, r) => {
                let missing: Vec<String> = [
                    ("configure", c.is_none()),
                    ("write", w.is_none()),
                    ("read", r.is_none()),
                ]
                .iter()
                .filter(|(_, missing)| *missing)
                .map(|(key, _)| format!("{{key_missing,{key}}}"))
                .collect();
                Err(ApiError::bad_request(format!("[{}]", missing.join(","))))
            }
        }
    }
}

async fn put_permission(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    user.require_admin()?;
    let body: PermissionBody = body::parse(&bytes)?;
    let (configure, write, read) = body.patterns()?;
    let new = api.admin.set_permissions(&vhost, &name, &configure, &write, &read)?;
    Ok(super::created(new))
}

async fn delete_permission(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    user.require_admin()?;
    api.admin.clear_permissions(&vhost, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_topic_permissions(
    State(api): State<Api>,
    user: User,
    Query(query): Query<listing::Query>,
) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    let items = api
        .admin
        .topic_permissions()
        .iter()
        .map(render::topic_permission)
        .collect();
    Ok(Json(listing::respond(items, &query)?))
}

async fn topic_permissions_in_vhost(
    State(api): State<Api>,
    user: User,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    api.admin.vhost_view(&vhost).ok_or_else(ApiError::not_found)?;
    let items: Vec<Value> = api
        .admin
        .topic_permissions()
        .iter()
        .filter(|p| p.vhost == vhost)
        .map(render::topic_permission)
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn show_topic_permissions(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    user.require_admin()?;
    let items: Vec<Value> = api
        .admin
        .topic_permissions()
        .iter()
        .filter(|p| p.vhost == vhost && p.user == name)
        .map(render::topic_permission)
        .collect();
    if items.is_empty() {
        return Err(ApiError::not_found());
    }
    Ok(Json(Value::Array(items)))
}

#[derive(Deserialize)]
struct TopicPermissionBody {
    exchange: String,
    write: String,
    read: String,
}

async fn put_topic_permission(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    user.require_admin()?;
    let body: TopicPermissionBody = body::parse(&bytes)?;
    let new = api
        .admin
        .set_topic_permissions(&vhost, &name, &body.exchange, &body.write, &body.read)?;
    Ok(super::created(new))
}

async fn delete_topic_permissions(
    State(api): State<Api>,
    user: User,
    Path((vhost, name)): Path<(String, String)>,
    Query(query): Query<listing::Query>,
) -> ApiResult<StatusCode> {
    user.require_admin()?;
    api.admin
        .clear_topic_permissions(&vhost, &name, query.get("exchange").map(String::as_str))?;
    Ok(StatusCode::NO_CONTENT)
}
