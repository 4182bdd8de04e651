//! RabbitMQ tutorial 3, "Publish/Subscribe": a fanout exchange `logs` and
//! two subscribers, each with its own exclusive, server-named queue; every
//! subscriber receives every message.
//!
//! Run a broker (`cargo run --release`), then `cargo run --example publish_subscribe`.
//! Set `AMQP_URL` to point elsewhere. Exits non-zero unless each subscriber
//! gets every message once, in order, and nothing else.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = Connection::connect(&url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .exchange_declare(
            "logs".into(),
            ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        )
        .await?;

    let mut subscribers = Vec::new();
    for _ in 0..2 {
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
                "logs".into(),
                "".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await?;
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        subscribers.push(consumer);
    }

    let logs = ["info: starting", "warning: disk at 80%", "error: out of coffee"];
    for line in logs {
        channel
            .basic_publish(
                "logs".into(),
                "".into(),
                Default::default(),
                line.as_bytes(),
                BasicProperties::default(),
            )
            .await?;
    }
    for (i, subscriber) in subscribers.iter_mut().enumerate() {
        for expected in logs {
            let delivery = tokio::time::timeout(Duration::from_secs(5), subscriber.next())
                .await?
                .ok_or("subscriber ended")??;
            let got = String::from_utf8_lossy(&delivery.data);
            println!(" [subscriber {i}] {got}");
            if got != expected {
                return Err(format!("subscriber {i} expected {expected:?}, got {got:?}").into());
            }
        }
        if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(200), subscriber.next()).await {
            let extra = extra?;
            return Err(format!("subscriber {i} got an extra {:?}", String::from_utf8_lossy(&extra.data)).into());
        }
    }
    channel.exchange_delete("logs".into(), Default::default()).await?;
    connection.close(200, "Bye".into()).await?;
    Ok(())
}
