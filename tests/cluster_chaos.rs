//! A Jepsen-style check of replicated quorum queues: three real `warren`
//! processes on 127.0.0.1, .2 and .3; a publisher with confirms and a
//! consumer with manual acks, each reconnecting to whichever node answers;
//! meanwhile a nemesis, round after round, kills a random node with SIGKILL
//! and restarts it, cuts one node off from the other two, or cuts two
//! nodes apart while the third still reaches both (partitions last 3 to 7
//! seconds, past the 5 s after which a member's holdings go back). At the
//! end every confirmed message must have been consumed at least once;
//! duplicates are counted and reported.
//!
//! Partitions are made in the kernel where the test runs as root (each
//! node in a network namespace of its own, a cut being blackhole routes),
//! otherwise by TCP proxies in front of each node's cluster port
//! (`WARREN_PARTITION=proxy` asks for the proxies as root too).
//!
//! CI runs a few rounds. A long run by hand:
//! `WARREN_CHAOS_ROUNDS=100 cargo test --release --test cluster_chaos -- --nocapture`.
//! With `WARREN_CHAOS_BACKLOG=N` the consumer starts only once N messages
//! are confirmed, so the faults hit a queue deeper than a member keeps in
//! memory (each member's paged-out messages, its restarts rebuilding them).

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
    let backlog: usize = std::env::var("WARREN_CHAOS_BACKLOG")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    while world.confirmed.lock().unwrap().len() < backlog && !world.done.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Whether `node` sees every member in `cut_off` as not running before
/// `within` has passed: proof that a partition really cut it off.
async fn sees_down(http: &reqwest::Client, node: &Warren, cut_off: &[String], within: Duration) -> bool {
    let url = format!("http://{}/api/nodes", node.management_addr());
    let started = Instant::now();
    while started.elapsed() < within {
        let answer = http.get(&url).basic_auth("guest", Some("guest")).send().await;
        if let Ok(Ok(serde_json::Value::Array(members))) = match answer {
            Ok(response) => Ok(response.json::<serde_json::Value>().await),
            Err(e) => Err(e),
        } {
            let down = |name: &String| members.iter().any(|m| m["name"] == **name && m["running"] == false);
            if cut_off.iter().all(down) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// One round's fault.
#[derive(Debug)]
enum Fault {
    /// SIGKILL, then a restart 1.5 s later.
    Kill(usize),
    /// The node reaches neither other node for a while.
    Isolate(usize, Duration),
    /// Two nodes cannot reach each other; the third reaches both.
    Bridge(usize, usize, Duration),
}

impl Fault {
    /// Round `round`'s fault: kill, isolate and bridge take turns (so a
    /// short run has each); the nodes and how long, from `seed`.
    fn pick(round: usize, seed: usize) -> Fault {
        let victim = (seed >> 33) % 3;
        let other = (victim + 1 + (seed >> 20) % 2) % 3;
        let lasts = Duration::from_millis(3000 + ((seed >> 40) % 4000) as u64);
        match round % 3 {
            0 => Fault::Kill(victim),
            1 => Fault::Isolate(victim, lasts),
            _ => Fault::Bridge(victim, other, lasts),
        }
    }

    /// The pairs of nodes it cuts apart.
    fn cuts(&self) -> Vec<(usize, usize)> {
        match *self {
            Fault::Kill(_) => Vec::new(),
            Fault::Isolate(victim, _) => (0..3).filter(|o| *o != victim).map(|o| (victim, o)).collect(),
            Fault::Bridge(a, b, _) => vec![(a, b)],
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_messages_survive_kills_and_partitions() {
    let rounds: usize = std::env::var("WARREN_CHAOS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6);
    let data = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::partitionable(3).await;
    eprintln!("partitions by {}", cluster.partitions());
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
    let http = reqwest::Client::new();
    let mut partitions_seen = 0;
    let chaos = Instant::now();
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_secs(3)).await;
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let fault = Fault::pick(round, seed);
        eprintln!(
            "round {round}: {fault:?} ({} confirmed, {} consumed so far)",
            world.confirmed.lock().unwrap().len(),
            world.consumed.lock().unwrap().len()
        );
        match fault {
            Fault::Kill(victim) => {
                world.addresses.lock().unwrap()[victim] = None;
                if let Some(node) = nodes[victim].take() {
                    node.crash();
                }
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let back = cluster.start(victim, data.path());
                world.addresses.lock().unwrap()[victim] = Some(back.addr);
                nodes[victim] = Some(back);
            }
            Fault::Isolate(_, lasts) | Fault::Bridge(_, _, lasts) => {
                let cut_at = Instant::now();
                for (a, b) in fault.cuts() {
                    cluster.set_cut(a, b, true);
                }
                // The first node of each cut sees the other as down.
                let (seer, _) = fault.cuts()[0];
                let cut_off: Vec<String> = fault.cuts().iter().map(|(_, b)| format!("n{}", b + 1)).collect();
                if let Some(node) = nodes[seer].as_ref() {
                    let seen = sees_down(&http, node, &cut_off, lasts).await;
                    assert!(seen, "n{} still saw {cut_off:?} running through {fault:?}", seer + 1);
                    partitions_seen += 1;
                }
                tokio::time::sleep(lasts.saturating_sub(cut_at.elapsed())).await;
                for (a, b) in fault.cuts() {
                    cluster.set_cut(a, b, false);
                }
            }
        }
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
        "{rounds} rounds ({partitions_seen} partitions seen from inside) in {:.1} s: \
         {confirmed} confirmed, all consumed; {} duplicates; {} reconnects",
        chaos_time.as_secs_f64(),
        world.duplicates.load(Ordering::Relaxed),
        world.reconnects.load(Ordering::Relaxed)
    );
    assert!(confirmed > 0, "nothing was confirmed at all");
}
