//! Where a stream consumer starts (`x-stream-offset`) and how long a
//! stream keeps messages (`x-max-age`): the values RabbitMQ accepts and
//! its texts for the others.

use std::time::Duration;

use warren_protocol::{FieldTable, FieldValue};

use crate::clock::now_ms;
use crate::error::{AmqpError, AmqpResult};
use crate::queue::type_name;

/// A consumer's starting point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OffsetSpec {
    /// The oldest message kept.
    First,
    /// The newest message.
    Last,
    /// Only messages published from now on (the default).
    Next,
    /// This offset, clamped to what is kept.
    Offset(i64),
    /// The first message appended at or after this time (milliseconds
    /// since the Unix epoch).
    Since(u64),
}

/// A duration argument (`x-max-age`, an `x-stream-offset` interval) as
/// RabbitMQ 3.10 reads one: its leading digits are the number, which may
/// not be zero, and the rest the unit, `Y` (365 days), `M` (30 days), `D`,
/// `h`, `m` or `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationArg {
    Valid(Duration),
    /// Not one RabbitMQ takes: a precondition failure.
    Invalid,
    /// No leading digits ("yesterday", "-1h"): RabbitMQ's parser crashes
    /// on it, and the client sees its connection closed with 541.
    NoNumber,
}

pub(crate) fn read_duration(text: &str) -> DurationArg {
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return DurationArg::NoNumber;
    }
    let (number, unit) = text.split_at(digits);
    let number: u64 = match number.parse() {
        Ok(0) | Err(_) => return DurationArg::Invalid,
        Ok(n) => n,
    };
    let seconds = match unit {
        "Y" => 365 * 86_400,
        "M" => 30 * 86_400,
        "D" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return DurationArg::Invalid,
    };
    number
        .checked_mul(seconds)
        .map_or(DurationArg::Invalid, |s| DurationArg::Valid(Duration::from_secs(s)))
}

/// A duration RabbitMQ takes (see [`read_duration`]), or None.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    match read_duration(text) {
        DurationArg::Valid(duration) => Some(duration),
        DurationArg::Invalid | DurationArg::NoNumber => None,
    }
}

impl OffsetSpec {
    /// The consumer's `x-stream-offset` argument, checked; `what` is
    /// "queue 'q' in vhost '/'".
    pub(crate) fn from_arguments(arguments: &FieldTable, what: &str) -> AmqpResult<OffsetSpec> {
        let Some(value) = arguments.get("x-stream-offset") else {
            return Ok(OffsetSpec::Next);
        };
        let invalid = || {
            let shown = match value {
                FieldValue::LongStr(bytes) => format!("<<\"{}\">>", String::from_utf8_lossy(bytes)),
                other => format!("{other:?}"),
            };
            AmqpError::precondition_failed(format!(
                "invalid arg 'x-stream-offset' for {what}: {{invalid_stream_offset_arg,{{{},{shown}}}}}",
                type_name(value)
            ))
        };
        if let FieldValue::Timestamp(seconds) = value {
            return Ok(OffsetSpec::Since(seconds.saturating_mul(1000)));
        }
        if let Some(n) = value.as_i64() {
            return Ok(OffsetSpec::Offset(n));
        }
        match value.as_str() {
            Some("first") => Ok(OffsetSpec::First),
            Some("last") => Ok(OffsetSpec::Last),
            Some("next") => Ok(OffsetSpec::Next),
            Some(text) => match read_duration(text) {
                DurationArg::Valid(ago) => Ok(OffsetSpec::Since(now_ms().saturating_sub(ago.as_millis() as u64))),
                DurationArg::Invalid => Err(invalid()),
                DurationArg::NoNumber => Err(AmqpError::crashed()),
            },
            None => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: FieldValue) -> AmqpResult<OffsetSpec> {
        let mut args = FieldTable::new();
        args.insert("x-stream-offset", value);
        OffsetSpec::from_arguments(&args, "queue 's' in vhost '/'")
    }

    #[test]
    fn every_form_rabbitmq_takes() {
        assert_eq!(
            OffsetSpec::from_arguments(&FieldTable::new(), "q").unwrap(),
            OffsetSpec::Next
        );
        assert_eq!(spec("first".into()).unwrap(), OffsetSpec::First);
        assert_eq!(spec("last".into()).unwrap(), OffsetSpec::Last);
        assert_eq!(spec("next".into()).unwrap(), OffsetSpec::Next);
        assert_eq!(spec(FieldValue::I64(7)).unwrap(), OffsetSpec::Offset(7));
        assert_eq!(spec(FieldValue::I8(-1)).unwrap(), OffsetSpec::Offset(-1));
        assert_eq!(spec(FieldValue::Timestamp(10)).unwrap(), OffsetSpec::Since(10_000));
        let OffsetSpec::Since(ms) = spec("1h".into()).unwrap() else {
            panic!("an interval is a time");
        };
        assert!(now_ms() - ms >= 3_600_000 && now_ms() - ms < 3_700_000);
        assert_eq!(
            spec("1x".into()).unwrap_err().reply_text().to_string(),
            "PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue 's' in vhost '/': \
             {invalid_stream_offset_arg,{longstr,<<\"1x\">>}}"
        );
        // RabbitMQ 3.10's parser crashes on an interval without digits.
        let crashed = spec("yesterday".into()).unwrap_err();
        assert_eq!((crashed.code, crashed.reply_text().as_str()), (541, "INTERNAL_ERROR"));
    }

    #[test]
    fn durations_in_rabbitmqs_units() {
        assert_eq!(parse_duration("7D"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1Y"), Some(Duration::from_secs(365 * 86_400)));
        assert_eq!(parse_duration("10x"), None);
        assert_eq!(read_duration("0h"), DurationArg::Invalid);
        assert_eq!(read_duration("1.5h"), DurationArg::Invalid);
        assert_eq!(read_duration("12"), DurationArg::Invalid);
        assert_eq!(read_duration("h"), DurationArg::NoNumber);
        assert_eq!(read_duration("-1h"), DurationArg::NoNumber);
        assert_eq!(read_duration(""), DurationArg::NoNumber);
    }
}
