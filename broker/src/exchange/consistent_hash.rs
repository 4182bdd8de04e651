//! The consistent-hash exchange (`x-consistent-hash`, RabbitMQ's
//! rabbitmq_consistent_hash_exchange plugin): partitions messages by key.
//! A binding's key is its weight; a message goes to one destination,
//! chosen by a hash of its routing key (or of a header, `hash-header`, or
//! a property, `hash-property`), so messages with the same key reach the
//! same queue for as long as the bindings stay the same, and the shares
//! follow the weights.
//!
//! Warren places [`POINTS_PER_WEIGHT`] points per unit of weight for each
//! binding on a hash ring (xxh3 of the destination, the weight and the
//! point's number) and sends a message to the owner of the first point at
//! or after its key's hash. Unlike RabbitMQ 3.10's jump-hash buckets,
//! whose numbering shifts when a binding goes (moving keys between the
//! queues that stay), removing a binding moves only the keys that were
//! its own, and adding one takes keys only for itself.

use warren_protocol::{BasicProperties, FieldTable, FieldValue, ShortStr};
use xxhash_rust::xxh3::xxh3_64;

use super::{Binding, Destination, Route};
use crate::error::{AmqpError, AmqpResult};

/// Ring points per unit of weight: enough that shares follow the weights
/// to within about a percentage point.
const POINTS_PER_WEIGHT: u64 = 160;
/// Weights above this count as this (a ring of 160,000 points for one
/// binding is plenty).
const MAX_WEIGHT: u64 = 1000;

/// A message property the exchange can hash on (`hash-property`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashProperty {
    MessageId,
    CorrelationId,
    Timestamp,
}

/// What a message is placed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HashOn {
    RoutingKey,
    Header(ShortStr),
    Property(HashProperty),
}

impl HashOn {
    /// Reads (and checks, with RabbitMQ's texts) the exchange's arguments.
    pub(crate) fn from_arguments(arguments: &FieldTable) -> AmqpResult<HashOn> {
        let header = arguments.get("hash-header");
        let property = arguments.get("hash-property");
        match (header, property) {
            (Some(_), Some(_)) => Err(AmqpError::precondition_failed(
                "hash-header and hash-property are mutually exclusive",
            )),
            (Some(header), None) => match header.as_str() {
                Some(name) => Ok(HashOn::Header(ShortStr::from(name))),
                // RabbitMQ fails with an internal error here; a clear 406 is kinder.
                None => Err(AmqpError::precondition_failed("hash-header must be a string")),
            },
            (None, Some(property)) => match property.as_str() {
                Some("message_id") => Ok(HashOn::Property(HashProperty::MessageId)),
                Some("correlation_id") => Ok(HashOn::Property(HashProperty::CorrelationId)),
                Some("timestamp") => Ok(HashOn::Property(HashProperty::Timestamp)),
                Some(other) => Err(AmqpError::precondition_failed(format!("Unsupported property: {other}"))),
                None => Err(AmqpError::precondition_failed("hash-property must be a string")),
            },
            (None, None) => Ok(HashOn::RoutingKey),
        }
    }
}

/// A binding's weight, from its key, checked as RabbitMQ checks it.
pub(crate) fn validate_binding(routing_key: &str) -> AmqpResult<()> {
    match routing_key.parse::<i64>() {
        Ok(weight) if weight > 0 => Ok(()),
        Ok(_) => Err(AmqpError::precondition_failed("The binding key must be greater than 0")),
        Err(_) => Err(AmqpError::precondition_failed(format!(
            "The binding key must be an integer: <<\"{routing_key}\">>"
        ))),
    }
}

fn weight(binding: &Binding) -> u64 {
    binding.routing_key.parse::<u64>().unwrap_or(1).clamp(1, MAX_WEIGHT)
}

/// Where one point of `binding` sits on the ring.
fn point(binding: &Binding, n: u64) -> u64 {
    let (kind, name) = match &binding.destination {
        Destination::Queue(q) => (b'q', q.name.as_bytes()),
        Destination::Exchange(x) => (b'e', x.as_bytes()),
    };
    let mut input = Vec::with_capacity(name.len() + binding.routing_key.len() + 12);
    input.push(kind);
    input.extend_from_slice(name);
    input.push(0);
    input.extend_from_slice(binding.routing_key.as_bytes());
    input.push(0);
    input.extend_from_slice(&n.to_le_bytes());
    xxh3_64(&input)
}

#[derive(Debug)]
pub(super) struct ConsistentHashRouter {
    hash_on: HashOn,
    bindings: Vec<Binding>,
    /// The points: (position, index in `bindings`), by position.
    ring: Vec<(u64, u32)>,
}

impl ConsistentHashRouter {
    pub(super) fn new(hash_on: HashOn) -> Self {
        ConsistentHashRouter {
            hash_on,
            bindings: Vec::new(),
            ring: Vec::new(),
        }
    }

    /// Removes the binding at `index` and its points.
    fn remove_at(&mut self, index: usize) {
        self.bindings.remove(index);
        let index = index as u32;
        self.ring.retain(|&(_, i)| i != index);
        for (_, i) in &mut self.ring {
            if *i > index {
                *i -= 1;
            }
        }
    }

    /// Hashes what the exchange places messages by; a missing header or
    /// property hashes as empty (RabbitMQ routes such messages too).
    fn key_hash(&self, routing_key: &str, properties: &BasicProperties) -> u64 {
        match &self.hash_on {
            HashOn::RoutingKey => xxh3_64(routing_key.as_bytes()),
            HashOn::Header(name) => match properties.headers.as_ref().and_then(|h| h.get(name)) {
                Some(FieldValue::LongStr(bytes)) | Some(FieldValue::ByteArray(bytes)) => xxh3_64(bytes),
                Some(other) => xxh3_64(format!("{other:?}").as_bytes()),
                None => xxh3_64(b""),
            },
            HashOn::Property(property) => {
                let text = match property {
                    HashProperty::MessageId => properties.message_id.as_ref().map(|s| s.to_string()),
                    HashProperty::CorrelationId => properties.correlation_id.as_ref().map(|s| s.to_string()),
                    HashProperty::Timestamp => properties.timestamp.map(|t| t.to_string()),
                };
                xxh3_64(text.unwrap_or_default().as_bytes())
            }
        }
    }
}

impl Route for ConsistentHashRouter {
    fn bind(&mut self, binding: Binding) -> bool {
        if self.bindings.iter().any(|b| b.same_as(&binding)) {
            return false;
        }
        let index = self.bindings.len() as u32;
        let mut points: Vec<(u64, u32)> = (0..weight(&binding) * POINTS_PER_WEIGHT)
            .map(|n| (point(&binding, n), index))
            .collect();
        points.sort_unstable();
        let old = std::mem::take(&mut self.ring);
        let mut merged = Vec::with_capacity(old.len() + points.len());
        let (mut a, mut b) = (old.into_iter().peekable(), points.into_iter().peekable());
        while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
            if x <= y {
                merged.extend(a.next());
            } else {
                merged.extend(b.next());
            }
        }
        merged.extend(a);
        merged.extend(b);
        self.ring = merged;
        self.bindings.push(binding);
        true
    }

    fn unbind(&mut self, binding: &Binding) -> bool {
        match self.bindings.iter().position(|b| b.same_as(binding)) {
            Some(index) => {
                self.remove_at(index);
                true
            }
            None => false,
        }
    }

    fn remove_destination(&mut self, destination: &Destination) -> usize {
        let mut removed = 0;
        while let Some(index) = self.bindings.iter().position(|b| b.destination == *destination) {
            self.remove_at(index);
            removed += 1;
        }
        removed
    }

    fn route(&self, routing_key: &str, properties: &BasicProperties, found: &mut dyn FnMut(&Destination)) {
        if self.ring.is_empty() {
            return;
        }
        let hash = self.key_hash(routing_key, properties);
        let at = self.ring.partition_point(|&(position, _)| position < hash);
        let (_, index) = self.ring[if at == self.ring.len() { 0 } else { at }];
        found(&self.bindings[index as usize].destination);
    }

    fn bindings(&self) -> Vec<Binding> {
        self.bindings.clone()
    }

    fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, weight: &str) -> Binding {
        Binding::new(
            Destination::Exchange(ShortStr::from(name)),
            ShortStr::from(weight),
            FieldTable::new(),
        )
    }

    fn owner(router: &ConsistentHashRouter, key: &str) -> String {
        let mut out = String::new();
        router.route(key, &BasicProperties::default(), &mut |d| {
            if let Destination::Exchange(name) = d {
                out = name.to_string();
            }
        });
        out
    }

    fn router(weights: &[(&str, &str)]) -> ConsistentHashRouter {
        let mut r = ConsistentHashRouter::new(HashOn::RoutingKey);
        for (name, weight) in weights {
            assert!(r.bind(binding(name, weight)));
        }
        r
    }

    #[test]
    fn shares_follow_the_weights() {
        let r = router(&[("a", "1"), ("b", "1"), ("c", "2"), ("d", "4")]);
        let mut counts = std::collections::HashMap::new();
        for i in 0..20_000 {
            *counts.entry(owner(&r, &format!("k{i}"))).or_insert(0) += 1;
        }
        for (name, share) in [("a", 0.125), ("b", 0.125), ("c", 0.25), ("d", 0.5)] {
            let got = counts[name] as f64 / 20_000.0;
            assert!((got - share).abs() < 0.03, "{name}: {got} for {share}");
        }
    }

    #[test]
    fn removing_a_binding_moves_only_its_own_keys() {
        let mut r = router(&[("a", "1"), ("b", "1"), ("c", "2"), ("d", "4")]);
        let keys: Vec<String> = (0..5_000).map(|i| format!("k{i}")).collect();
        let before: Vec<String> = keys.iter().map(|k| owner(&r, k)).collect();
        assert!(r.unbind(&binding("b", "1")));
        for (key, was) in keys.iter().zip(&before) {
            let now = owner(&r, key);
            if was != "b" {
                assert_eq!(&now, was, "{key} moved although its queue stayed");
            } else {
                assert_ne!(now, "b");
            }
        }
        // Back as it was: every key returns to where it was.
        assert!(r.bind(binding("b", "1")));
        let again: Vec<String> = keys.iter().map(|k| owner(&r, k)).collect();
        assert_eq!(again, before);
    }

    #[test]
    fn weights_and_arguments_are_checked_as_rabbitmq_checks_them() {
        let text = |e: AmqpError| e.reply_text().to_string();
        assert!(validate_binding("3").is_ok());
        assert_eq!(
            text(validate_binding("abc").unwrap_err()),
            "PRECONDITION_FAILED - The binding key must be an integer: <<\"abc\">>"
        );
        assert_eq!(
            text(validate_binding("0").unwrap_err()),
            "PRECONDITION_FAILED - The binding key must be greater than 0"
        );
        let mut args = FieldTable::new();
        args.insert("hash-property", FieldValue::from("foo"));
        assert_eq!(
            text(HashOn::from_arguments(&args).unwrap_err()),
            "PRECONDITION_FAILED - Unsupported property: foo"
        );
        args.insert("hash-header", FieldValue::from("h"));
        assert_eq!(
            text(HashOn::from_arguments(&args).unwrap_err()),
            "PRECONDITION_FAILED - hash-header and hash-property are mutually exclusive"
        );
    }
}
