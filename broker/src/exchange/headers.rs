//! The headers exchange: bindings match on the message's `headers` table
//! instead of its routing key.
//!
//! A binding's arguments are its pattern, with `x-match` saying how:
//! `all` (the default) needs every pattern entry to match, `any` at least
//! one; `all-with-x` and `any-with-x` also consider pattern keys starting
//! with `x-`, which the plain forms skip. As in RabbitMQ, an entry whose
//! value is void matches on the key's presence alone, and a value of another
//! type never matches (an integer 1 is not the string "1").

use warren_protocol::{erlang_binary_text, BasicProperties, FieldTable, FieldValue, ShortStr};

use super::{Binding, Destination, Route};
use crate::error::{AmqpError, AmqpResult};
use crate::queue::type_name;

/// The `x-match` values there are.
const X_MATCH: [&str; 4] = ["all", "any", "all-with-x", "any-with-x"];

/// Refuses a binding whose `x-match` is not one of [`X_MATCH`], with
/// RabbitMQ's texts (values as Erlang prints them).
pub(super) fn validate_binding(arguments: &FieldTable) -> AmqpResult<()> {
    let Some(value) = arguments.get("x-match") else {
        return Ok(());
    };
    match value {
        FieldValue::LongStr(bytes) if X_MATCH.iter().any(|m| m.as_bytes() == &bytes[..]) => Ok(()),
        FieldValue::LongStr(bytes) => Err(AmqpError::precondition_failed(format!(
            "Invalid x-match field value {}; expected all, any, all-with-x, or any-with-x",
            erlang_binary_text(bytes)
        ))),
        other => Err(AmqpError::precondition_failed(format!(
            "Invalid x-match field type {} (value {}); expected longstr",
            type_name(other),
            erlang_term(other)
        ))),
    }
}

/// A non-string value as Erlang's `~p` prints it.
fn erlang_term(value: &FieldValue) -> String {
    match value {
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::F32(v) => v.to_string(),
        FieldValue::F64(v) => v.to_string(),
        FieldValue::ByteArray(bytes) => erlang_binary_text(bytes),
        FieldValue::Void => "undefined".to_string(),
        FieldValue::U64(v) => v.to_string(),
        FieldValue::Timestamp(v) => v.to_string(),
        v => v.as_i64().map_or_else(|| "[...]".to_string(), |n| n.to_string()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchKind {
    All,
    Any,
}

#[derive(Debug)]
struct Pattern {
    kind: MatchKind,
    entries: Vec<(ShortStr, FieldValue)>,
    binding: Binding,
}

impl Pattern {
    fn new(binding: Binding) -> Pattern {
        let x_match = binding
            .arguments
            .get("x-match")
            .and_then(|v| v.as_str())
            .unwrap_or("all");
        let (kind, with_x) = match x_match {
            "any" => (MatchKind::Any, false),
            "any-with-x" => (MatchKind::Any, true),
            "all-with-x" => (MatchKind::All, true),
            _ => (MatchKind::All, false),
        };
        let entries = binding
            .arguments
            .iter()
            .filter(|(k, _)| k.as_str() != "x-match" && (with_x || !k.starts_with("x-")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Pattern { kind, entries, binding }
    }

    fn matches(&self, headers: Option<&FieldTable>) -> bool {
        let entry_matches = |(key, expected): &(ShortStr, FieldValue)| {
            let Some(actual) = headers.and_then(|h| h.get(key)) else {
                return false;
            };
            match (expected, expected.as_i64(), actual.as_i64()) {
                (FieldValue::Void, ..) => true,
                // RabbitMQ 3.10 matches integers of any width by value.
                (_, Some(e), Some(a)) => e == a,
                _ => expected.type_tag() == actual.type_tag() && expected == actual,
            }
        };
        match self.kind {
            MatchKind::All => self.entries.iter().all(entry_matches),
            MatchKind::Any => self.entries.iter().any(entry_matches),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct HeadersRouter {
    patterns: Vec<Pattern>,
}

impl Route for HeadersRouter {
    fn bind(&mut self, binding: Binding) -> bool {
        if self.patterns.iter().any(|p| p.binding.same_as(&binding)) {
            return false;
        }
        self.patterns.push(Pattern::new(binding));
        true
    }

    fn unbind(&mut self, binding: &Binding) -> bool {
        let before = self.patterns.len();
        self.patterns.retain(|p| !p.binding.same_as(binding));
        self.patterns.len() != before
    }

    fn remove_destination(&mut self, destination: &Destination) -> usize {
        let before = self.patterns.len();
        self.patterns.retain(|p| p.binding.destination != *destination);
        before - self.patterns.len()
    }

    fn route(&self, _routing_key: &str, properties: &BasicProperties, found: &mut dyn FnMut(&Destination)) {
        let headers = properties.headers.as_ref();
        for pattern in &self.patterns {
            if pattern.matches(headers) {
                found(&pattern.binding.destination);
            }
        }
    }

    fn bindings(&self) -> Vec<Binding> {
        self.patterns.iter().map(|p| p.binding.clone()).collect()
    }

    fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::binding::Destination;

    fn pattern(entries: &[(&str, FieldValue)]) -> Pattern {
        let arguments: FieldTable = entries.iter().map(|(k, v)| (ShortStr::from(*k), v.clone())).collect();
        Pattern::new(Binding::new(
            Destination::Exchange("x".into()),
            ShortStr::default(),
            arguments,
        ))
    }

    fn headers(entries: &[(&str, FieldValue)]) -> FieldTable {
        entries.iter().map(|(k, v)| (ShortStr::from(*k), v.clone())).collect()
    }

    #[test]
    fn all_needs_every_entry_and_any_needs_one() {
        let all = pattern(&[("a", "1".into()), ("b", "2".into())]);
        let any = pattern(&[("x-match", "any".into()), ("a", "1".into()), ("b", "2".into())]);
        let both = headers(&[("a", "1".into()), ("b", "2".into()), ("c", "3".into())]);
        let one = headers(&[("a", "1".into())]);
        assert!(all.matches(Some(&both)) && !all.matches(Some(&one)) && !all.matches(None));
        assert!(any.matches(Some(&both)) && any.matches(Some(&one)) && !any.matches(None));
    }

    #[test]
    fn x_keys_count_only_in_the_with_x_forms() {
        let plain = pattern(&[("x-match", "all".into()), ("x-tag", "t".into())]);
        let with_x = pattern(&[("x-match", "all-with-x".into()), ("x-tag", "t".into())]);
        let none = headers(&[]);
        assert!(
            plain.matches(Some(&none)),
            "x- keys are skipped, so nothing is required"
        );
        assert!(!with_x.matches(Some(&none)));
        assert!(with_x.matches(Some(&headers(&[("x-tag", "t".into())]))));
    }

    #[test]
    fn values_compare_by_type_integers_by_value_and_void_by_presence() {
        let int = pattern(&[("n", FieldValue::I32(5))]);
        assert!(int.matches(Some(&headers(&[("n", FieldValue::I64(5))]))));
        assert!(int.matches(Some(&headers(&[("n", FieldValue::U8(5))]))));
        assert!(!int.matches(Some(&headers(&[("n", "5".into())]))));
        let present = pattern(&[("n", FieldValue::Void)]);
        assert!(present.matches(Some(&headers(&[("n", FieldValue::Bool(false))]))));
        assert!(!present.matches(Some(&headers(&[("m", FieldValue::Void)]))));
    }

    #[test]
    fn x_match_must_be_one_of_the_four_strings() {
        for ok in ["all", "any", "all-with-x", "any-with-x"] {
            assert!(validate_binding(&headers(&[("x-match", ok.into())])).is_ok(), "{ok}");
        }
        assert!(validate_binding(&headers(&[])).is_ok());
        let bad = validate_binding(&headers(&[("x-match", "ALL".into())])).unwrap_err();
        assert_eq!(
            bad.text,
            "PRECONDITION_FAILED - Invalid x-match field value <<\"ALL\">>; expected all, any, all-with-x, or any-with-x"
        );
        let typed = validate_binding(&headers(&[("x-match", FieldValue::I64(7))])).unwrap_err();
        assert_eq!(
            typed.text,
            "PRECONDITION_FAILED - Invalid x-match field type long (value 7); expected longstr"
        );
    }
}
