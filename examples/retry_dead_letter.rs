//! A worker with retries through a dead-letter exchange, and a parking
//! queue for poison messages.
//!
//! `orders` dead-letters what a worker rejects to `orders.retry`, a queue
//! with a short TTL that dead-letters back to `orders`: a rejected message
//! comes back after a delay. The worker reads how often a message has been
//! rejected from its `x-death` header and, after three attempts, parks it
//! in `orders.parking` for a human instead of retrying forever.
//!
//! Run a broker (`cargo run --release`), then
//! `cargo run --example retry_dead_letter`. Exits non-zero if good orders are
//! not processed exactly once or the poison order is not parked.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

const WORK: &str = "orders";
const RETRY: &str = "orders.retry";
const PARKING: &str = "orders.parking";
const MAX_ATTEMPTS: i64 = 3;

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// How many times `orders` has already rejected this message.
fn rejections(properties: &BasicProperties) -> i64 {
    let Some(headers) = properties.headers() else { return 0 };
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        return 0;
    };
    deaths
        .as_slice()
        .iter()
        .filter_map(|d| match d {
            AMQPValue::FieldTable(t) => Some(t),
            _ => None,
        })
        .filter(|t| {
            matches!(t.inner().get("queue"), Some(AMQPValue::LongString(q)) if q.to_string() == WORK)
                && matches!(t.inner().get("reason"), Some(AMQPValue::LongString(r)) if r.to_string() == "rejected")
        })
        .map(|t| match t.inner().get("count") {
            Some(AMQPValue::LongLongInt(n)) => *n,
            _ => 1,
        })
        .sum()
}

async fn declare_topology(channel: &Channel) -> lapin::Result<()> {
    for q in [WORK, RETRY, PARKING] {
        channel.queue_delete(q.into(), QueueDeleteOptions::default()).await?;
    }
    channel
        .queue_declare(
            WORK.into(),
            QueueDeclareOptions::default(),
            table(&[
                ("x-dead-letter-exchange", text("")),
                ("x-dead-letter-routing-key", text(RETRY)),
            ]),
        )
        .await?;
    channel
        .queue_declare(
            RETRY.into(),
            QueueDeclareOptions::default(),
            table(&[
                ("x-message-ttl", AMQPValue::LongInt(100)),
                ("x-dead-letter-exchange", text("")),
                ("x-dead-letter-routing-key", text(WORK)),
            ]),
        )
        .await?;
    channel
        .queue_declare(PARKING.into(), QueueDeclareOptions::default(), FieldTable::default())
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = Connection::connect(&url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    declare_topology(&channel).await?;

    let orders = ["order-1", "order-2", "poison", "order-3"];
    for order in orders {
        channel
            .basic_publish(
                "".into(),
                WORK.into(),
                BasicPublishOptions::default(),
                order.as_bytes(),
                BasicProperties::default(),
            )
            .await?;
    }

    let mut deliveries = channel
        .basic_consume(
            WORK.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut processed = Vec::new();
    let mut attempts_on_poison = 0;
    let mut parked = false;
    while !(parked && processed.len() == 3) {
        let delivery = tokio::time::timeout(Duration::from_secs(5), deliveries.next())
            .await?
            .ok_or("consumer ended")??;
        let body = String::from_utf8_lossy(&delivery.data).to_string();
        if body != "poison" {
            println!(" [worker] processed {body}");
            processed.push(body);
            delivery.ack(BasicAckOptions::default()).await?;
            continue;
        }
        attempts_on_poison += 1;
        let rejected_before = rejections(&delivery.properties);
        if rejected_before + 1 >= MAX_ATTEMPTS {
            println!(" [worker] {body} failed {MAX_ATTEMPTS} times, parking it");
            channel
                .basic_publish(
                    "".into(),
                    PARKING.into(),
                    BasicPublishOptions::default(),
                    &delivery.data,
                    delivery.properties.clone(),
                )
                .await?;
            delivery.ack(BasicAckOptions::default()).await?;
            parked = true;
        } else {
            println!(" [worker] {body} failed (attempt {attempts_on_poison}), retrying later");
            delivery.nack(BasicNackOptions::default()).await?;
        }
    }

    let parked_message = channel
        .basic_get(PARKING.into(), BasicGetOptions { no_ack: true })
        .await?
        .ok_or("nothing in the parking queue")?;
    if parked_message.delivery.data != b"poison" || attempts_on_poison != MAX_ATTEMPTS {
        return Err(format!("expected the poison order parked after {MAX_ATTEMPTS} attempts").into());
    }
    processed.sort();
    if processed != ["order-1", "order-2", "order-3"] {
        return Err(format!("good orders processed {processed:?}").into());
    }
    println!(" [x] good orders processed once each; poison order parked after {MAX_ATTEMPTS} attempts");
    for q in [WORK, RETRY, PARKING] {
        channel.queue_delete(q.into(), QueueDeleteOptions::default()).await?;
    }
    connection.close(200, "Bye".into()).await?;
    Ok(())
}
