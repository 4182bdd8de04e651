//! Two consumer groups reading one stream independently.
//!
//! `payments.log` is a stream: consuming does not remove anything, so
//! billing and analytics each read every payment at their own pace, from
//! where they choose (`x-stream-offset`): billing from the start,
//! analytics only what arrives after it joins. Within a group, a
//! consumer that restarts picks its own offset again.
//!
//! Run a broker (`cargo run --release`), then
//! `cargo run --example consumer_groups`. Exits non-zero if a group misses
//! a payment.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

const STREAM: &str = "payments.log";

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

async fn group(connection: &Connection, offset: &str) -> lapin::Result<Consumer> {
    let channel = connection.create_channel().await?;
    channel.basic_qos(50, BasicQosOptions::default()).await?;
    channel
        .basic_consume(
            STREAM.into(),
            "".into(),
            BasicConsumeOptions::default(),
            table(&[("x-stream-offset", AMQPValue::LongString(offset.into()))]),
        )
        .await
}

async fn take(consumer: &mut Consumer, count: usize) -> lapin::Result<Vec<String>> {
    let mut got = Vec::new();
    while got.len() < count {
        let Ok(Some(delivery)) = tokio::time::timeout(Duration::from_secs(10), consumer.next()).await else {
            break;
        };
        let delivery = delivery?;
        got.push(String::from_utf8_lossy(&delivery.data).into_owned());
        delivery.ack(BasicAckOptions::default()).await?;
    }
    Ok(got)
}

async fn publish(channel: &Channel, range: std::ops::Range<u32>) -> lapin::Result<()> {
    for n in range {
        channel
            .basic_publish(
                "".into(),
                STREAM.into(),
                BasicPublishOptions::default(),
                format!("payment-{n}").as_bytes(),
                BasicProperties::default(),
            )
            .await?
            .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = Connection::connect(&url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_delete(STREAM.into(), QueueDeleteOptions::default())
        .await?;
    channel
        .queue_declare(
            STREAM.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            table(&[("x-queue-type", AMQPValue::LongString("stream".into()))]),
        )
        .await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    publish(&channel, 0..100).await?;

    let mut billing = group(&connection, "first").await?;
    let mut analytics = group(&connection, "next").await?;
    let billed = take(&mut billing, 100).await?;
    publish(&channel, 100..150).await?;
    let billed_later = take(&mut billing, 50).await?;
    let analysed = take(&mut analytics, 50).await?;

    let expected = |range: std::ops::Range<u32>| range.map(|n| format!("payment-{n}")).collect::<Vec<_>>();
    if [billed.clone(), billed_later.clone()].concat() != expected(0..150) {
        return Err("billing did not read every payment in order".into());
    }
    if analysed != expected(100..150) {
        return Err("analytics did not read the payments after it joined".into());
    }
    println!(
        "billing read {} payments from the start; analytics read the {} that came after it joined",
        billed.len() + billed_later.len(),
        analysed.len()
    );
    Ok(())
}
