//! Replaying a stream after a consumer bug: reprocess from an hour ago.
//!
//! Events go to `events.log`, a stream (`x-queue-type: stream`), which
//! keeps them after they are consumed (here for a week, `x-max-age: 7D`).
//! A consumer with a bug processes them wrongly. Once the bug is fixed,
//! the fixed consumer starts again from an hour ago
//! (`x-stream-offset: "1h"`) and reprocesses every event of that hour,
//! without anyone publishing them again. Each delivery carries its
//! offset in the `x-stream-offset` header.
//!
//! Run a broker (`cargo run --release`), then
//! `cargo run --example stream_replay`. Exits non-zero if the replay does
//! not see every event once, in order.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

const STREAM: &str = "events.log";
const EVENTS: u64 = 500;

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

/// Consumes `count` events from `offset` on and returns (offset, event).
async fn read(channel: &Channel, offset: AMQPValue, count: u64) -> lapin::Result<Vec<(i64, u64)>> {
    // A stream consumer must set a prefetch and ack: acks are credit.
    channel.basic_qos(100, BasicQosOptions::default()).await?;
    let mut deliveries = channel
        .basic_consume(
            STREAM.into(),
            "".into(),
            BasicConsumeOptions::default(),
            table(&[("x-stream-offset", offset)]),
        )
        .await?;
    let mut seen = Vec::new();
    while (seen.len() as u64) < count {
        let Ok(Some(delivery)) = tokio::time::timeout(Duration::from_secs(10), deliveries.next()).await else {
            break;
        };
        let delivery = delivery?;
        let offset = match delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-stream-offset"))
        {
            Some(AMQPValue::LongLongInt(n)) => *n,
            _ => -1,
        };
        let event: u64 = String::from_utf8_lossy(&delivery.data).parse().unwrap_or(u64::MAX);
        seen.push((offset, event));
        delivery.ack(BasicAckOptions::default()).await?;
    }
    channel
        .basic_cancel(deliveries.tag(), BasicCancelOptions::default())
        .await?;
    Ok(seen)
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
            table(&[
                ("x-queue-type", AMQPValue::LongString("stream".into())),
                ("x-max-age", AMQPValue::LongString("7D".into())),
            ]),
        )
        .await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    for event in 0..EVENTS {
        channel
            .basic_publish(
                "".into(),
                STREAM.into(),
                BasicPublishOptions::default(),
                event.to_string().as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?
            .await?;
    }

    // The buggy consumer reads everything (and gets it wrong).
    let buggy = connection.create_channel().await?;
    let first_pass = read(&buggy, AMQPValue::LongString("first".into()), EVENTS).await?;
    println!("the buggy consumer processed {} events", first_pass.len());

    // Fixed: reprocess the last hour. Nothing is published again.
    let fixed = connection.create_channel().await?;
    let replay = read(&fixed, AMQPValue::LongString("1h".into()), EVENTS).await?;
    let events: Vec<u64> = replay.iter().map(|(_, e)| *e).collect();
    if events != (0..EVENTS).collect::<Vec<_>>() {
        return Err(format!("the replay saw {} events, not all {EVENTS} in order", events.len()).into());
    }
    if replay.iter().any(|(offset, event)| *offset != *event as i64) {
        return Err("offsets do not follow the publish order".into());
    }
    // Or from an exact offset, e.g. where the bug began.
    let from_offset = read(&fixed, AMQPValue::LongLongInt(400), EVENTS - 400).await?;
    if from_offset.first().map(|(o, _)| *o) != Some(400) {
        return Err("a replay from offset 400 did not start there".into());
    }
    println!(
        "replayed {} events from an hour ago and {} from offset 400, in order",
        replay.len(),
        from_offset.len()
    );
    Ok(())
}
