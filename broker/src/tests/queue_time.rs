//! The queue's clocks under controlled time (`tokio::time::pause`): message
//! TTLs, per-message expirations and `x-expires` act when their time comes
//! and not before, and expired messages reach the dead-letter exchange in
//! order. Through a real vhost with no store; nothing sleeps for real.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use warren_protocol::{BasicProperties, ContentHeader, FieldTable, FieldValue, ShortStr};

use crate::exchange::{Destination, ExchangeKind, ExchangeSettings};
use crate::message::Message;
use crate::queue::{Queue, QueueSettings};
use crate::vhost::VHost;

fn vhost() -> Arc<VHost> {
    VHost::standalone("/")
}

fn declare(vhost: &Arc<VHost>, name: &str, arguments: &[(&str, FieldValue)]) -> Arc<Queue> {
    let settings = QueueSettings {
        durable: false,
        exclusive_owner: None,
        auto_delete: false,
        arguments: arguments.iter().map(|(k, v)| (ShortStr::from(*k), v.clone())).collect(),
    };
    vhost.declare_queue(&ShortStr::from(name), settings).expect("declare")
}

fn publish(queue: &Arc<Queue>, body: &'static str, expiration: Option<&str>) {
    let properties = BasicProperties {
        expiration: expiration.map(ShortStr::from),
        ..Default::default()
    };
    let header = ContentHeader::new(60, body.len() as u64, properties);
    queue.publish(Message::new(
        "".into(),
        queue.name.clone(),
        header,
        Bytes::from_static(body.as_bytes()),
    ));
}

/// Moves the clock on and lets the queue's timer task run.
async fn after(duration: Duration) {
    tokio::time::advance(duration).await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn bodies(queue: &Arc<Queue>) -> Vec<String> {
    std::iter::from_fn(|| queue.get(false).map(|(entry, _)| entry))
        .map(|entry| String::from_utf8_lossy(&entry.message.body).into_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_queue_ttl_expires_messages_when_it_runs_out_not_before() {
    let v = vhost();
    let q = declare(&v, "q", &[("x-message-ttl", FieldValue::I32(1000))]);
    publish(&q, "a", None);
    after(Duration::from_millis(999)).await;
    assert_eq!(q.message_count(), 1);
    after(Duration::from_millis(2)).await;
    assert_eq!(q.message_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_shorter_of_queue_ttl_and_expiration_wins_and_only_heads_expire() {
    let v = vhost();
    let q = declare(&v, "q", &[("x-message-ttl", FieldValue::I32(10_000))]);
    publish(&q, "long", None);
    publish(&q, "short", Some("1000"));
    after(Duration::from_secs(2)).await;
    assert_eq!(q.message_count(), 2, "'short' waits behind a live head, as in RabbitMQ");
    after(Duration::from_secs(9)).await;
    assert_eq!(q.message_count(), 0);

    publish(&q, "first", Some("1000"));
    publish(&q, "second", None);
    after(Duration::from_millis(1500)).await;
    assert_eq!(bodies(&q), ["second"]);
}

#[tokio::test(start_paused = true)]
async fn an_unused_queue_expires_and_use_puts_it_off() {
    let v = vhost();
    let q = declare(&v, "temporary", &[("x-expires", FieldValue::I32(1000))]);
    after(Duration::from_millis(900)).await;
    assert!(v.queue("temporary").is_some());
    assert!(q.get(false).is_none(), "a basic.get is a use");
    after(Duration::from_millis(900)).await;
    assert!(
        v.queue("temporary").is_some(),
        "1.8 s after declaring, 0.9 s after its last use"
    );
    after(Duration::from_millis(200)).await;
    assert!(v.queue("temporary").is_none(), "gone 1 s after its last use");
}

#[tokio::test(start_paused = true)]
async fn expired_messages_are_dead_lettered_in_order_with_their_death() {
    let v = vhost();
    let settings = ExchangeSettings {
        kind: ExchangeKind::Fanout,
        durable: false,
        auto_delete: false,
        internal: false,
        arguments: FieldTable::new(),
    };
    v.declare_exchange(&ShortStr::from("dlx"), settings).unwrap();
    let dead = declare(&v, "dead", &[]);
    v.bind(
        "dlx",
        Destination::Queue(dead.clone()),
        ShortStr::default(),
        FieldTable::new(),
    )
    .unwrap();
    let q = declare(
        &v,
        "work",
        &[
            ("x-message-ttl", FieldValue::I32(500)),
            ("x-dead-letter-exchange", "dlx".into()),
        ],
    );
    for body in ["1", "2", "3"] {
        publish(&q, body, None);
    }
    after(Duration::from_millis(501)).await;
    let letters: Vec<Arc<Message>> = std::iter::from_fn(|| dead.get(false).map(|(e, _)| e.message)).collect();
    let bodies: Vec<&[u8]> = letters.iter().map(|m| &m.body[..]).collect();
    assert_eq!(bodies, [b"1", b"2", b"3"]);
    let headers = letters[0].header.properties().headers.clone().unwrap();
    let death = headers
        .get("x-death")
        .and_then(FieldValue::as_array)
        .and_then(|d| d[0].as_table())
        .cloned()
        .unwrap();
    assert_eq!(death.get("reason").and_then(FieldValue::as_str), Some("expired"));
    assert_eq!(death.get("queue").and_then(FieldValue::as_str), Some("work"));
}
