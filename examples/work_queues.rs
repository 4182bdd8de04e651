//! RabbitMQ tutorial 2, "Work Queues": a durable task queue, persistent
//! messages, and two competing workers with prefetch 1 and manual acks, so
//! tasks are spread fairly and none is lost if a worker dies.
//!
//! Round 1 (fair dispatch): the first worker to get a task stays busy with it
//! (does not ack) while the other works through the rest; with prefetch 1 the
//! busy worker must not be sent anything else. Then the busy worker dies (its
//! channel closes) and its unacked task is redelivered to the other worker.
//! Round 2 (round-robin): a replacement worker starts, both are idle and ack
//! promptly; both must get work.
//!
//! Run a broker (`cargo run --release`), then `cargo run --example work_queues`.
//! Set `AMQP_URL` to point elsewhere. Exits non-zero unless every task is done
//! exactly once, both workers took part in each round, the busy worker was
//! never sent a second task while its first was unacked, and the dead
//! worker's task was redelivered.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

const QUEUE: &str = "task_queue";
const TASKS: usize = 20;
const WORKERS: [&str; 2] = ["worker-1", "worker-2"];

type Error = Box<dyn std::error::Error>;

async fn publish_tasks(channel: &Channel, tasks: std::ops::Range<usize>) -> Result<(), Error> {
    for i in tasks {
        let task = format!("task {i}{}", ".".repeat(i % 3));
        channel
            .basic_publish(
                "".into(),
                QUEUE.into(),
                BasicPublishOptions::default(),
                task.as_bytes(),
                // delivery_mode 2: persistent, survives a broker restart.
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?;
    }
    Ok(())
}

/// The next delivery to either worker, as (worker index, delivery), or `None`
/// if nothing arrives within `wait`.
async fn next_task(consumers: &mut [Consumer; 2], wait: Duration) -> Result<Option<(usize, Delivery)>, Error> {
    let [a, b] = consumers;
    let next = tokio::time::timeout(wait, async {
        tokio::select! {
            Some(d) = a.next() => Some((0, d)),
            Some(d) = b.next() => Some((1, d)),
            else => None,
        }
    })
    .await;
    match next {
        Err(_) => Ok(None),
        Ok(None) => Err("a worker's consumer ended".into()),
        Ok(Some((worker, delivery))) => Ok(Some((worker, delivery?))),
    }
}

/// Does the task ("work": a dot is a unit of effort), records who did it and
/// acks it.
async fn finish(done: &mut HashMap<String, &str>, worker: usize, delivery: Delivery) -> Result<(), Error> {
    let name = WORKERS[worker];
    let task = String::from_utf8_lossy(&delivery.data).to_string();
    if *delivery.properties.delivery_mode() != Some(2) {
        return Err(format!("{task} lost its persistent delivery mode").into());
    }
    tokio::time::sleep(Duration::from_millis(2 * task.matches('.').count() as u64)).await;
    println!(" [{name}] done {task}");
    if let Some(first) = done.insert(task.clone(), name) {
        return Err(format!("{task} was processed twice ({first}, then {name})").into());
    }
    delivery.ack(BasicAckOptions::default()).await?;
    Ok(())
}

async fn start_worker(connection: &Connection, name: &str) -> Result<(Channel, Consumer), Error> {
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
    Ok((channel, consumer))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
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

    // Two workers, each on its own channel with prefetch 1 and manual acks.
    let (channel_1, consumer_1) = start_worker(&connection, WORKERS[0]).await?;
    let (channel_2, consumer_2) = start_worker(&connection, WORKERS[1]).await?;
    let mut channels = [channel_1, channel_2];
    let mut consumers = [consumer_1, consumer_2];
    let mut done: HashMap<String, &str> = HashMap::new();
    let wait = Duration::from_secs(5);

    // Round 1: fair dispatch. Whoever gets the first task is busy with it.
    publish_tasks(&producer, 0..TASKS).await?;
    println!(" [x] Sent {TASKS} tasks");
    let (busy, held) = next_task(&mut consumers, wait).await?.ok_or("no task was delivered")?;
    let (busy_name, idle_name) = (WORKERS[busy], WORKERS[1 - busy]);
    let held_task = String::from_utf8_lossy(&held.data).to_string();
    println!(" [{busy_name}] busy with {held_task}, not acking it yet");
    let mut by_idle = 0;
    while by_idle < TASKS - 1 {
        let Some((worker, delivery)) = next_task(&mut consumers, wait).await? else {
            return Err(format!("{idle_name} got only {by_idle} of the other {} tasks", TASKS - 1).into());
        };
        if worker == busy {
            let task = String::from_utf8_lossy(&delivery.data);
            return Err(format!(
                "{busy_name} was sent {task:?} while {held_task:?} was unacked: prefetch 1 not honoured"
            )
            .into());
        }
        finish(&mut done, worker, delivery).await?;
        by_idle += 1;
    }
    println!(" [x] round 1: {idle_name} did {by_idle} tasks while {busy_name} was busy");

    // The busy worker dies without acking: its task must go to the other one.
    channels[busy].close(200, "worker died".into()).await?;
    drop(held);
    println!(" [{busy_name}] died while busy with {held_task}");
    let (worker, delivery) = next_task(&mut consumers, wait)
        .await?
        .ok_or_else(|| format!("{held_task:?} was not redelivered after {busy_name} died"))?;
    let task = String::from_utf8_lossy(&delivery.data).to_string();
    if worker == busy || task != held_task || !delivery.redelivered {
        return Err(format!(
            "expected {idle_name} to get {held_task:?} redelivered, got {task:?} on {} (redelivered: {})",
            WORKERS[worker], delivery.redelivered
        )
        .into());
    }
    finish(&mut done, worker, delivery).await?;
    (channels[busy], consumers[busy]) = start_worker(&connection, busy_name).await?;

    // Round 2: both workers idle and quick; the queue is shared between them.
    publish_tasks(&producer, TASKS..2 * TASKS).await?;
    println!(" [x] Sent {TASKS} more tasks");
    let mut per_worker = [0usize; 2];
    for _ in 0..TASKS {
        let (worker, delivery) = next_task(&mut consumers, wait)
            .await?
            .ok_or_else(|| format!("only {} of {TASKS} tasks arrived", per_worker.iter().sum::<usize>()))?;
        finish(&mut done, worker, delivery).await?;
        per_worker[worker] += 1;
    }
    println!(
        " [x] round 2: {} did {}, {} did {}",
        WORKERS[0], per_worker[0], WORKERS[1], per_worker[1]
    );
    if per_worker.contains(&0) {
        return Err(format!("work was not shared: {per_worker:?}").into());
    }

    // Exactly once: nothing is redelivered and nothing is left behind.
    if let Some((worker, delivery)) = next_task(&mut consumers, Duration::from_millis(300)).await? {
        let task = String::from_utf8_lossy(&delivery.data);
        return Err(format!("{} got an extra delivery {task:?}", WORKERS[worker]).into());
    }
    let left = producer
        .queue_declare(
            QUEUE.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?
        .message_count();
    if done.len() != 2 * TASKS || left != 0 {
        return Err(format!("{} tasks done, {left} left in the queue", done.len()).into());
    }
    println!(" [x] all {} tasks done exactly once", done.len());

    producer
        .queue_delete(QUEUE.into(), QueueDeleteOptions::default())
        .await?;
    connection.close(200, "Bye".into()).await?;
    Ok(())
}
