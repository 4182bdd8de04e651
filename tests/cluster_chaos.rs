//! A Jepsen-style check of replicated quorum queues: three real `warren`
//! processes on 127.0.0.1, .2 and .3; a publisher with confirms and a
//! consumer with manual acks, each reconnecting to whichever node answers;
//! meanwhile a nemesis kills a random node with SIGKILL and restarts it,
//! round after round. At the end every confirmed message must have been
//! consumed at least once; duplicates are counted and reported.
//!
//! CI runs a few rounds. A long run by hand:
//! `WARREN_CHAOS_ROUNDS=100 cargo test --release --test cluster_chaos -- --nocapture`.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::Warren;
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

const QUEUE: &str = "jepsen";

/// What the clients and the nemesis share.
#[derive(Default)]
struct World {
    /// Each node's AMQP address while it runs.
    addresses: Mutex<Vec<Option<SocketAddr>>>,
    /// Set when the clients should stop.
    done: AtomicBool,
    confirmed: Mutex<HashSet<u64>>,
    consumed: Mutex<HashSet<u64>>,
    duplicates: AtomicU64,
    reconnects: AtomicU64,
}

impl World {
    /// A running node's address, a different one each call.
    fn pick(&self, turn: &mut usize) -> Option<SocketAddr> {
        let addresses = self.addresses.lock().unwrap();
        for _ in 0..addresses.len() {
            *turn = (*turn + 1) % addresses.len();
            if let Some(addr) = addresses[*turn] {
                return Some(addr);
            }
        }
        None
    }
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    args
}

async fn open(world: &World, turn: &mut usize) -> Option<(Connection, Channel)> {
    let addr = world.pick(turn)?;
    let url = format!("amqp://guest:guest@{addr}/%2f");
    let connect = Connection::connect(&url, ConnectionProperties::default());
    let connection = tokio::time::timeout(Duration::from_secs(3), connect).await.ok()?.ok()?;
    let channel = connection.create_channel().await.ok()?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel.queue_declare(QUEUE.into(), durable, quorum()).await.ok()?;
    Some((connection, channel))
}

/// Publishes ids in windows of 25, each confirmed before the next; after a
/// failure the unconfirmed window goes again on another connection.
async fn publisher(world: Arc<World>) {
    let mut turn = 0;
    let mut next = 0u64;
    while !world.done.load(Ordering::Acquire) {
        let Some((_connection, channel)) = open(&world, &mut turn).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if channel.confirm_select(Default::default()).await.is_err() {
            continue;
        }
        'connection: while !world.done.load(Ordering::Acquire) {
            let mut pending = Vec::new();
            for id in next..next + 25 {
                let properties = BasicProperties::default().with_delivery_mode(2);
                let bytes = id.to_be_bytes();
                let sent = channel.basic_publish(
                    "".into(),
                    QUEUE.into(),
                    BasicPublishOptions::default(),
                    &bytes,
                    properties,
                );
                match tokio::time::timeout(Duration::from_secs(5), sent).await {
                    Ok(Ok(confirm)) => pending.push((id, confirm)),
                    _ => break 'connection,
                }
            }
            for (id, confirm) in pending {
                match tokio::time::timeout(Duration::from_secs(10), confirm).await {
                    Ok(Ok(c)) if c.is_ack() => {
                        world.confirmed.lock().unwrap().insert(id);
                    }
                    // A nack, or no answer: the window goes again.
                    _ => break 'connection,
                }
            }
            next += 25;
        }
        world.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// Consumes and acks, noting every id and every duplicate.
async fn consumer(world: Arc<World>) {
    let mut turn = 1;
    loop {
        let Some((_connection, channel)) = open(&world, &mut turn).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if channel.basic_qos(50, BasicQosOptions::default()).await.is_err() {
            continue;
        }
        let consume = channel.basic_consume(
            QUEUE.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        );
        let Ok(mut deliveries) = consume.await else { continue };
        while let Ok(Some(Ok(delivery))) = tokio::time::timeout(Duration::from_secs(5), deliveries.next()).await {
            let Some(bytes) = delivery.data.get(..8) else { continue };
            let id = u64::from_be_bytes(bytes.try_into().unwrap_or_default());
            if !world.consumed.lock().unwrap().insert(id) {
                world.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            if delivery.ack(Default::default()).await.is_err() {
                break;
            }
        }
        world.reconnects.fetch_add(1, Ordering::Relaxed);
        if world.done.load(Ordering::Acquire)
            && world
                .consumed
                .lock()
                .unwrap()
                .is_superset(&world.confirmed.lock().unwrap())
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_messages_survive_nodes_killed_at_random() {
    let rounds: usize = std::env::var("WARREN_CHAOS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(4);
    let data = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::new(3);
    let mut nodes: Vec<Option<Warren>> = (0..3).map(|i| Some(cluster.start(i, data.path()))).collect();
    let world = Arc::new(World::default());
    *world.addresses.lock().unwrap() = nodes.iter().map(|n| n.as_ref().map(|w| w.addr)).collect();

    // The queue exists (on every node) before the clients start.
    let mut turn = 0;
    let started = Instant::now();
    while open(&world, &mut turn).await.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the cluster never took a quorum queue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let publishing = tokio::spawn(publisher(world.clone()));
    let consuming = tokio::spawn(consumer(world.clone()));

    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.subsec_nanos() as usize);
    let chaos = Instant::now();
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_secs(3)).await;
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let victim = (seed >> 33) % 3;
        world.addresses.lock().unwrap()[victim] = None;
        if let Some(node) = nodes[victim].take() {
            node.crash();
        }
        eprintln!(
            "round {round}: killed n{} ({} confirmed, {} consumed so far)",
            victim + 1,
            world.confirmed.lock().unwrap().len(),
            world.consumed.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let back = cluster.start(victim, data.path());
        world.addresses.lock().unwrap()[victim] = Some(back.addr);
        nodes[victim] = Some(back);
    }
    let chaos_time = chaos.elapsed();
    world.done.store(true, Ordering::Release);
    let _ = tokio::time::timeout(Duration::from_secs(30), publishing).await;

    // Every confirmed message arrives, however long the cluster needs.
    let waited = Instant::now();
    loop {
        let missing: Vec<u64> = {
            let consumed = world.consumed.lock().unwrap();
            let mut missing: Vec<u64> = world
                .confirmed
                .lock()
                .unwrap()
                .iter()
                .filter(|id| !consumed.contains(id))
                .copied()
                .collect();
            missing.sort_unstable();
            missing
        };
        if missing.is_empty() {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "{} confirmed messages were never consumed, the first: {:?}",
            missing.len(),
            &missing[..missing.len().min(20)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    consuming.abort();
    let confirmed = world.confirmed.lock().unwrap().len();
    eprintln!(
        "{rounds} rounds in {:.1} s: {confirmed} confirmed, all consumed; {} duplicates; {} reconnects",
        chaos_time.as_secs_f64(),
        world.duplicates.load(Ordering::Relaxed),
        world.reconnects.load(Ordering::Relaxed)
    );
    assert!(confirmed > 0, "nothing was confirmed at all");
}
