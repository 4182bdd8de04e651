//! Message properties as JSON, under the names RabbitMQ's management API
//! gives them (`delivery_mode`, `headers`, `content_type`...).

use serde_json::{Map, Value};
use warren_protocol::{BasicProperties, ShortStr};

use super::table::{json_to_table, table_to_json};

fn text(value: &Value) -> Option<ShortStr> {
    match value {
        Value::String(s) => Some(ShortStr::from(s.as_str())),
        Value::Number(n) => Some(ShortStr::from(n.to_string())),
        _ => None,
    }
}

/// Message properties from RabbitMQ's JSON names (as the management API's
/// publish and shovels' `dest-publish-properties` give them).
pub(crate) fn properties_from_json(object: &Map<String, Value>) -> Result<BasicProperties, String> {
    let mut p = BasicProperties::default();
    let bad = |key: &str| format!("invalid message property '{key}'");
    for (key, value) in object {
        match key.as_str() {
            "delivery_mode" => {
                let mode = value.as_u64().or_else(|| value.as_str().and_then(|s| s.parse().ok()));
                p.delivery_mode = Some(u8::try_from(mode.ok_or_else(|| bad(key))?).map_err(|_| bad(key))?);
            }
            "priority" => {
                p.priority = Some(u8::try_from(value.as_u64().ok_or_else(|| bad(key))?).map_err(|_| bad(key))?);
            }
            "timestamp" => p.timestamp = Some(value.as_u64().ok_or_else(|| bad(key))?),
            "headers" => {
                let table = value.as_object().ok_or_else(|| bad(key))?;
                p.headers = Some(json_to_table(table)?);
            }
            "content_type" => p.content_type = text(value),
            "content_encoding" => p.content_encoding = text(value),
            "correlation_id" => p.correlation_id = text(value),
            "reply_to" => p.reply_to = text(value),
            "expiration" => p.expiration = text(value),
            "message_id" => p.message_id = text(value),
            "type" => p.kind = text(value),
            "user_id" => p.user_id = text(value),
            "app_id" => p.app_id = text(value),
            "cluster_id" => p.cluster_id = text(value),
            _ => return Err(bad(key)),
        }
    }
    Ok(p)
}

/// Message properties under RabbitMQ's JSON names.
pub(crate) fn properties_to_json(p: &BasicProperties) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            out.insert(key.to_string(), value);
        }
    };
    let s = |v: &Option<ShortStr>| v.as_ref().map(|s| Value::String(s.to_string()));
    put("content_type", s(&p.content_type));
    put("content_encoding", s(&p.content_encoding));
    put("headers", p.headers.as_ref().map(|h| Value::Object(table_to_json(h))));
    put("delivery_mode", p.delivery_mode.map(Value::from));
    put("priority", p.priority.map(Value::from));
    put("correlation_id", s(&p.correlation_id));
    put("reply_to", s(&p.reply_to));
    put("expiration", s(&p.expiration));
    put("message_id", s(&p.message_id));
    put("timestamp", p.timestamp.map(Value::from));
    put("type", s(&p.kind));
    put("user_id", s(&p.user_id));
    put("app_id", s(&p.app_id));
    put("cluster_id", s(&p.cluster_id));
    out
}

/// Sets on `target` the properties `object` names (RabbitMQ's JSON names),
/// leaving the others as they are.
pub(crate) fn overlay_properties(target: &mut BasicProperties, object: &Map<String, Value>) -> Result<(), String> {
    let given = properties_from_json(object)?;
    macro_rules! overlay {
        ($($field:ident),*) => {
            $(if given.$field.is_some() {
                target.$field = given.$field;
            })*
        };
    }
    overlay!(
        content_type,
        content_encoding,
        headers,
        delivery_mode,
        priority,
        correlation_id,
        reply_to,
        expiration,
        message_id,
        timestamp,
        kind,
        user_id,
        app_id,
        cluster_id
    );
    Ok(())
}
