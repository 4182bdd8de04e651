//! Values as RabbitMQ's messages print them: the Erlang terms it decoded
//! JSON into, so that validation errors read exactly as RabbitMQ's.

use serde_json::Value;

/// A JSON value as Erlang's `~p` prints the term RabbitMQ decoded it to.
pub(crate) fn erlang_term(value: &Value) -> String {
    match value {
        Value::String(s) => format!("<<\"{s}\">>"),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(erlang_term).collect::<Vec<_>>().join(",")),
        Value::Object(map) => {
            let pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{{<<\"{k}\">>,{}}}", erlang_term(v)))
                .collect();
            format!("[{}]", pairs.join(","))
        }
    }
}
