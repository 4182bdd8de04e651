//! Stream filtering: a publisher tags a message with `x-stream-filter-value`
//! (a header); a consumer that asks for `x-stream-filter` (a value or a
//! list of values) gets only the messages tagged with one of them, and
//! the untagged ones too if it sets `x-stream-match-unfiltered`. As
//! RabbitMQ 3.13's stream filtering over AMQP 0-9-1, except that Warren
//! filters exactly, message by message, so consumers need no filter of
//! their own for false positives.

use warren_protocol::{FieldTable, FieldValue};

use crate::message::Message;

/// What a consumer asked to receive.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// None: no filter, everything passes.
    values: Option<Vec<String>>,
    match_unfiltered: bool,
}

fn text(value: &FieldValue) -> Option<String> {
    match value {
        FieldValue::LongStr(bytes) | FieldValue::ByteArray(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        other => other.as_str().map(str::to_string),
    }
}

impl Filter {
    /// From a consumer's arguments.
    pub(crate) fn from_arguments(arguments: &FieldTable) -> Filter {
        let values = arguments.get("x-stream-filter").map(|value| match value {
            FieldValue::Array(items) => items.iter().filter_map(text).collect(),
            other => text(other).into_iter().collect(),
        });
        let match_unfiltered = arguments
            .get("x-stream-match-unfiltered")
            .and_then(FieldValue::as_bool)
            .unwrap_or(false);
        Filter {
            values,
            match_unfiltered,
        }
    }

    /// Whether it lets everything through.
    pub(crate) fn is_none(&self) -> bool {
        self.values.is_none()
    }

    /// Whether `message` is for this consumer.
    pub(crate) fn accepts(&self, message: &Message) -> bool {
        let Some(values) = &self.values else {
            return true;
        };
        let tag = message
            .header
            .properties()
            .headers
            .as_ref()
            .and_then(|h| h.get("x-stream-filter-value"))
            .and_then(text);
        match tag {
            Some(tag) => values.contains(&tag),
            None => self.match_unfiltered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use warren_protocol::{BasicProperties, ContentHeader, ShortStr};

    fn message(tag: Option<&str>) -> std::sync::Arc<Message> {
        let mut properties = BasicProperties::default();
        if let Some(tag) = tag {
            let mut headers = FieldTable::new();
            headers.insert("x-stream-filter-value", FieldValue::from(tag));
            properties.headers = Some(headers);
        }
        Message::new(
            ShortStr::from(""),
            ShortStr::from("s"),
            ContentHeader::new(60, 0, properties),
            Bytes::new(),
        )
    }

    #[test]
    fn only_the_values_asked_for_and_untagged_if_asked() {
        let mut args = FieldTable::new();
        args.insert(
            "x-stream-filter",
            FieldValue::Array(vec![FieldValue::from("eu"), FieldValue::from("us")]),
        );
        let filter = Filter::from_arguments(&args);
        assert!(filter.accepts(&message(Some("eu"))));
        assert!(!filter.accepts(&message(Some("apac"))));
        assert!(!filter.accepts(&message(None)));
        args.insert("x-stream-match-unfiltered", FieldValue::Bool(true));
        assert!(Filter::from_arguments(&args).accepts(&message(None)));
        assert!(Filter::from_arguments(&FieldTable::new()).accepts(&message(Some("x"))));
    }
}
