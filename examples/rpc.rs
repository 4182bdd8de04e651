//! RabbitMQ tutorial 6, "RPC": a server consumes `rpc_queue`, computes
//! fib(n) and replies to each request's `reply_to` with its
//! `correlation_id`; the client sends several requests on an exclusive
//! callback queue and matches the replies by correlation id.
//!
//! Run a broker (`cargo run --release`), then `cargo run --example rpc`.
//! Set `AMQP_URL` to point elsewhere. Exits non-zero unless every request
//! gets one reply, with its correlation id and the right value.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

const RPC_QUEUE: &str = "rpc_queue";

fn fib(n: u64) -> u64 {
    match n {
        0 => 0,
        1 => 1,
        n => fib(n - 1) + fib(n - 2),
    }
}

/// Answers requests until the channel closes.
async fn serve(channel: Channel) -> Result<(), lapin::Error> {
    channel.basic_qos(1, BasicQosOptions::default()).await?;
    let mut requests = channel
        .basic_consume(
            RPC_QUEUE.into(),
            "rpc-server".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    while let Some(Ok(request)) = requests.next().await {
        let n: u64 = String::from_utf8_lossy(&request.data).parse().unwrap_or(0);
        let reply_to = request.properties.reply_to().clone().unwrap_or_default();
        let mut properties = BasicProperties::default();
        if let Some(id) = request.properties.correlation_id() {
            properties = properties.with_correlation_id(id.clone());
        }
        channel
            .basic_publish(
                "".into(),
                reply_to,
                Default::default(),
                fib(n).to_string().as_bytes(),
                properties,
            )
            .await?;
        request.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = Connection::connect(&url, ConnectionProperties::default()).await?;
    let server = connection.create_channel().await?;
    server
        .queue_declare(RPC_QUEUE.into(), Default::default(), FieldTable::default())
        .await?;
    server.queue_purge(RPC_QUEUE.into(), Default::default()).await?;
    tokio::spawn(serve(server.clone()));

    let client = connection.create_channel().await?;
    let callback = client
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut replies = client
        .basic_consume(
            callback.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut expected = HashMap::new();
    for n in [5u64, 10, 20, 30] {
        let id = format!("request-{n}");
        expected.insert(id.clone(), fib(n));
        println!(" [x] Requesting fib({n})");
        client
            .basic_publish(
                "".into(),
                RPC_QUEUE.into(),
                Default::default(),
                n.to_string().as_bytes(),
                BasicProperties::default()
                    .with_reply_to(callback.name().clone())
                    .with_correlation_id(id.as_str().into()),
            )
            .await?;
    }
    while !expected.is_empty() {
        let reply = tokio::time::timeout(Duration::from_secs(5), replies.next())
            .await?
            .ok_or("reply stream ended")??;
        let id = reply
            .properties
            .correlation_id()
            .clone()
            .ok_or("reply without correlation id")?
            .to_string();
        let value: u64 = String::from_utf8_lossy(&reply.data).parse()?;
        let want = expected.remove(&id).ok_or(format!("unexpected correlation id {id}"))?;
        println!(" [.] {id} = {value}");
        if value != want {
            return Err(format!("{id}: got {value}, expected {want}").into());
        }
    }
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(200), replies.next()).await {
        let extra = extra?;
        return Err(format!("extra reply {:?}", extra.properties.correlation_id()).into());
    }
    server.queue_delete(RPC_QUEUE.into(), Default::default()).await?;
    connection.close(200, "Bye".into()).await?;
    Ok(())
}
