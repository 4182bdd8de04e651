//! The baseline warren-perf is compared with: the same scenario as
//! warren-perf's default (one producer, one auto-ack consumer, 16-byte
//! bodies) written as a straightforward lapin loop. If warren-perf drives a
//! broker at least as hard as this, its own client is not the bottleneck.
//!
//! Usage: `lapin-loop URI SECONDS`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let uri = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let seconds: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let queue = "lapin-loop";

    let setup = Connection::connect(&uri, ConnectionProperties::default()).await?;
    let ch = setup.create_channel().await?;
    ch.queue_delete(queue.into(), Default::default()).await?;
    ch.queue_declare(queue.into(), Default::default(), FieldTable::default())
        .await?;

    let consumed = Arc::new(AtomicU64::new(0));
    let consumer_connection = Connection::connect(&uri, ConnectionProperties::default()).await?;
    let consumer_channel = consumer_connection.create_channel().await?;
    let mut consumer = consumer_channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let counter = consumed.clone();
    let consuming = tokio::spawn(async move {
        while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });

    let producer_connection = Connection::connect(&uri, ConnectionProperties::default()).await?;
    let producer = producer_connection.create_channel().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        stopper.store(true, Ordering::Relaxed);
    });
    let start = Instant::now();
    let mut published = 0u64;
    let body = [0u8; 16];
    while !stop.load(Ordering::Relaxed) {
        producer
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default(),
            )
            .await?;
        published += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = consuming.await;
    let consumed = consumed.load(Ordering::Relaxed);
    println!(
        "lapin loop: published {published} ({:.0} msg/s), consumed {consumed} ({:.0} msg/s)",
        published as f64 / elapsed,
        consumed as f64 / elapsed
    );
    ch.queue_delete(queue.into(), Default::default()).await?;
    Ok(())
}
