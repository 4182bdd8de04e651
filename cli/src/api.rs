//! The management HTTP API as warrenctl talks to it: basic auth, JSON in
//! and out, and RabbitMQ's error bodies turned into messages.

use reqwest::blocking::{Client, Response};
use reqwest::Method;
use serde_json::Value;

/// Where the API is and who logs in.
pub(crate) struct Api {
    base: String,
    user: String,
    password: String,
    client: Client,
}

/// Percent-encodes a path segment (a vhost "/" becomes "%2F").
pub(crate) fn segment(text: &str) -> String {
    /// RFC 3986's unreserved characters stay as they are.
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

impl Api {
    pub(crate) fn new(base: &str, user: &str, password: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            user: user.to_string(),
            password: password.to_string(),
            client: Client::new(),
        }
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Response, String> {
        let url = format!("{}/api/{path}", self.base);
        let mut request = self
            .client
            .request(method.clone(), &url)
            .basic_auth(&self.user, Some(&self.password));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().unwrap_or_default();
        let reason = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(text);
        Err(format!("{method} /api/{path}: {status}: {}", reason.trim()))
    }

    pub(crate) fn get(&self, path: &str) -> Result<Value, String> {
        self.call(Method::GET, path, None, &[])?
            .json()
            .map_err(|e| format!("GET /api/{path}: the answer is not JSON: {e}"))
    }

    pub(crate) fn put(&self, path: &str, body: &Value) -> Result<(), String> {
        self.call(Method::PUT, path, Some(body), &[]).map(drop)
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<(), String> {
        self.call(Method::POST, path, Some(body), &[]).map(drop)
    }

    pub(crate) fn delete(&self, path: &str, headers: &[(&str, &str)]) -> Result<(), String> {
        self.call(Method::DELETE, path, None, headers).map(drop)
    }
}
