//! RabbitMQ tutorial 5, "Topics": a topic exchange `topic_logs` with
//! routing keys `<facility>.<severity>`. Subscribers bind patterns:
//! `*.critical` (one word, then critical), `kern.*` (kern, then one word)
//! and `#` (everything).
//!
//! Run a broker (`cargo run --release`), then `cargo run --example topics`.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};

const EXCHANGE: &str = "topic_logs";

async fn subscribe(channel: &Channel, pattern: &str) -> Result<Consumer, lapin::Error> {
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
    channel
        .queue_bind(
            queue.name().clone(),
            EXCHANGE.into(),
            pattern.into(),
            Default::default(),
            FieldTable::default(),
        )
        .await?;
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

async fn keys(consumer: &mut Consumer) -> Vec<String> {
    let mut got = Vec::new();
    while let Ok(Some(Ok(delivery))) = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await {
        got.push(delivery.routing_key.to_string());
    }
    got
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
    let mut critical = subscribe(&channel, "*.critical").await?;
    let mut kernel = subscribe(&channel, "kern.*").await?;
    let mut all = subscribe(&channel, "#").await?;
    let sent = [
        "kern.critical",
        "kern.info",
        "cron.critical",
        "cron.info",
        "kern.disk.critical",
    ];
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
    let (c, k, a) = (keys(&mut critical).await, keys(&mut kernel).await, keys(&mut all).await);
    println!(" [*.critical] {c:?}\n [kern.*] {k:?}\n [#] {a:?}");
    if c != ["kern.critical", "cron.critical"] || k != ["kern.critical", "kern.info"] || a != sent {
        return Err("wrong topic routing".into());
    }
    channel.exchange_delete(EXCHANGE.into(), Default::default()).await?;
    connection.close(200, "Bye".into()).await?;
    Ok(())
}
