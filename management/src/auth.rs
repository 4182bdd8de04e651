//! HTTP basic authentication against Warren's users, and what their tags
//! let them do (RabbitMQ's rules: administrator does everything,
//! monitoring reads everything, management and policymaker work in the
//! vhosts they have permissions in, a user without one of these tags is
//! refused).

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use warren_broker::AdminUser;

use crate::error::ApiError;
use crate::state::Api;

/// The logged-in user of a request.
pub(crate) struct User(pub AdminUser);

impl User {
    pub(crate) fn name(&self) -> &str {
        &self.0.name
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.0.has_tag("administrator")
    }

    /// Administrators and monitoring users see every vhost's objects.
    pub(crate) fn sees_everything(&self) -> bool {
        self.is_admin() || self.0.has_tag("monitoring")
    }

    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::unauthorized("Not administrator user"))
        }
    }

    pub(crate) fn require_monitoring(&self) -> Result<(), ApiError> {
        if self.sees_everything() {
            Ok(())
        } else {
            Err(ApiError::unauthorized("Not monitor user"))
        }
    }

    /// Whether the user may see a vhost's objects.
    pub(crate) fn sees_vhost(&self, api: &Api, vhost: &str) -> bool {
        self.sees_everything() || api.admin.has_vhost_access(self.name(), vhost)
    }

    /// Refuses (401) a user who may not see a vhost's objects.
    pub(crate) fn require_sees_vhost(&self, api: &Api, vhost: &str) -> Result<(), ApiError> {
        if self.sees_vhost(api, vhost) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("User not authorised to access virtual host"))
        }
    }

    /// Whether the user may work in a vhost (declare, delete, publish...):
    /// it needs permissions there, whatever its tags.
    pub(crate) fn require_vhost(&self, api: &Api, vhost: &str) -> Result<(), ApiError> {
        if api.admin.has_vhost_access(self.name(), vhost) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("User not authorised to access virtual host"))
        }
    }

    /// Whether the user may change a vhost's policies and runtime
    /// parameters (shovels): a policymaker or an administrator, with
    /// permissions in the vhost.
    pub(crate) fn require_policymaker(&self, api: &Api, vhost: &str) -> Result<(), ApiError> {
        if !(self.is_admin() || self.0.has_tag("policymaker")) {
            return Err(ApiError::unauthorized("Not policymaker user"));
        }
        self.require_vhost(api, vhost)
    }
}

fn credentials(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = BASE64.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl FromRequestParts<Api> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let loopback = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .is_some_and(|ConnectInfo(addr)| addr.ip().to_canonical().is_loopback());
        let (name, password) = credentials(parts).ok_or_else(ApiError::no_credentials)?;
        let user = api.admin.authenticate(&name, &password, loopback).ok_or_else(|| {
            tracing::warn!("HTTP access denied: user '{name}' - invalid credentials");
            ApiError::login_failed()
        })?;
        let management = ["administrator", "monitoring", "policymaker", "management"];
        if !management.iter().any(|t| user.has_tag(t)) {
            tracing::warn!("HTTP access denied: user '{name}' - Not management user");
            return Err(ApiError::unauthorized("Not management user"));
        }
        Ok(User(user))
    }
}
