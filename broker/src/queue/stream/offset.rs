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

/// A duration as RabbitMQ's streams write them: a positive integer and a
/// unit, `Y` (365 days), `M` (30 days), `D`, `h`, `m` or `s`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let number: u64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        'Y' => 365 * 86_400,
        'M' => 30 * 86_400,
        'D' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return None,
    };
    Some(Duration::from_secs(number.checked_mul(seconds)?))
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
            Some(text) => {
                let ago = parse_duration(text).ok_or_else(invalid)?;
                Ok(OffsetSpec::Since(now_ms().saturating_sub(ago.as_millis() as u64)))
            }
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
    }

    #[test]
    fn durations_in_rabbitmqs_units() {
        assert_eq!(parse_duration("7D"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1Y"), Some(Duration::from_secs(365 * 86_400)));
        assert_eq!(parse_duration("10x"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration(""), None);
    }
}
