//! A queue's effective arguments: what its declaration set, with what the
//! policies that apply to it add, as RabbitMQ combines them: for the
//! numeric limits (TTLs, lengths, expiry, delivery limit) the lowest of
//! the client's `x-` argument, the policy's and the operator policy's
//! value applies; for the others (dead-lettering, overflow, a stream's
//! max-age and segment size) the client's argument wins over the policy's.

use serde_json::{Map, Value};
use warren_protocol::{FieldTable, ShortStr};

use super::arguments::{Overflow, QueueArguments, QueueType};
use crate::policy::Applied;

/// The numeric keys an operator policy caps.
const CAPPED: &[&str] = &[
    "message-ttl",
    "expires",
    "max-length",
    "max-length-bytes",
    "delivery-limit",
];

fn numeric_field<'a>(args: &'a mut QueueArguments, key: &str) -> Option<&'a mut Option<u64>> {
    match key {
        "message-ttl" => Some(&mut args.message_ttl),
        "expires" => Some(&mut args.expires),
        "max-length" => Some(&mut args.max_length),
        "max-length-bytes" => Some(&mut args.max_length_bytes),
        "delivery-limit" => Some(&mut args.delivery_limit),
        "consumer-timeout" => Some(&mut args.consumer_timeout),
        _ => None,
    }
}

/// Applies one policy key: a numeric limit takes the lower of the two
/// values, anything else only if the declaration did not set it.
fn apply_key(args: &mut QueueArguments, table: &FieldTable, key: &str, value: &Value) {
    if key == "delivery-limit" && args.queue_type != QueueType::Quorum {
        return;
    }
    if let Some(field) = numeric_field(args, key) {
        if let Some(n) = value.as_u64() {
            *field = Some(field.map_or(n, |v| v.min(n)));
        }
        return;
    }
    if table.get(&format!("x-{key}")).is_some() {
        return;
    }
    let text = value.as_str().map(ShortStr::from);
    match key {
        "dead-letter-exchange" => args.dead_letter_exchange = text,
        "dead-letter-routing-key" => args.dead_letter_routing_key = text,
        "overflow" => {
            args.overflow = match value.as_str() {
                Some("reject-publish") => Overflow::RejectPublish,
                Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
                _ => Overflow::DropHead,
            }
        }
        // A stream's retention by age and its segment size.
        "max-age" => {
            if let Some(age) = value.as_str().and_then(super::stream::parse_duration) {
                args.max_age_ms = Some(age.as_millis() as u64);
            }
        }
        "stream-max-segment-size-bytes" => {
            if let Some(n) = value.as_u64() {
                args.stream_segment_bytes = Some(n);
            }
        }
        _ => {}
    }
}

/// The arguments a queue runs with: `declared` (parsed from `table`, the
/// client's own) completed by the applied policies.
pub(crate) fn effective_arguments(declared: &QueueArguments, table: &FieldTable, applied: &Applied) -> QueueArguments {
    let mut args = declared.clone();
    if let Some(policy) = &applied.policy {
        for (key, value) in &policy.definition {
            apply_key(&mut args, table, key, value);
        }
    }
    if let Some(operator) = &applied.operator_policy {
        for (key, value) in &operator.definition {
            let (Some(cap), true) = (value.as_u64(), CAPPED.contains(&key.as_str())) else {
                continue;
            };
            if key == "delivery-limit" && args.queue_type != QueueType::Quorum {
                continue;
            }
            if let Some(field) = numeric_field(&mut args, key) {
                *field = Some(field.map_or(cap, |v| v.min(cap)));
            }
        }
    }
    args
}

/// The definition RabbitMQ shows as a queue's
/// `effective_policy_definition`: the policy's keys, capped by the
/// operator policy's.
pub(crate) fn effective_definition(applied: &Applied) -> Map<String, Value> {
    let mut out = applied
        .policy
        .as_ref()
        .map(|p| p.definition.clone())
        .unwrap_or_default();
    if let Some(operator) = &applied.operator_policy {
        for (key, value) in &operator.definition {
            let capped = match (out.get(key).and_then(Value::as_u64), value.as_u64()) {
                (Some(current), Some(cap)) => Value::from(current.min(cap)),
                _ => value.clone(),
            };
            out.insert(key.clone(), capped);
        }
    }
    crate::json::sorted_by_key(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ApplyTo, Policy, PolicyKind};
    use serde_json::json;
    use std::sync::Arc;
    use warren_protocol::FieldValue;

    fn policy(kind: PolicyKind, definition: Value) -> Option<Arc<Policy>> {
        let definition = definition.as_object().cloned().unwrap();
        Some(Arc::new(
            Policy::new(kind, "/", "p", ".*", ApplyTo::Queues, 0, definition).unwrap(),
        ))
    }

    #[test]
    fn the_lowest_limit_applies_and_arguments_win_otherwise() {
        let mut table = FieldTable::new();
        table.insert("x-max-length", FieldValue::I64(50));
        table.insert("x-overflow", FieldValue::LongStr("reject-publish".into()));
        let declared = QueueArguments::parse(&table, "queue 'q' in vhost '/'", true, false, false).unwrap();
        let applied = Applied {
            policy: policy(
                PolicyKind::User,
                json!({"max-length": 10, "message-ttl": 60000, "dead-letter-exchange": "dlx",
                       "delivery-limit": 3, "overflow": "drop-head"}),
            ),
            operator_policy: policy(
                PolicyKind::Operator,
                json!({"message-ttl": 1000, "max-length-bytes": 4096}),
            ),
        };
        let args = effective_arguments(&declared, &table, &applied);
        assert_eq!(args.max_length, Some(10), "the lower limit applies");
        assert_eq!(args.overflow, Overflow::RejectPublish, "the client's argument wins");
        assert_eq!(args.message_ttl, Some(1000), "the operator caps the policy");
        assert_eq!(args.max_length_bytes, Some(4096));
        assert_eq!(args.dead_letter_exchange.as_deref(), Some("dlx"));
        assert_eq!(args.delivery_limit, None, "not for classic queues");
        let shown = effective_definition(&applied);
        assert_eq!(shown["message-ttl"], json!(1000));
        assert_eq!(shown["max-length"], json!(10));
    }

    #[test]
    fn a_streams_retention_comes_from_its_policy_unless_declared() {
        let mut table = FieldTable::new();
        table.insert("x-queue-type", FieldValue::LongStr("stream".into()));
        let declared = QueueArguments::parse(&table, "queue 's' in vhost '/'", true, false, false).unwrap();
        let applied = Applied {
            policy: policy(
                PolicyKind::User,
                json!({"max-age": "2h", "stream-max-segment-size-bytes": 1000, "max-length-bytes": 5000}),
            ),
            operator_policy: None,
        };
        let args = effective_arguments(&declared, &table, &applied);
        assert_eq!(args.max_age_ms, Some(7_200_000));
        assert_eq!(args.stream_segment_bytes, Some(1000));
        assert_eq!(args.max_length_bytes, Some(5000));
        table.insert("x-max-age", FieldValue::LongStr("1D".into()));
        let declared = QueueArguments::parse(&table, "queue 's' in vhost '/'", true, false, false).unwrap();
        let args = effective_arguments(&declared, &table, &applied);
        assert_eq!(args.max_age_ms, Some(86_400_000), "the argument wins");
    }
}
