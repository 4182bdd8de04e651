//! RabbitMQ tutorial 1, "Hello World": one producer sends a message to a
//! named queue through the default exchange; one consumer receives it.
//!
//! Run a broker (`cargo run --release`), then `cargo run --example hello_world`.
//! Set `AMQP_URL` to point elsewhere. Exits non-zero if the message does not
//! arrive intact.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = Connection::connect(&url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;

    channel
        .queue_declare("hello".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await?;
    channel
        .basic_publish(
            "".into(),
            "hello".into(),
            BasicPublishOptions::default(),
            b"Hello World!",
            BasicProperties::default(),
        )
        .await?;
    println!(" [x] Sent 'Hello World!'");

    let mut consumer = channel
        .basic_consume(
            "hello".into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await?
        .ok_or("consumer ended")??;
    let body = String::from_utf8_lossy(&delivery.data);
    println!(" [x] Received '{body}'");
    if body != "Hello World!" {
        return Err(format!("unexpected body {body:?}").into());
    }
    connection.close(200, "Bye".into()).await?;
    Ok(())
}
