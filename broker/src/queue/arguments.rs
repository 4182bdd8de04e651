//! Queue arguments (`x-message-ttl`, `x-max-length`, `x-queue-type`, …):
//! validated as RabbitMQ validates them at declaration, with its reply texts,
//! and parsed once into typed settings.

use warren_protocol::{FieldTable, FieldValue, ShortStr};

use crate::error::{AmqpError, AmqpResult};
use crate::queue::stream::{read_duration, DurationArg};

/// The queue types a client may ask for with `x-queue-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum QueueType {
    #[default]
    Classic,
    /// On one node, a durable queue with quorum semantics (delivery limits
    /// and counts).
    Quorum,
    /// An append-only log consumers read from offsets (`stream/`).
    Stream,
}

impl QueueType {
    /// The name RabbitMQ's management API shows.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
            QueueType::Stream => "stream",
        }
    }

    fn internal_name(self) -> &'static str {
        match self {
            QueueType::Classic => "rabbit_classic_queue",
            QueueType::Quorum => "rabbit_quorum_queue",
            QueueType::Stream => "rabbit_stream_queue",
        }
    }

    /// Arguments this queue type understands; others starting with `x-`
    /// that some queue type knows are refused.
    fn supports(self, key: &str) -> bool {
        match self {
            QueueType::Classic => COMMON_ARGS.contains(&key) || CLASSIC_ONLY_ARGS.contains(&key),
            QueueType::Quorum => COMMON_ARGS.contains(&key) || QUORUM_ONLY_ARGS.contains(&key),
            QueueType::Stream => STREAM_ARGS.contains(&key),
        }
    }
}

/// Arguments every queue type takes.
const COMMON_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-overflow",
    "x-single-active-consumer",
    "x-queue-type",
    "x-consumer-timeout",
];
const CLASSIC_ONLY_ARGS: &[&str] = &["x-max-priority", "x-queue-mode", "x-queue-version"];
const QUORUM_ONLY_ARGS: &[&str] = &[
    "x-delivery-limit",
    "x-quorum-initial-group-size",
    // Quorum queues and streams (RabbitMQ 3.10); accepted and checked,
    // not acted on: a replicated queue's leader is placed by its group.
    "x-queue-leader-locator",
];
/// Arguments a stream takes (RabbitMQ 3.10's list).
const STREAM_ARGS: &[&str] = &[
    "x-queue-type",
    "x-max-length-bytes",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
];

/// Whether some queue type knows the argument: only these are checked
/// against the declared type (unknown `x-` arguments are accepted, as in
/// RabbitMQ).
fn is_known(key: &str) -> bool {
    [COMMON_ARGS, CLASSIC_ONLY_ARGS, QUORUM_ONLY_ARGS, STREAM_ARGS]
        .iter()
        .any(|list| list.contains(&key))
}

/// What happens when a length limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Overflow {
    #[default]
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

/// Typed queue settings from the declaration's arguments.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueArguments {
    pub queue_type: QueueType,
    pub message_ttl: Option<u64>,
    pub expires: Option<u64>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub overflow: Overflow,
    pub dead_letter_exchange: Option<ShortStr>,
    pub dead_letter_routing_key: Option<ShortStr>,
    pub max_priority: Option<u8>,
    pub single_active_consumer: bool,
    pub delivery_limit: Option<u64>,
    /// How many members vote in a replicated quorum queue's group
    /// (`x-quorum-initial-group-size`, at least 1).
    pub initial_group_size: Option<std::num::NonZeroUsize>,
    pub consumer_timeout: Option<u64>,
    /// A stream's retention by age, in ms (`x-max-age`).
    pub max_age_ms: Option<u64>,
    /// A stream's segment size (`x-stream-max-segment-size-bytes`).
    pub stream_segment_bytes: Option<u64>,
}

/// RabbitMQ's largest timer value (ms) for TTLs and expiry.
const MAX_EXPIRY_TIMER: i64 = 4_294_967_295;

/// Erlang's name for a field value's type, as RabbitMQ prints it.
pub(crate) fn type_name(value: &FieldValue) -> &'static str {
    match value {
        FieldValue::Bool(_) => "bool",
        FieldValue::I8(_) => "byte",
        FieldValue::U8(_) => "unsignedbyte",
        FieldValue::I16(_) => "short",
        FieldValue::U16(_) => "unsignedshort",
        FieldValue::I32(_) => "signedint",
        FieldValue::U32(_) => "unsignedint",
        FieldValue::I64(_) => "long",
        FieldValue::U64(_) => "unsignedlong",
        FieldValue::F32(_) => "float",
        FieldValue::F64(_) => "double",
        FieldValue::Decimal(..) => "decimal",
        FieldValue::LongStr(_) => "longstr",
        FieldValue::ByteArray(_) => "binary",
        FieldValue::Array(_) => "array",
        FieldValue::Timestamp(_) => "timestamp",
        FieldValue::Table(_) => "table",
        FieldValue::Void => "void",
    }
}

struct Checker<'a> {
    what: &'a str,
}

impl Checker<'_> {
    fn invalid(&self, key: &str, reason: impl std::fmt::Display) -> AmqpError {
        AmqpError::precondition_failed(format!("invalid arg '{key}' for {}: {reason}", self.what))
    }

    /// RabbitMQ's text for a value of a type the argument does not take.
    fn unacceptable(&self, key: &str, value: &FieldValue) -> AmqpError {
        self.invalid(key, format!("{{unacceptable_type,{}}}", type_name(value)))
    }

    fn integer(&self, key: &str, value: &FieldValue) -> AmqpResult<i64> {
        value
            .as_i64()
            .ok_or_else(|| self.invalid(key, format!("\"expected integer, got {}\"", type_name(value))))
    }

    fn non_negative(&self, key: &str, value: &FieldValue) -> AmqpResult<u64> {
        let n = self.integer(key, value)?;
        u64::try_from(n).map_err(|_| self.invalid(key, format!("{{value_negative,{n}}}")))
    }

    fn expiry(&self, key: &str, value: &FieldValue) -> AmqpResult<u64> {
        let n = self.non_negative(key, value)?;
        if n as i64 > MAX_EXPIRY_TIMER {
            return Err(self.invalid(key, format!("{{value_too_large,{n},{MAX_EXPIRY_TIMER}}}")));
        }
        Ok(n)
    }

    fn string(&self, key: &str, value: &FieldValue) -> AmqpResult<ShortStr> {
        value
            .as_str()
            .map(ShortStr::from)
            .ok_or_else(|| self.unacceptable(key, value))
    }
}

impl QueueArguments {
    /// Validates the arguments of a new queue. `what` is "queue 'q' in vhost '/'".
    pub(crate) fn parse(
        args: &FieldTable,
        what: &str,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
    ) -> AmqpResult<Self> {
        let check = Checker { what };
        let mut parsed = QueueArguments::default();
        if let Some(value) = args.get("x-queue-type") {
            parsed.queue_type = match value.as_str() {
                Some("classic") => QueueType::Classic,
                Some("quorum") => QueueType::Quorum,
                Some("stream") => QueueType::Stream,
                Some(other) => {
                    return Err(check.invalid("x-queue-type", format!("\"unsupported queue type '{other}'\"")))
                }
                None => return Err(check.unacceptable("x-queue-type", value)),
            };
        }
        if let Some(value) = args.get("x-dead-letter-exchange") {
            if value.as_str().is_none() {
                return Err(AmqpError::precondition_failed(format!(
                    "invalid type '{}' for arg 'x-dead-letter-exchange' in {what}",
                    type_name(value)
                )));
            }
        }
        for (key, value) in args.iter() {
            let key = key.as_str();
            match key {
                "x-message-ttl" => parsed.message_ttl = Some(check.expiry(key, value)?),
                "x-expires" => {
                    let n = check.expiry(key, value)?;
                    if n == 0 {
                        return Err(check.invalid(key, "{value_zero,0}"));
                    }
                    parsed.expires = Some(n);
                }
                "x-max-length" => parsed.max_length = Some(check.non_negative(key, value)?),
                "x-max-length-bytes" => parsed.max_length_bytes = Some(check.non_negative(key, value)?),
                "x-delivery-limit" => parsed.delivery_limit = Some(check.non_negative(key, value)?),
                "x-quorum-initial-group-size" | "x-initial-cluster-size" => {
                    let n = check.non_negative(key, value)?;
                    let size = std::num::NonZeroUsize::new(usize::try_from(n).unwrap_or(usize::MAX))
                        .ok_or_else(|| check.invalid(key, "{value_zero,0}"))?;
                    parsed.initial_group_size = Some(size);
                }
                "x-consumer-timeout" => parsed.consumer_timeout = Some(check.non_negative(key, value)?),
                "x-max-age" => match read_duration(&check.string(key, value)?) {
                    DurationArg::Valid(age) => parsed.max_age_ms = Some(age.as_millis() as u64),
                    DurationArg::Invalid => return Err(check.invalid(key, "invalid_max_age")),
                    DurationArg::NoNumber => return Err(AmqpError::crashed()),
                },
                "x-queue-leader-locator" => {
                    let locator = check.string(key, value)?;
                    // The last two are 3.9's names, still accepted by 3.10.
                    if !matches!(
                        locator.as_str(),
                        "client-local" | "balanced" | "random" | "least-leaders"
                    ) {
                        return Err(check.invalid(key, "invalid_queue_locator_arg"));
                    }
                }
                "x-stream-max-segment-size-bytes" => {
                    parsed.stream_segment_bytes = Some(check.non_negative(key, value)?)
                }
                "x-max-priority" => {
                    let n = check.non_negative(key, value)?;
                    if n > 255 {
                        return Err(check.invalid(key, format!("{{max_value_exceeded,{n}}}")));
                    }
                    parsed.max_priority = Some(n as u8);
                }
                "x-overflow" => {
                    parsed.overflow = match check.string(key, value)?.as_str() {
                        "drop-head" => Overflow::DropHead,
                        "reject-publish" => Overflow::RejectPublish,
                        "reject-publish-dlx" => Overflow::RejectPublishDlx,
                        _ => return Err(check.invalid(key, "invalid_overflow")),
                    }
                }
                "x-dead-letter-exchange" => parsed.dead_letter_exchange = Some(check.string(key, value)?),
                "x-dead-letter-routing-key" => {
                    let rk = check.string(key, value)?;
                    if args.get("x-dead-letter-exchange").is_none() {
                        return Err(check.invalid(key, "routing_key_but_no_dlx_defined"));
                    }
                    parsed.dead_letter_routing_key = Some(rk);
                }
                "x-single-active-consumer" => {
                    parsed.single_active_consumer = value.as_bool().ok_or_else(|| check.unacceptable(key, value))?;
                }
                _ => {}
            }
        }
        let queue_type = parsed.queue_type;
        if let Some(key) = args
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| is_known(k) && !queue_type.supports(k))
        {
            return Err(AmqpError::precondition_failed(format!(
                "invalid arg '{key}' for {what} of queue type {}",
                queue_type.internal_name()
            )));
        }
        if matches!(queue_type, QueueType::Quorum | QueueType::Stream) {
            let refused = if exclusive {
                Some("exclusive-owner")
            } else if !durable {
                Some("non-durable")
            } else if auto_delete {
                Some("auto-delete")
            } else {
                None
            };
            if let Some(property) = refused {
                return Err(AmqpError::precondition_failed(format!(
                    "invalid property '{property}' for {what}"
                )));
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHAT: &str = "queue 'q' in vhost '/'";

    fn parse(entries: &[(&str, FieldValue)], durable: bool) -> AmqpResult<QueueArguments> {
        let args: FieldTable = entries.iter().map(|(k, v)| (ShortStr::from(*k), v.clone())).collect();
        QueueArguments::parse(&args, WHAT, durable, false, false)
    }

    fn refusal(entries: &[(&str, FieldValue)]) -> String {
        parse(entries, true).unwrap_err().text
    }

    #[test]
    fn valid_arguments_are_typed() {
        let args = parse(
            &[
                ("x-message-ttl", FieldValue::I32(1000)),
                ("x-max-length", FieldValue::I64(10)),
                ("x-overflow", "reject-publish-dlx".into()),
                ("x-dead-letter-exchange", "dlx".into()),
                ("x-dead-letter-routing-key", "dead".into()),
                ("x-max-priority", FieldValue::U8(9)),
                ("x-single-active-consumer", FieldValue::Bool(true)),
                ("x-unknown-to-rabbitmq", "kept".into()),
            ],
            false,
        )
        .unwrap();
        assert_eq!(args.queue_type, QueueType::Classic);
        assert_eq!(
            (args.message_ttl, args.max_length, args.max_priority),
            (Some(1000), Some(10), Some(9))
        );
        assert_eq!(args.overflow, Overflow::RejectPublishDlx);
        assert_eq!(args.dead_letter_routing_key.as_deref(), Some("dead"));
        assert!(args.single_active_consumer);
    }

    #[test]
    fn bad_values_are_refused_with_rabbitmqs_texts() {
        assert_eq!(
            refusal(&[("x-message-ttl", "soon".into())]),
            "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': \"expected integer, got longstr\""
        );
        assert_eq!(
            refusal(&[("x-max-length", FieldValue::I32(-1))]),
            "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"
        );
        assert_eq!(
            refusal(&[("x-expires", FieldValue::I32(0))]),
            "PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}"
        );
        assert_eq!(
            refusal(&[("x-max-priority", FieldValue::I32(256))]),
            "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q' in vhost '/': {max_value_exceeded,256}"
        );
        assert_eq!(
            refusal(&[("x-dead-letter-routing-key", "k".into())]),
            "PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined"
        );
        assert_eq!(
            refusal(&[("x-message-ttl", FieldValue::I64(4_294_967_296))]),
            "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_too_large,4294967296,4294967295}"
        );
    }

    #[test]
    fn arguments_of_another_queue_type_and_quorum_properties_are_refused() {
        assert_eq!(
            refusal(&[("x-queue-type", "quorum".into()), ("x-max-priority", FieldValue::I32(5))]),
            "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q' in vhost '/' of queue type rabbit_quorum_queue"
        );
        assert_eq!(
            refusal(&[("x-delivery-limit", FieldValue::I32(5))]),
            "PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"
        );
        assert_eq!(
            parse(&[("x-queue-type", "quorum".into())], false).unwrap_err().text,
            "PRECONDITION_FAILED - invalid property 'non-durable' for queue 'q' in vhost '/'"
        );
        assert_eq!(
            refusal(&[("x-queue-type", "widget".into())]),
            "PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': \"unsupported queue type 'widget'\""
        );
        assert_eq!(
            refusal(&[("x-queue-type", "stream".into()), ("x-max-length", FieldValue::I32(5))]),
            "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/' of queue type rabbit_stream_queue"
        );
        assert_eq!(
            refusal(&[("x-queue-type", "stream".into()), ("x-max-age", "10x".into())]),
            "PRECONDITION_FAILED - invalid arg 'x-max-age' for queue 'q' in vhost '/': invalid_max_age"
        );
        let stream = parse(&[("x-queue-type", "stream".into()), ("x-max-age", "7D".into())], true).unwrap();
        assert_eq!(stream.max_age_ms, Some(7 * 86_400_000));
    }
}
