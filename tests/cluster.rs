//! Three real `warren` processes on 127.0.0.1, .2 and .3 as one cluster:
//! the metadata group elects a leader, a change made on any node reaches
//! every node, the loss of the leader elects another and changes go on,
//! a restarted node catches up, and without a majority a change is
//! refused (503) instead of being made on some nodes only.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::Warren;
use serde_json::{json, Value};

async fn get(http: &reqwest::Client, node: &Warren, path: &str) -> Option<Value> {
    let url = format!("http://{}/api/{path}", node.management_addr());
    let response = http.get(url).basic_auth("guest", Some("guest")).send().await.ok()?;
    response.json().await.ok()
}

/// PUT (or DELETE with `body` None) on the management API; the status.
async fn send(http: &reqwest::Client, node: &Warren, path: &str, body: Option<Value>) -> u16 {
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

async fn put_cluster_name(http: &reqwest::Client, node: &Warren, name: &str) -> u16 {
    send(http, node, "cluster-name", Some(json!({ "name": name }))).await
}

/// Waits until `path` on `node` answers something `ready` accepts.
async fn wait_until(http: &reqwest::Client, node: &Warren, path: &str, ready: impl Fn(&Value) -> bool) {
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
async fn leader_seen_by(http: &reqwest::Client, node: &Warren, running: usize) -> String {
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

async fn wait_for_name(http: &reqwest::Client, node: &Warren, name: &str) {
    wait_until(http, node, "cluster-name", |v| v["name"] == name).await;
}

/// Three members on fresh data directories, once one of them sees a
/// leader with all three running.
async fn three_members() -> (tempfile::TempDir, Cluster, reqwest::Client, Vec<Option<Warren>>) {
    let data = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::new(3);
    let http = reqwest::Client::new();
    let nodes: Vec<Option<Warren>> = (0..3).map(|i| Some(cluster.start(i, data.path()))).collect();
    leader_seen_by(&http, nodes[0].as_ref().unwrap(), 3).await;
    (data, cluster, http, nodes)
}

/// Whether `user` with `password` can open an AMQP connection to `vhost`
/// on `node` (the encoded vhost in the URL).
async fn can_log_in(node: &Warren, user: &str, password: &str, vhost: &str) -> bool {
    let url = format!("amqp://{user}:{password}@{}/{vhost}", node.addr);
    match lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await {
        Ok(connection) => {
            let _ = connection.close(200, "bye".into()).await;
            true
        }
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_survives_the_loss_of_a_minority() {
    let (data, cluster, http, mut nodes) = three_members().await;
    let running = |nodes: &Vec<Option<Warren>>| nodes.iter().flatten().count();

    let leader = leader_seen_by(&http, nodes[1].as_ref().unwrap(), 3).await;
    for node in nodes.iter().flatten() {
        assert_eq!(
            leader_seen_by(&http, node, 3).await,
            leader,
            "every node sees the same leader"
        );
    }

    // A change made on a follower reaches every node.
    let leader_index = cluster
        .nodes
        .iter()
        .position(|n| n.name == leader)
        .expect("leader is a member");
    let follower = (leader_index + 1) % 3;
    assert_eq!(
        put_cluster_name(&http, nodes[follower].as_ref().unwrap(), "east").await,
        204
    );
    for node in nodes.iter().flatten() {
        wait_for_name(&http, node, "east").await;
    }

    // The leader dies: the other two elect one and go on.
    nodes[leader_index].take().expect("leader runs").crash();
    let killed = Instant::now();
    let survivor = nodes[follower].as_ref().unwrap();
    let new_leader = leader_seen_by(&http, survivor, running(&nodes)).await;
    assert_ne!(new_leader, leader);
    eprintln!(
        "a new leader ({new_leader}) {} ms after the old one died",
        killed.elapsed().as_millis()
    );
    assert_eq!(put_cluster_name(&http, survivor, "west").await, 204);
    for node in nodes.iter().flatten() {
        wait_for_name(&http, node, "west").await;
    }

    // Users, vhosts, permissions and policies made on one survivor while
    // a member is down reach the other survivor.
    let other = nodes
        .iter()
        .flatten()
        .find(|n| n.addr != survivor.addr)
        .expect("two survive");
    assert_eq!(send(&http, survivor, "vhosts/orders", Some(json!({}))).await, 201);
    let user = json!({ "password": "s3cret", "tags": "monitoring" });
    assert_eq!(send(&http, other, "users/alice", Some(user)).await, 201);
    let everything = json!({ "configure": ".*", "write": ".*", "read": ".*" });
    assert_eq!(
        send(&http, survivor, "permissions/orders/alice", Some(everything)).await,
        201
    );
    let policy = json!({ "pattern": "^q", "definition": { "max-length": 10 }, "apply-to": "queues" });
    assert_eq!(send(&http, other, "policies/orders/short", Some(policy)).await, 201);
    assert_eq!(
        send(
            &http,
            survivor,
            "users/bob",
            Some(json!({ "password": "x", "tags": "" }))
        )
        .await,
        201
    );
    for node in nodes.iter().flatten() {
        wait_until(&http, node, "permissions/orders/alice", |v| v["read"] == ".*").await;
        wait_until(&http, node, "policies/orders/short", |v| {
            v["definition"]["max-length"] == 10
        })
        .await;
        assert!(
            can_log_in(node, "alice", "s3cret", "orders").await,
            "alice logs in on {}",
            node.addr
        );
    }

    // The dead node comes back and catches up, deletions included.
    assert_eq!(send(&http, survivor, "users/bob", None).await, 204);
    nodes[leader_index] = Some(cluster.start(leader_index, data.path()));
    let back = nodes[leader_index].as_ref().unwrap();
    wait_for_name(&http, back, "west").await;
    wait_until(&http, back, "permissions/orders/alice", |v| v["read"] == ".*").await;
    wait_until(&http, back, "users", |v| {
        let names: Vec<&str> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["name"].as_str())
            .collect();
        names.contains(&"alice") && !names.contains(&"bob")
    })
    .await;
    assert!(can_log_in(back, "alice", "s3cret", "orders").await);
    leader_seen_by(&http, nodes[leader_index].as_ref().unwrap(), 3).await;

    // Two of three gone: no majority, so the change is refused, not made.
    let last = (leader_index + 2) % 3;
    for (i, node) in nodes.iter_mut().enumerate() {
        if i != last {
            node.take().expect("runs").crash();
        }
    }
    let alone = nodes[last].as_ref().unwrap();
    assert_eq!(put_cluster_name(&http, alone, "north").await, 503);
    assert_eq!(get(&http, alone, "cluster-name").await.expect("name")["name"], "west");
}

/// Whether a node's metadata log was purged behind a snapshot.
fn purged(data: &Path, node: &str) -> bool {
    data.join(node)
        .join("cluster")
        .join("metadata")
        .join("purged.state")
        .exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_a_thousand_changes_catches_up_from_a_snapshot() {
    use futures::StreamExt;
    let (data, cluster, http, mut nodes) = three_members().await;
    assert_eq!(
        send(
            &http,
            nodes[0].as_ref().unwrap(),
            "users/early",
            Some(json!({"password": "e", "tags": ""}))
        )
        .await,
        201
    );
    wait_until(&http, nodes[2].as_ref().unwrap(), "users/early", |v| {
        v["name"] == "early"
    })
    .await;
    nodes[2].take().expect("n3 runs").crash();

    // 1,200 changes while n3 is away: 800 users made, 400 of them deleted
    // again, and "early" deleted. The group snapshots every 1,000 entries
    // and purges its log behind the snapshot.
    let writer = nodes[0].as_ref().unwrap();
    let made = futures::stream::iter(0..800)
        .map(|i| {
            let (http, path) = (&http, format!("users/u{i}"));
            async move { send(http, writer, &path, Some(json!({"password": "p", "tags": ""}))).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<u16>>()
        .await;
    assert!(made.iter().all(|s| *s == 201), "{made:?}");
    let deleted = futures::stream::iter((0..800).step_by(2))
        .map(|i| {
            let (http, path) = (&http, format!("users/u{i}"));
            async move { send(http, writer, &path, None).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<u16>>()
        .await;
    assert!(deleted.iter().all(|s| *s == 204), "{deleted:?}");
    assert_eq!(send(&http, writer, "users/early", None).await, 204);
    let started = Instant::now();
    while !(purged(data.path(), "n1") && purged(data.path(), "n2")) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no log was purged behind a snapshot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    nodes[2] = Some(cluster.start(2, data.path()));
    let back = nodes[2].as_ref().unwrap();
    wait_until(&http, back, "users", |v| {
        let names: Vec<&str> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["name"].as_str())
            .collect();
        names.len() == 401 && names.contains(&"u1") && !names.contains(&"u0") && !names.contains(&"early")
    })
    .await;
}

async fn amqp(node: &Warren) -> (lapin::Connection, lapin::Channel) {
    let url = format!("amqp://guest:guest@{}/%2f", node.addr);
    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    (connection, channel)
}

fn quorum_args(extra: &[(&str, lapin::types::AMQPValue)]) -> lapin::types::FieldTable {
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

async fn declare(channel: &lapin::Channel, name: &str, args: lapin::types::FieldTable) {
    let durable = lapin::options::QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(name.into(), durable, args)
        .await
        .expect("declare");
}

async fn publish_confirmed(channel: &lapin::Channel, queue: &str, body: &[u8]) {
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
async fn consume(channel: &lapin::Channel, queue: &str) -> lapin::Consumer {
    let options = lapin::options::BasicConsumeOptions::default();
    channel
        .basic_consume(queue.into(), "".into(), options, Default::default())
        .await
        .expect("consume")
}

/// The next delivery on a consumer, within a deadline.
async fn next_delivery(consumer: &mut lapin::Consumer, within: Duration) -> lapin::message::Delivery {
    use futures::StreamExt;
    tokio::time::timeout(within, consumer.next())
        .await
        .expect("a delivery in time")
        .expect("the consumer is open")
        .expect("a delivery")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queues_dead_letter_and_outlive_a_node_that_never_returns() {
    use lapin::options::{BasicQosOptions, BasicRejectOptions};
    use lapin::types::AMQPValue;
    let (_data, _cluster, http, mut nodes) = three_members().await;

    // An exchange declared on n1, a quorum queue bound to it on n2, a
    // message published to the exchange on n3 reaches it; unbound on n3,
    // the next one is unroutable everywhere.
    let (_c1, ch1) = amqp(nodes[0].as_ref().unwrap()).await;
    let topic = lapin::ExchangeKind::Topic;
    ch1.exchange_declare("events".into(), topic, Default::default(), Default::default())
        .await
        .expect("exchange");
    let (_c2, ch2) = amqp(nodes[1].as_ref().unwrap()).await;
    declare(&ch2, "audit", quorum_args(&[])).await;
    ch2.queue_bind(
        "audit".into(),
        "events".into(),
        "order.*".into(),
        Default::default(),
        Default::default(),
    )
    .await
    .expect("bind");
    let (c3, ch3) = amqp(nodes[2].as_ref().unwrap()).await;
    ch3.confirm_select(Default::default()).await.expect("confirms");
    let published = ch3
        .basic_publish(
            "events".into(),
            "order.paid".into(),
            Default::default(),
            b"paid",
            Default::default(),
        )
        .await
        .expect("publish");
    assert!(published.await.expect("confirm").is_ack());
    let mut audit = consume(&ch1, "audit").await;
    assert_eq!(next_delivery(&mut audit, Duration::from_secs(10)).await.data, b"paid");
    ch3.queue_unbind("audit".into(), "events".into(), "order.*".into(), Default::default())
        .await
        .expect("unbind");
    for node in nodes.iter().flatten() {
        wait_until(&http, node, "exchanges/%2f/events/bindings/source", |v| {
            v.as_array().is_some_and(Vec::is_empty)
        })
        .await;
    }
    drop(c3);

    // Declared on n1, published to on n2, rejected on n3: the message dies
    // past its delivery limit and reaches the dead-letter queue, which n1
    // reads.
    declare(&ch1, "dead", quorum_args(&[])).await;
    let poisoned = quorum_args(&[
        ("x-delivery-limit", AMQPValue::LongInt(1)),
        ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
        ("x-dead-letter-routing-key", AMQPValue::LongString("dead".into())),
    ]);
    declare(&ch1, "work", poisoned).await;
    ch2.confirm_select(Default::default()).await.expect("confirms");
    publish_confirmed(&ch2, "work", b"poison").await;
    let (c3, ch3) = amqp(nodes[2].as_ref().unwrap()).await;
    let mut work = consume(&ch3, "work").await;
    for expected_count in [None, Some(1)] {
        let delivery = next_delivery(&mut work, Duration::from_secs(10)).await;
        let count = delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-delivery-count").cloned());
        assert!(count.is_some(), "x-delivery-count is sent");
        if let Some(expected) = expected_count {
            assert_eq!(count, Some(AMQPValue::LongLongInt(expected)));
        }
        delivery
            .reject(BasicRejectOptions { requeue: true })
            .await
            .expect("reject");
    }
    let mut dead = consume(&ch1, "dead").await;
    let letter = next_delivery(&mut dead, Duration::from_secs(10)).await;
    assert_eq!(letter.data, b"poison");
    let reason = letter
        .properties
        .headers()
        .as_ref()
        .and_then(|h| match h.inner().get("x-death")? {
            AMQPValue::FieldArray(deaths) => match deaths.as_slice().first()? {
                AMQPValue::FieldTable(death) => death.inner().get("reason").cloned(),
                _ => None,
            },
            _ => None,
        });
    assert_eq!(reason, Some(AMQPValue::LongString("delivery_limit".into())));
    letter.ack(Default::default()).await.expect("ack");
    drop(c3);

    // n3's consumer holds ten unacked messages when n3 dies for good: the
    // others give them to n1's consumer, redelivered.
    declare(&ch1, "held", quorum_args(&[])).await;
    for i in 0..10u8 {
        publish_confirmed(&ch2, "held", &[i]).await;
    }
    let (_c3, ch3) = amqp(nodes[2].as_ref().unwrap()).await;
    ch3.basic_qos(10, BasicQosOptions::default()).await.expect("qos");
    let mut holder = consume(&ch3, "held").await;
    for _ in 0..10 {
        next_delivery(&mut holder, Duration::from_secs(10)).await;
    }
    nodes[2].take().expect("n3 runs").crash();
    let mut survivor = consume(&ch1, "held").await;
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 10 {
        let delivery = next_delivery(&mut survivor, Duration::from_secs(20)).await;
        assert!(delivery.redelivered, "they were delivered before");
        seen.insert(delivery.data[0]);
        delivery.ack(Default::default()).await.expect("ack");
    }
}
