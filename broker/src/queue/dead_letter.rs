//! Dead-lettering: turning a message that died in a queue into a new
//! message for the queue's dead-letter exchange, with RabbitMQ's `x-death`
//! history, and detecting dead-letter cycles.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use warren_protocol::{FieldTable, FieldValue, ShortStr};

use super::{Queue, QueueHost};
use crate::message::Message;

/// Why a message was dead-lettered, as written in `x-death`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeathReason {
    /// basic.reject or basic.nack with requeue=false.
    Rejected,
    /// Its TTL ran out.
    Expired,
    /// A length limit dropped it.
    MaxLen,
    /// It was returned more often than `x-delivery-limit` allows.
    DeliveryLimit,
}

impl DeathReason {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::MaxLen => "maxlen",
            DeathReason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// The routing keys a message was published with: its routing key and any
/// `CC` header (`BCC` is never kept).
fn original_routing_keys(message: &Message) -> Vec<FieldValue> {
    let mut keys = vec![FieldValue::from(message.routing_key.as_str())];
    let headers = message.header.properties().headers.as_ref();
    if let Some(cc) = headers.and_then(|h| h.get("CC")).and_then(FieldValue::as_array) {
        keys.extend(cc.iter().filter(|v| v.as_str().is_some()).cloned());
    }
    keys
}

/// Builds the message to publish to the dead-letter exchange, and the
/// routing keys to route it with.
pub(super) fn dead_letter_message(
    message: &Message,
    reason: DeathReason,
    queue: &ShortStr,
    dead_letter_exchange: &ShortStr,
    dead_letter_routing_key: Option<&ShortStr>,
) -> (Arc<Message>, Vec<ShortStr>) {
    let routing_keys = original_routing_keys(message);
    let mut header = message.header.clone();
    let properties = header.properties_mut();
    let original_expiration = properties.expiration.take();
    let mut headers = properties.headers.take().unwrap_or_default();
    headers.remove("BCC");

    let mut deaths: Vec<FieldValue> = match headers.remove("x-death") {
        Some(FieldValue::Array(deaths)) => deaths,
        _ => Vec::new(),
    };
    let same_death = |d: &FieldValue| {
        d.as_table().is_some_and(|t| {
            t.get("queue").and_then(FieldValue::as_str) == Some(queue.as_str())
                && t.get("reason").and_then(FieldValue::as_str) == Some(reason.as_str())
        })
    };
    let entry = match deaths.iter().position(same_death) {
        Some(index) => {
            // The same death again: count it and move it to the front.
            let FieldValue::Table(mut table) = deaths.remove(index) else {
                unreachable!("matched a table above")
            };
            let count = table.get("count").and_then(FieldValue::as_i64).unwrap_or(0);
            // The count comes from the client: it must not overflow.
            table.insert("count", FieldValue::I64(count.saturating_add(1)));
            table
        }
        None => {
            let mut table = FieldTable::new();
            table.insert("count", FieldValue::I64(1));
            table.insert("reason", reason.as_str().into());
            table.insert("queue", queue.as_str().into());
            table.insert("time", FieldValue::Timestamp(now_secs()));
            table.insert("exchange", message.exchange.as_str().into());
            table.insert("routing-keys", FieldValue::Array(routing_keys.clone()));
            if let Some(expiration) = &original_expiration {
                table.insert("original-expiration", expiration.as_str().into());
            }
            table
        }
    };
    deaths.insert(0, FieldValue::Table(entry));
    for (key, value) in [
        ("x-first-death-reason", reason.as_str()),
        ("x-first-death-queue", queue.as_str()),
        ("x-first-death-exchange", message.exchange.as_str()),
    ] {
        if headers.get(key).is_none() {
            headers.insert(key, value.into());
        }
    }
    headers.insert("x-death", FieldValue::Array(deaths));
    properties.headers = Some(headers);

    let keys: Vec<ShortStr> = match dead_letter_routing_key {
        Some(key) => vec![key.clone()],
        None => routing_keys
            .iter()
            .filter_map(FieldValue::as_str)
            .map(ShortStr::from)
            .collect(),
    };
    let routing_key = keys.first().cloned().unwrap_or_default();
    let dead = Message::new(dead_letter_exchange.clone(), routing_key, header, message.body.clone());
    (dead, keys)
}

/// Whether dead-lettering into `queue` would close a cycle with no rejection
/// in it (which RabbitMQ drops rather than loop forever). `deaths` is the
/// new message's `x-death`, most recent first.
pub(super) fn is_automatic_cycle(queue: &str, message: &Message) -> bool {
    let headers = message.header.properties().headers.as_ref();
    let Some(deaths) = headers.and_then(|h| h.get("x-death")).and_then(FieldValue::as_array) else {
        return false;
    };
    fn queue_of(d: &FieldValue) -> Option<&str> {
        d.as_table().and_then(|t| t.get("queue")).and_then(FieldValue::as_str)
    }
    let Some(end) = deaths.iter().position(|d| queue_of(d) == Some(queue)) else {
        return false;
    };
    deaths[..=end].iter().all(|d| {
        d.as_table()
            .and_then(|t| t.get("reason"))
            .and_then(FieldValue::as_str)
            .is_some_and(|reason| reason != "rejected")
    })
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Publishes one dead message to the queue's dead-letter exchange `dlx`
/// (through `host`, which routes it), as RabbitMQ does: once per routing
/// key it was published with, to each queue at most once, never back
/// around an automatic cycle.
pub(super) fn republish(
    queue: &Arc<Queue>,
    host: &dyn QueueHost,
    dlx: &ShortStr,
    message: &Message,
    reason: DeathReason,
) {
    let (message, keys) = dead_letter_message(
        message,
        reason,
        &queue.name,
        dlx,
        queue.args().dead_letter_routing_key.as_ref(),
    );
    let mut targets = Vec::new();
    let properties = message.header.properties();
    for key in &keys {
        if !host.route_to(dlx, key, properties, &mut targets) {
            tracing::debug!(queue = %queue.name, "dead-letter exchange '{dlx}' does not exist; message dropped");
            return;
        }
    }
    for (i, target) in targets.iter().enumerate() {
        if targets[..i].iter().any(|q| Arc::ptr_eq(q, target)) {
            continue;
        }
        if reason != DeathReason::Rejected && is_automatic_cycle(&target.name, &message) {
            continue;
        }
        target.publish(message.clone());
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use warren_protocol::{BasicProperties, ContentHeader};

    use super::*;

    fn message(headers: Option<FieldTable>, expiration: Option<&str>) -> Arc<Message> {
        let properties = BasicProperties {
            headers,
            expiration: expiration.map(ShortStr::from),
            ..Default::default()
        };
        Message::new(
            "orders".into(),
            "eu.created".into(),
            ContentHeader::new(60, 2, properties),
            Bytes::from_static(b"hi"),
        )
    }

    fn deaths(message: &Message) -> Vec<FieldTable> {
        let headers = message.header.properties().headers.clone().unwrap_or_default();
        headers
            .get("x-death")
            .and_then(FieldValue::as_array)
            .map(|a| a.iter().filter_map(FieldValue::as_table).cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_first_death_records_where_why_and_how_it_was_published() {
        let mut headers = FieldTable::new();
        headers.insert("CC", FieldValue::Array(vec!["copy.key".into()]));
        headers.insert("BCC", FieldValue::Array(vec!["secret".into()]));
        let original = message(Some(headers), Some("60000"));
        let (dead, keys) = dead_letter_message(&original, DeathReason::Expired, &"work".into(), &"dlx".into(), None);
        assert_eq!(keys, vec![ShortStr::from("eu.created"), ShortStr::from("copy.key")]);
        assert_eq!(dead.exchange.as_str(), "dlx");
        assert_eq!(dead.routing_key.as_str(), "eu.created");
        let properties = dead.header.properties();
        assert_eq!(properties.expiration, None, "the expiration moves into x-death");
        let headers = properties.headers.as_ref().unwrap();
        assert!(headers.get("BCC").is_none());
        assert_eq!(
            headers.get("x-first-death-reason").and_then(FieldValue::as_str),
            Some("expired")
        );
        assert_eq!(
            headers.get("x-first-death-queue").and_then(FieldValue::as_str),
            Some("work")
        );
        assert_eq!(
            headers.get("x-first-death-exchange").and_then(FieldValue::as_str),
            Some("orders")
        );
        let death = &deaths(&dead)[0];
        assert_eq!(death.get("count").and_then(FieldValue::as_i64), Some(1));
        assert_eq!(death.get("reason").and_then(FieldValue::as_str), Some("expired"));
        assert_eq!(
            death.get("original-expiration").and_then(FieldValue::as_str),
            Some("60000")
        );
        assert_eq!(
            death
                .get("routing-keys")
                .and_then(FieldValue::as_array)
                .map(<[FieldValue]>::len),
            Some(2)
        );
    }

    #[test]
    fn the_same_death_again_counts_up_and_moves_to_the_front() {
        let original = message(None, None);
        let (once, _) = dead_letter_message(&original, DeathReason::Rejected, &"a".into(), &"dlx".into(), None);
        let (elsewhere, _) = dead_letter_message(&once, DeathReason::Expired, &"b".into(), &"dlx".into(), None);
        let (again, _) = dead_letter_message(&elsewhere, DeathReason::Rejected, &"a".into(), &"dlx".into(), None);
        let all = deaths(&again);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].get("queue").and_then(FieldValue::as_str), Some("a"));
        assert_eq!(all[0].get("count").and_then(FieldValue::as_i64), Some(2));
        assert_eq!(all[1].get("queue").and_then(FieldValue::as_str), Some("b"));
        let first = again.header.properties().headers.clone().unwrap();
        assert_eq!(first.get("x-first-death-queue").and_then(FieldValue::as_str), Some("a"));
    }

    #[test]
    fn a_count_at_the_limit_saturates_instead_of_overflowing() {
        let mut death = FieldTable::new();
        death.insert("count", FieldValue::I64(i64::MAX));
        death.insert("reason", "rejected".into());
        death.insert("queue", "a".into());
        let mut headers = FieldTable::new();
        headers.insert("x-death", FieldValue::Array(vec![FieldValue::Table(death)]));
        let (dead, _) = dead_letter_message(
            &message(Some(headers), None),
            DeathReason::Rejected,
            &"a".into(),
            &"dlx".into(),
            None,
        );
        assert_eq!(
            deaths(&dead)[0].get("count").and_then(FieldValue::as_i64),
            Some(i64::MAX)
        );
    }

    #[test]
    fn a_dead_letter_routing_key_replaces_the_original_keys() {
        let (dead, keys) = dead_letter_message(
            &message(None, None),
            DeathReason::MaxLen,
            &"a".into(),
            &"dlx".into(),
            Some(&"parking".into()),
        );
        assert_eq!(keys, vec![ShortStr::from("parking")]);
        assert_eq!(dead.routing_key.as_str(), "parking");
    }

    #[test]
    fn only_cycles_without_a_rejection_are_automatic() {
        let original = message(None, None);
        let (in_a, _) = dead_letter_message(&original, DeathReason::Expired, &"a".into(), &"dlx".into(), None);
        let (in_b, _) = dead_letter_message(&in_a, DeathReason::Expired, &"b".into(), &"dlx".into(), None);
        assert!(is_automatic_cycle("a", &in_b), "a -> b -> a by expiry loops forever");
        assert!(!is_automatic_cycle("c", &in_b), "c was never visited");
        let (rejected, _) = dead_letter_message(&in_a, DeathReason::Rejected, &"b".into(), &"dlx".into(), None);
        assert!(!is_automatic_cycle("a", &rejected), "a rejection breaks the cycle");
    }
}
