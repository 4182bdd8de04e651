//! Errors as RabbitMQ's management API answers them: a status code and a
//! JSON body `{"error": ..., "reason": ...}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use warren_broker::AdminError;

#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    error: &'static str,
    reason: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found() -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            error: "Object Not Found",
            reason: "Not Found".into(),
        }
    }

    pub(crate) fn bad_request(reason: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: "bad_request",
            reason: reason.into(),
        }
    }

    /// 401, as RabbitMQ answers every refusal (a missing tag, no access
    /// to the vhost, a permission), spelt as RabbitMQ spells it there.
    pub(crate) fn unauthorized(reason: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            error: "not_authorised",
            reason: reason.into(),
        }
    }

    /// 401 for credentials that do not log in.
    pub(crate) fn login_failed() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            error: "not_authorized",
            reason: "Login failed".into(),
        }
    }

    /// 401 with no body, for a request without credentials.
    pub(crate) fn no_credentials() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            error: "",
            reason: String::new(),
        }
    }

    /// 405 with no body, as RabbitMQ answers a method a path lacks.
    pub(crate) fn method_not_allowed() -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            error: "",
            reason: String::new(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound => ApiError::not_found(),
            AdminError::BadRequest(reason) => ApiError::bad_request(reason),
            AdminError::AccessRefused(reason) => ApiError::unauthorized(reason),
            AdminError::Refused { code: 403, .. } => ApiError::unauthorized("Access refused."),
            AdminError::Refused { reason, .. } => ApiError::bad_request(reason),
            AdminError::Unavailable(reason) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: "unavailable",
                reason,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.error.is_empty() && self.status == StatusCode::UNAUTHORIZED {
            return (
                self.status,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"RabbitMQ Management\"")],
            )
                .into_response();
        }
        if self.error.is_empty() {
            return self.status.into_response();
        }
        let body = Json(json!({"error": self.error, "reason": self.reason}));
        if self.status == StatusCode::UNAUTHORIZED {
            (
                self.status,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"RabbitMQ Management\"")],
                body,
            )
                .into_response()
        } else {
            (self.status, body).into_response()
        }
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
