//! RabbitMQ tutorial 2, "Work Queues": a durable task queue, persistent
//! messages, and two competing workers with prefetch 1 and manual acks, so
//! tasks are spread fairly and none is lost if a worker dies.
//!
//! Run a broker (`cargo run --release`), then `cargo run --example work_queues`.
//! Exits non-zero unless every task is done exactly once and both workers
//! took part.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

const QUEUE: &str = "task_queue";
const TASKS: usize = 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = Connection::connect(&url, ConnectionProperties::default()).await?;
    let producer = connection.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    producer
        .queue_declare(QUEUE.into(), durable, FieldTable::default())
        .await?;
    producer.queue_purge(QUEUE.into(), QueuePurgeOptions::default()).await?;

    // Two workers, each on its own channel with prefetch 1.
    let mut workers = Vec::new();
    for name in ["worker-1", "worker-2"] {
        let channel = connection.create_channel().await?;
        channel.basic_qos(1, BasicQosOptions::default()).await?;
        let consumer = channel
            .basic_consume(
                QUEUE.into(),
                name.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        workers.push((name, channel, consumer));
    }

    for i in 0..TASKS {
        let task = format!("task {i}{}", ".".repeat(i % 3));
        producer
            .basic_publish(
                "".into(),
                QUEUE.into(),
                BasicPublishOptions::default(),
                task.as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?;
    }
    println!(" [x] Sent {TASKS} tasks");

    let mut done: HashMap<String, &str> = HashMap::new();
    let mut per_worker: HashMap<&str, usize> = HashMap::new();
    while done.len() < TASKS {
        // Take the next delivery from whichever worker has one.
        let (index, delivery) = {
            let (a, b) = workers.split_at_mut(1);
            tokio::time::timeout(Duration::from_secs(5), async {
                tokio::select! {
                    Some(d) = a[0].2.next() => (0, d),
                    Some(d) = b[0].2.next() => (1, d),
                }
            })
            .await?
        };
        let delivery = delivery?;
        let name = workers[index].0;
        let task = String::from_utf8_lossy(&delivery.data).to_string();
        // "Work": a dot is a unit of effort.
        tokio::time::sleep(Duration::from_millis(2 * task.matches('.').count() as u64)).await;
        println!(" [{name}] done {task}");
        if done.insert(task.clone(), name).is_some() {
            return Err(format!("{task} was processed twice").into());
        }
        *per_worker.entry(name).or_default() += 1;
        delivery.ack(BasicAckOptions::default()).await?;
    }
    if per_worker.len() != 2 {
        return Err(format!("work was not shared: {per_worker:?}").into());
    }
    println!(" [x] all {TASKS} tasks done once, shared {per_worker:?}");
    producer
        .queue_delete(QUEUE.into(), QueueDeleteOptions::default())
        .await?;
    connection.close(200, "Bye".into()).await?;
    Ok(())
}
