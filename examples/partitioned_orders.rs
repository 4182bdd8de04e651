//! Orders partitioned by account and processed in order per account,
//! while workers die and come back: Kafka-like consumer groups from a
//! consistent-hash exchange and single-active-consumer queues.
//!
//! `orders.by-account` (type `x-consistent-hash`) spreads orders over four
//! partition queues by a hash of the routing key, the account id, so every
//! order of one account lands in the same partition, in publish order. Each
//! partition has `x-single-active-consumer`: of the workers consuming it,
//! one at a time gets its messages, so one account is never processed by
//! two workers at once. A worker that dies leaves its unacknowledged orders
//! to go back to the head of their partition, and the next worker in line
//! takes over from there.
//!
//! Run a broker (`cargo run --release`), then
//! `cargo run --example partitioned_orders`. Exits non-zero if an order is
//! lost or an account's orders were first processed out of order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};

const EXCHANGE: &str = "orders.by-account";
const PARTITIONS: usize = 4;
const ACCOUNTS: u32 = 25;
const ORDERS: u32 = 2_000;

/// What the workers processed, in the order they processed it.
type Log = Arc<Mutex<Vec<(u32, u32)>>>;

fn partition(n: usize) -> String {
    format!("orders.partition-{n}")
}

async fn connect(url: &str) -> lapin::Result<Connection> {
    Connection::connect(url, ConnectionProperties::default()).await
}

/// A worker: consumes every partition (it is active on those where it is
/// first in line), processes orders one by one, acks each.
async fn worker(url: &str, log: Log) -> lapin::Result<Connection> {
    let connection = connect(url).await?;
    for n in 0..PARTITIONS {
        let channel = connection.create_channel().await?;
        channel.basic_qos(10, BasicQosOptions::default()).await?;
        let mut deliveries = channel
            .basic_consume(
                partition(n).as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let log = log.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = deliveries.next().await {
                let text = String::from_utf8_lossy(&delivery.data).to_string();
                let mut parts = text.split(':').map(|p| p.parse::<u32>().unwrap_or(u32::MAX));
                let (account, sequence) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
                // The work itself: a little time per order.
                tokio::time::sleep(Duration::from_micros(200)).await;
                log.lock().unwrap().push((account, sequence));
                if delivery.ack(BasicAckOptions::default()).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(connection)
}

async fn wait_for(log: &Log, processed: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.lock().unwrap().len() < processed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let admin = connect(&url).await?;
    let channel = admin.create_channel().await?;
    channel
        .exchange_declare(
            EXCHANGE.into(),
            lapin::ExchangeKind::Custom("x-consistent-hash".into()),
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut single_active = FieldTable::default();
    single_active.insert(ShortString::from("x-single-active-consumer"), AMQPValue::Boolean(true));
    for n in 0..PARTITIONS {
        channel
            .queue_delete(partition(n).as_str().into(), QueueDeleteOptions::default())
            .await?;
        channel
            .queue_declare(
                partition(n).as_str().into(),
                QueueDeclareOptions::default(),
                single_active.clone(),
            )
            .await?;
        // The binding key is the partition's weight.
        channel
            .queue_bind(
                partition(n).as_str().into(),
                EXCHANGE.into(),
                "1".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }

    let log: Log = Arc::default();
    let first = worker(&url, log.clone()).await?;
    let second = worker(&url, log.clone()).await?;

    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut next_sequence: HashMap<u32, u32> = HashMap::new();
    for i in 0..ORDERS {
        let account = i % ACCOUNTS;
        let sequence = next_sequence.entry(account).or_insert(0);
        let body = format!("{account}:{sequence}");
        *sequence += 1;
        channel
            .basic_publish(
                EXCHANGE.into(),
                format!("account-{account}").as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default(),
            )
            .await?
            .await?;
        if i == ORDERS / 3 {
            // The first worker dies mid-stream; the second takes over.
            wait_for(&log, (ORDERS / 4) as usize).await;
            first.close(320, "worker died".into()).await?;
            println!("worker 1 died after {} orders processed", log.lock().unwrap().len());
        }
        if i == 2 * ORDERS / 3 {
            // A worker comes back (it waits in line behind the second).
            let _third = worker(&url, log.clone()).await?;
            second.close(320, "worker died".into()).await?;
            println!("worker 2 died; worker 3 takes over");
        }
    }

    // Every order processed at least once (redeliveries after a death are
    // processed again), and per account, first processed in order.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen: std::collections::HashSet<(u32, u32)> = log.lock().unwrap().iter().copied().collect();
        if seen.len() == ORDERS as usize {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {} of {ORDERS} orders were processed", seen.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let processed = log.lock().unwrap().clone();
    let mut highest: HashMap<u32, u32> = HashMap::new();
    let mut again = 0;
    for (account, sequence) in &processed {
        match highest.get(account) {
            Some(&top) if *sequence <= top => again += 1,
            Some(&top) if *sequence != top + 1 => {
                return Err(format!("account {account}: order {sequence} processed before {}", top + 1).into());
            }
            None if *sequence != 0 => {
                return Err(format!("account {account}: order {sequence} processed before order 0").into());
            }
            _ => {
                highest.insert(*account, *sequence);
            }
        }
    }
    println!(
        "{ORDERS} orders of {ACCOUNTS} accounts processed in order per account over {PARTITIONS} partitions \
         ({again} processed again after a worker died)"
    );
    Ok(())
}
