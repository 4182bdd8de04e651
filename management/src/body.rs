//! Request bodies: JSON, parsed here so that a malformed one is answered
//! as RabbitMQ answers it (400 with a reason), and an empty one counts as
//! `{}`.

use axum::body::Bytes;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

pub(crate) fn parse<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|_| ApiError::bad_request("not_json"))?;
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(e.to_string()))
}
