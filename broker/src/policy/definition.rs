//! What a policy may set (its definition's keys) and how their values are
//! checked, as RabbitMQ 3.10 validates them: unknown keys are refused, and
//! so are values of the wrong type.

use serde_json::{Map, Value};

use crate::erlang::erlang_term;

/// Keys a (user) policy may set. Warren applies message-ttl, expires,
/// max-length, max-length-bytes, overflow, dead-letter-exchange,
/// dead-letter-routing-key, delivery-limit, consumer-timeout and
/// alternate-exchange; the others are RabbitMQ's (mirroring, federation,
/// streams, locators, memory limits) and are accepted so that existing
/// policies load, but change nothing here.
const KNOWN: &[&str] = &[
    "message-ttl",
    "expires",
    "max-length",
    "max-length-bytes",
    "overflow",
    "dead-letter-exchange",
    "dead-letter-routing-key",
    "delivery-limit",
    "consumer-timeout",
    "alternate-exchange",
    "queue-mode",
    "queue-version",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "ha-mode",
    "ha-params",
    "ha-sync-mode",
    "ha-sync-batch-size",
    "ha-promote-on-shutdown",
    "ha-promote-on-failure",
    "queue-master-locator",
    "queue-leader-locator",
    "federation-upstream",
    "federation-upstream-set",
    "max-age",
    "stream-max-segment-size-bytes",
    "initial-cluster-size",
    "target-group-size",
    "dead-letter-strategy",
];

/// Keys an operator policy may set (RabbitMQ 3.10's list).
const OPERATOR: &[&str] = &[
    "expires",
    "message-ttl",
    "max-length",
    "max-length-bytes",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "delivery-limit",
];

/// What RabbitMQ says of a bad value for `key`, if `value` is one.
fn bad_value(key: &str, value: &Value) -> Option<&'static str> {
    let integer_at_least = |min: u64| value.as_u64().is_some_and(|n| n >= min);
    let text = value.is_string();
    let (ok, what) = match key {
        "alternate-exchange" => (text, "is not a valid alternate exchange name"),
        "dead-letter-exchange" => (text, "is not a valid dead letter exchange name"),
        "dead-letter-routing-key" => (text, "is not a valid dead letter routing key"),
        "message-ttl" => (integer_at_least(0), "is not a valid message TTL"),
        "expires" => (integer_at_least(1), "is not a valid queue expiry"),
        "max-length" => (integer_at_least(0), "is not a valid maximum length"),
        "max-length-bytes" => (integer_at_least(0), "is not a valid maximum length in bytes"),
        "max-in-memory-length" | "max-in-memory-bytes" => {
            (integer_at_least(0), "is not a valid maximum memory in bytes")
        }
        "queue-mode" => (
            matches!(value.as_str(), Some("default" | "lazy")),
            "is not a valid queue-mode value",
        ),
        "queue-version" => (
            matches!(value.as_u64(), Some(1 | 2)),
            "is not a valid queue-version value",
        ),
        "overflow" => (
            matches!(
                value.as_str(),
                Some("drop-head" | "reject-publish" | "reject-publish-dlx")
            ),
            "is not a valid overflow value",
        ),
        "delivery-limit" => (integer_at_least(0), "is not a valid delivery limit"),
        "consumer-timeout" => (integer_at_least(0), "is not a valid consumer timeout"),
        "initial-cluster-size" | "target-group-size" => (integer_at_least(0), "is not a valid cluster size"),
        "stream-max-segment-size-bytes" => (integer_at_least(0), "is not a valid segment size"),
        "queue-leader-locator" | "queue-master-locator" => (text, "is not a valid queue leader locator value"),
        _ => (true, ""),
    };
    (!ok).then_some(what)
}

/// Checks a definition; the error is RabbitMQ's validation message.
pub(crate) fn validate(definition: &Map<String, Value>, operator: bool) -> Result<(), String> {
    let allowed = if operator { OPERATOR } else { KNOWN };
    let unknown: Vec<String> = definition
        .iter()
        .filter(|(k, _)| !allowed.contains(&k.as_str()))
        .map(|(k, v)| format!("{{<<\"{k}\">>,{}}}", erlang_term(v)))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "Validation failed\n\n[{}] are not recognised policy settings\n",
            unknown.join(",")
        ));
    }
    for (key, value) in definition {
        if let Some(what) = bad_value(key, value) {
            return Err(format!("Validation failed\n\n{} {what}\n", erlang_term(value)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn known_keys_pass_and_others_are_named() {
        assert!(validate(&map(json!({"message-ttl": 1000, "ha-mode": "all"})), false).is_ok());
        let err = validate(&map(json!({"colour": "blue"})), false).unwrap_err();
        assert_eq!(
            err,
            "Validation failed\n\n[{<<\"colour\">>,<<\"blue\">>}] are not recognised policy settings\n"
        );
        let err = validate(&map(json!({"message-ttl": "soon"})), false).unwrap_err();
        assert_eq!(err, "Validation failed\n\n<<\"soon\">> is not a valid message TTL\n");
        assert!(validate(&map(json!({"message-ttl": "soon"})), false).is_err());
        assert!(validate(&map(json!({"overflow": "reject-publish"})), false).is_ok());
        assert!(validate(&map(json!({"dead-letter-exchange": "dlx"})), true).is_err());
    }
}
