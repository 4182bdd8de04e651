//! What the cluster tests do through clients: the management API of one
//! node (GET, PUT/DELETE, waiting for an answer), AMQP connections, quorum
//! queues declared, published to with confirms and consumed from.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::cluster::Cluster;
use super::Warren;

/// Whether a node's metadata log was purged behind a snapshot.
fn purged(data: &std::path::Path, node: &str) -> bool {
    data.join(node)
        .join("cluster")
        .join("metadata")
        .join("purged.state")
        .exists()
}

/// Waits until the metadata logs of `members` (under `data`) were purged
/// behind a snapshot.
pub async fn wait_purged(data: &std::path::Path, members: &[&str]) {
    let started = Instant::now();
    while !members.iter().all(|node| purged(data, node)) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no log was purged behind a snapshot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn get(http: &reqwest::Client, node: &Warren, path: &str) -> Option<Value> {
    let url = format!("http://{}/api/{path}", node.management_addr());
    let response = http.get(url).basic_auth("guest", Some("guest")).send().await.ok()?;
    response.json().await.ok()
}

/// PUT (or DELETE with `body` None) on the management API; the status.
pub async fn send(http: &reqwest::Client, node: &Warren, path: &str, body: Option<Value>) -> u16 {
    let url = format!("http://{}/api/{path}", node.management_addr());
    let request = match body {
        Some(body) => http.put(url).json(&body),
        None => http.delete(url),
    };
    request
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Waits until `path` on `node` answers something `ready` accepts.
pub async fn wait_until(http: &reqwest::Client, node: &Warren, path: &str, ready: impl Fn(&Value) -> bool) {
    let started = Instant::now();
    loop {
        if get(http, node, path).await.is_some_and(|v| ready(&v)) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{path} on {} never became as expected: {:?}",
            node.addr,
            get(http, node, path).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The leader's name once `node` sees `running` members running, the
/// leader among them.
pub async fn leader_seen_by(http: &reqwest::Client, node: &Warren, running: usize) -> String {
    let started = Instant::now();
    loop {
        if let Some(Value::Array(members)) = get(http, node, "nodes").await {
            let up = members.iter().filter(|m| m["running"] == true).count();
            let leader = members
                .iter()
                .find(|m| m["metadata_leader"] == true && m["running"] == true);
            if let (true, Some(leader)) = (up == running, leader) {
                return leader["name"].as_str().unwrap_or_default().to_string();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no leader with {running} members running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three members on fresh data directories, once one of them sees a
/// leader with all three running.
pub async fn three_members() -> (tempfile::TempDir, Cluster, reqwest::Client, Vec<Option<Warren>>) {
    let data = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::new(3);
    let http = reqwest::Client::new();
    let nodes: Vec<Option<Warren>> = (0..3).map(|i| Some(cluster.start(i, data.path()))).collect();
    leader_seen_by(&http, nodes[0].as_ref().unwrap(), 3).await;
    (data, cluster, http, nodes)
}

pub async fn amqp(node: &Warren) -> (lapin::Connection, lapin::Channel) {
    let url = format!("amqp://guest:guest@{}/%2f", node.addr);
    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    (connection, channel)
}

pub fn quorum_args(extra: &[(&str, lapin::types::AMQPValue)]) -> lapin::types::FieldTable {
    let mut args = lapin::types::FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("quorum".into()),
    );
    for (key, value) in extra {
        args.insert((*key).into(), value.clone());
    }
    args
}

pub async fn declare(channel: &lapin::Channel, name: &str, args: lapin::types::FieldTable) {
    let durable = lapin::options::QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(name.into(), durable, args)
        .await
        .expect("declare");
}

pub async fn publish_confirmed(channel: &lapin::Channel, queue: &str, body: &[u8]) {
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.into(),
            Default::default(),
            body,
            lapin::BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish");
    assert!(confirm.await.expect("confirm").is_ack());
}

/// A consumer with manual acks on `queue`.
pub async fn consume(channel: &lapin::Channel, queue: &str) -> lapin::Consumer {
    let options = lapin::options::BasicConsumeOptions::default();
    channel
        .basic_consume(queue.into(), "".into(), options, Default::default())
        .await
        .expect("consume")
}

/// The next delivery on a consumer, within a deadline.
pub async fn next_delivery(consumer: &mut lapin::Consumer, within: Duration) -> lapin::message::Delivery {
    use futures::StreamExt;
    tokio::time::timeout(within, consumer.next())
        .await
        .expect("a delivery in time")
        .expect("the consumer is open")
        .expect("a delivery")
}

/// Waits until `queue` exists through `node` (or no longer does).
pub async fn wait_exists(node: &Warren, queue: &str, exists: bool) {
    let started = Instant::now();
    loop {
        let (_connection, channel) = amqp(node).await;
        if super::passive_declare(&channel, queue).await.is_ok() == exists {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{queue} through {}: exists is not {exists}",
            node.addr
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
