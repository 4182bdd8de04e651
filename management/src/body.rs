//! Request bodies: JSON, parsed here so that a malformed one is answered
//! as RabbitMQ answers it (400 with a reason), and an empty one counts as
//! `{}`; and fields that RabbitMQ takes in more than one JSON type.

use axum::body::Bytes;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

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

/// A boolean field as RabbitMQ's API takes one: `true`/`false`, or the
/// strings `"true"`/`"false"` (rabbitmqadmin 3.x sends `"durable": "true"`).
/// For `#[serde(default, deserialize_with = "body::flexible_bool")]`.
pub(crate) fn flexible_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flexible {
        Bool(bool),
        Text(String),
    }
    match Option::<Flexible>::deserialize(d)? {
        None => Ok(None),
        Some(Flexible::Bool(b)) => Ok(Some(b)),
        Some(Flexible::Text(text)) => match text.as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(D::Error::custom(format!("{{not_boolean,<<\"{text}\">>}}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "flexible_bool")]
        durable: Option<bool>,
    }

    fn durable(json: &str) -> ApiResult<Option<bool>> {
        parse::<Body>(&Bytes::from(json.to_string())).map(|b| b.durable)
    }

    #[test]
    fn booleans_as_json_or_as_strings() {
        assert_eq!(durable(r#"{"durable": true}"#).ok(), Some(Some(true)));
        assert_eq!(durable(r#"{"durable": "false"}"#).ok(), Some(Some(false)));
        assert_eq!(durable(r#"{"durable": "true"}"#).ok(), Some(Some(true)));
        assert_eq!(durable("{}").ok(), Some(None));
        assert!(durable(r#"{"durable": "yes"}"#).is_err());
        assert!(durable(r#"{"durable": 1}"#).is_err());
    }
}
