//! RabbitMQ tutorial 4, "Routing": a direct exchange `direct_logs` keyed by
//! severity. One subscriber binds only `error`; another binds `info`,
//! `warning` and `error`. Each gets exactly the severities it bound.
//!
//! Run a broker (`cargo run --release`), then `cargo run --example routing`.
//! Set `AMQP_URL` to point elsewhere. Exits non-zero unless each subscriber
//! gets exactly the severities it bound (`debug`, bound by nobody, is dropped).

use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};

const EXCHANGE: &str = "direct_logs";

async fn subscribe(channel: &Channel, severities: &[&str]) -> Result<Consumer, lapin::Error> {
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
    for severity in severities {
        channel
            .queue_bind(
                queue.name().clone(),
                EXCHANGE.into(),
                (*severity).into(),
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

async fn receive(consumer: &mut Consumer, count: usize) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut got = Vec::new();
    for _ in 0..count {
        let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
            .await?
            .ok_or("consumer ended")??;
        got.push(delivery.routing_key.to_string());
    }
    // Nothing else may arrive.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(200), consumer.next()).await {
        return Err(format!("received {:?} after {got:?}", extra?.routing_key).into());
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
            ExchangeKind::Direct,
            Default::default(),
            FieldTable::default(),
        )
        .await?;
    let mut errors_only = subscribe(&channel, &["error"]).await?;
    let mut everything = subscribe(&channel, &["info", "warning", "error"]).await?;
    for severity in ["info", "warning", "error", "debug"] {
        let line = format!("{severity}: something happened");
        channel
            .basic_publish(
                EXCHANGE.into(),
                severity.into(),
                Default::default(),
                line.as_bytes(),
                BasicProperties::default(),
            )
            .await?;
    }
    let errors = receive(&mut errors_only, 1).await?;
    let all = receive(&mut everything, 3).await?;
    println!(" [errors only] {errors:?}");
    println!(" [info, warning, error] {all:?}");
    if errors != ["error"] || all != ["info", "warning", "error"] {
        return Err("wrong routing".into());
    }
    channel.exchange_delete(EXCHANGE.into(), Default::default()).await?;
    connection.close(200, "Bye".into()).await?;
    Ok(())
}
