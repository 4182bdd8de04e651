//! RabbitMQ tutorial 5, "Topics": a topic exchange `topic_logs` with
//! routing keys `<facility>.<severity>`. Subscribers bind patterns, where `*`
//! stands for exactly one word and `#` for zero or more words: `*.critical`,
//! `kern.*`, `#` (everything), `kern.#`, `#.critical`, and one queue bound to
//! both `kern.*` and `*.critical`, which gets a message matching both once.
//!
//! Run a broker (`cargo run --release`), then `cargo run --example topics`.
//! Set `AMQP_URL` to point elsewhere. Exits non-zero unless every subscriber
//! gets exactly the routing keys its patterns match, in publishing order.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};

const EXCHANGE: &str = "topic_logs";

async fn subscribe(channel: &Channel, patterns: &[&str]) -> Result<Consumer, lapin::Error> {
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    for pattern in patterns {
        channel
            .queue_bind(
                queue.name().clone(),
                EXCHANGE.into(),
                (*pattern).into(),
                Default::default(),
                FieldTable::default(),
            )
            .await?;
    }
    channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}

/// The routing keys of everything delivered until the consumer is quiet.
async fn keys(consumer: &mut Consumer) -> Result<Vec<String>, lapin::Error> {
    let mut got = Vec::new();
    while let Ok(Some(delivery)) = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await {
        got.push(delivery?.routing_key.to_string());
    }
    Ok(got)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = Connection::connect(&url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            Default::default(),
            FieldTable::default(),
        )
        .await?;
    let sent = [
        "kern.critical",
        "kern.info",
        "cron.critical",
        "cron.info",
        "kern.disk.critical",
        "kern",
        "critical",
    ];
    // Patterns, and the routing keys (in publishing order) each must receive.
    let expectations: [(&[&str], &[&str]); 6] = [
        (&["*.critical"], &["kern.critical", "cron.critical"]),
        (&["kern.*"], &["kern.critical", "kern.info"]),
        (&["#"], &sent),
        (
            &["kern.#"],
            &["kern.critical", "kern.info", "kern.disk.critical", "kern"],
        ),
        (
            &["#.critical"],
            &["kern.critical", "cron.critical", "kern.disk.critical", "critical"],
        ),
        (
            &["kern.*", "*.critical"],
            &["kern.critical", "kern.info", "cron.critical"],
        ),
    ];
    let mut subscribers = Vec::new();
    for (patterns, _) in &expectations {
        subscribers.push(subscribe(&channel, patterns).await?);
    }
    for key in sent {
        channel
            .basic_publish(
                EXCHANGE.into(),
                key.into(),
                Default::default(),
                key.as_bytes(),
                BasicProperties::default(),
            )
            .await?;
    }
    let mut wrong = Vec::new();
    for ((patterns, expected), subscriber) in expectations.iter().zip(&mut subscribers) {
        let got = keys(subscriber).await?;
        println!(" [{}] {got:?}", patterns.join(" + "));
        if got != *expected {
            wrong.push(format!("{patterns:?} expected {expected:?}, got {got:?}"));
        }
    }
    if !wrong.is_empty() {
        return Err(format!("wrong topic routing: {}", wrong.join("; ")).into());
    }
    channel.exchange_delete(EXCHANGE.into(), Default::default()).await?;
    connection.close(200, "Bye".into()).await?;
    Ok(())
}
