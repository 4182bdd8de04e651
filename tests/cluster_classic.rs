//! Classic queues in a cluster, through three real `warren` processes and
//! lapin: a classic queue lives on the node that declared it, and every
//! node knows it, routes to it, and serves its consumers and basic.gets
//! (as in RabbitMQ). What a node's consumer held goes back when that node
//! dies; deletes reach every node (`cluster_consumers.rs`: every node's
//! consumers count at the home).

mod common;

use std::time::Duration;

use common::cluster_clients::{amqp, get, leader_seen_by, next_delivery, send, three_members, wait_purged, wait_until};
use common::{passive_declare, Warren};
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, ExchangeKind};
use serde_json::json;

async fn passive_count(node: &Warren, queue: &str) -> Option<u32> {
    let (_connection, channel) = amqp(node).await;
    passive_declare(&channel, queue).await.ok().map(|q| q.message_count())
}

/// Waits until `queue` on `node` holds `count` ready messages (None: until
/// it does not exist there).
async fn wait_for_count(node: &Warren, queue: &str, count: Option<u32>) {
    let started = std::time::Instant::now();
    loop {
        let now = passive_count(node, queue).await;
        if now == count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{queue} on {}: {now:?}, not {count:?}",
            node.addr
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn publish(channel: &Channel, exchange: &str, key: &str, body: &[u8]) {
    let confirm = channel
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(confirm.is_ack(), "{body:?} was not confirmed");
}

/// basic.get until a message comes (the home may still be storing it).
async fn get_one(channel: &Channel, queue: &str) -> lapin::message::BasicGetMessage {
    let started = std::time::Instant::now();
    loop {
        let got = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .expect("get");
        if let Some(message) = got {
            return message;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing to get from {queue}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A consumer with manual acks, tagged `tag`.
async fn consume(channel: &Channel, queue: &str, tag: &str) -> lapin::Consumer {
    channel
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume")
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_queue_is_reached_from_every_node() {
    let (data, cluster, http, mut nodes) = three_members().await;
    let [n1, n2, n3] = [0, 1, 2].map(|i| nodes[i].as_ref().unwrap());
    let (_c1, ch1) = amqp(n1).await;
    ch1.queue_declare("orders".into(), durable(), FieldTable::default())
        .await
        .expect("declare on n1");
    ch1.exchange_declare(
        "shop".into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange");
    ch1.queue_bind(
        "orders".into(),
        "shop".into(),
        "orders.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");

    // Published through n2, by the default exchange and by the binding.
    let (_c2, ch2) = amqp(n2).await;
    ch2.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    for i in 0..50 {
        publish(&ch2, "", "orders", format!("direct {i}").as_bytes()).await;
        publish(&ch2, "shop", "orders.new", format!("routed {i}").as_bytes()).await;
    }
    wait_for_count(n1, "orders", Some(100)).await;
    wait_for_count(n3, "orders", Some(100)).await;
    // The management API of another node names the queue's home.
    let shown = get(&http, n2, "queues/%2f/orders").await.expect("orders on n2");
    assert_eq!(shown["node"], "n1", "{shown}");

    // Consumed through n3 in order, acked there: gone at home.
    let (_c3, ch3) = amqp(n3).await;
    ch3.basic_qos(10, BasicQosOptions::default()).await.expect("qos");
    let mut consumer = consume(&ch3, "orders", "n3").await;
    for i in 0..50 {
        for kind in ["direct", "routed"] {
            let delivery = next_delivery(&mut consumer, Duration::from_secs(20)).await;
            assert_eq!(delivery.data, format!("{kind} {i}").into_bytes());
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
        }
    }
    wait_for_count(n1, "orders", Some(0)).await;

    // basic.get through n2: a reject with requeue brings it back, redelivered.
    ch3.basic_cancel("n3".into(), BasicCancelOptions::default())
        .await
        .expect("cancel");
    publish(&ch2, "", "orders", b"got").await;
    let first = get_one(&ch2, "orders").await;
    assert_eq!(first.delivery.data, b"got");
    assert!(!first.delivery.redelivered);
    first
        .delivery
        .reject(BasicRejectOptions { requeue: true })
        .await
        .expect("reject");
    let again = get_one(&ch2, "orders").await;
    assert_eq!(again.delivery.data, b"got");
    assert!(again.delivery.redelivered);
    again.delivery.ack(BasicAckOptions::default()).await.expect("ack");
    wait_for_count(n1, "orders", Some(0)).await;

    // What a node's consumer held goes back when that node dies.
    for i in 0..5 {
        publish(&ch2, "", "orders", format!("held {i}").as_bytes()).await;
    }
    let mut holding = consume(&ch3, "orders", "holder").await;
    for i in 0..5 {
        let delivery = next_delivery(&mut holding, Duration::from_secs(20)).await;
        assert_eq!(delivery.data, format!("held {i}").into_bytes());
    }
    nodes[2].take().expect("n3").crash();
    let mut back = consume(&ch1, "orders", "home").await;
    for i in 0..5 {
        let delivery = next_delivery(&mut back, Duration::from_secs(30)).await;
        assert_eq!(delivery.data, format!("held {i}").into_bytes());
        assert!(delivery.redelivered);
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }

    // n3, restarted, knows the queue again (from its own store).
    nodes[2] = Some(cluster.start(2, data.path()));
    wait_for_count(nodes[2].as_ref().unwrap(), "orders", Some(0)).await;

    // Deleted through n2: gone from every node.
    ch2.queue_delete("orders".into(), QueueDeleteOptions::default())
        .await
        .expect("delete");
    wait_for_count(nodes[0].as_ref().unwrap(), "orders", None).await;
    wait_for_count(nodes[2].as_ref().unwrap(), "orders", None).await;
    // And it stays gone when a node that knew it restarts (at once, or
    // once it caught up with the log if the kill beat its sync).
    nodes[2].take().expect("n3").crash();
    nodes[2] = Some(cluster.start(2, data.path()));
    leader_seen_by(&http, nodes[2].as_ref().unwrap(), 3).await;
    wait_for_count(nodes[2].as_ref().unwrap(), "orders", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_reach_another_node_whole_and_in_order() {
    // 12 MiB waiting at home: a node's consumer takes them a few MiB per
    // call, each whole, in order.
    let (_data, _cluster, _http, nodes) = three_members().await;
    let [n1, n2, n3] = [0, 1, 2].map(|i| nodes[i].as_ref().unwrap());
    let (_c1, ch1) = amqp(n1).await;
    ch1.queue_declare("big".into(), durable(), FieldTable::default())
        .await
        .expect("declare on n1");
    let (_c2, ch2) = amqp(n2).await;
    ch2.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let body = |i: u8| vec![i; (1 << 20) + usize::from(i)];
    for i in 0..12u8 {
        publish(&ch2, "", "big", &body(i)).await;
    }
    wait_for_count(n1, "big", Some(12)).await;
    let (_c3, ch3) = amqp(n3).await;
    let mut consumer = consume(&ch3, "big", "n3").await;
    for i in 0..12u8 {
        let delivery = next_delivery(&mut consumer, Duration::from_secs(20)).await;
        assert!(delivery.data == body(i), "message {i}: {} bytes", delivery.data.len());
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    wait_for_count(n1, "big", Some(0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_redeclared_elsewhere_while_a_node_was_away_is_the_new_one_there() {
    use futures::StreamExt;
    // "moved" lives on n1 and n3 knows it; while n3 is down it is deleted
    // and declared again on n2, and the metadata log is purged behind a
    // snapshot. n3 comes back from that snapshot: its "moved" must be the
    // one on n2, not what it stored of the one on n1.
    let (data, cluster, http, mut nodes) = three_members().await;
    let (_c1, ch1) = amqp(nodes[0].as_ref().unwrap()).await;
    ch1.queue_declare("moved".into(), durable(), FieldTable::default())
        .await
        .expect("declare on n1");
    wait_for_count(nodes[2].as_ref().unwrap(), "moved", Some(0)).await;
    // Stopped cleanly: n3 keeps what it knew of "moved" in its store.
    nodes[2].take().expect("n3 runs").stop();

    ch1.queue_delete("moved".into(), QueueDeleteOptions::default())
        .await
        .expect("delete on n1");
    let n2 = nodes[1].as_ref().unwrap();
    let (_c2, ch2) = amqp(n2).await;
    ch2.queue_declare("moved".into(), durable(), FieldTable::default())
        .await
        .expect("declare on n2");
    ch2.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    publish(&ch2, "", "moved", b"on n2").await;
    // Over a thousand changes: the group snapshots and purges its log.
    let writer = nodes[0].as_ref().unwrap();
    let made = futures::stream::iter(0..1_100)
        .map(|i| {
            let (http, path) = (&http, format!("users/u{i}"));
            async move { send(http, writer, &path, Some(json!({"password": "p", "tags": ""}))).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<u16>>()
        .await;
    assert!(made.iter().all(|s| *s == 201), "{made:?}");
    wait_purged(data.path(), &["n1", "n2"]).await;

    nodes[2] = Some(cluster.start(2, data.path()));
    let n3 = nodes[2].as_ref().unwrap();
    wait_until(&http, n3, "users", |v| {
        v.as_array().is_some_and(|users| users.len() > 1_100)
    })
    .await;
    let shown = get(&http, n3, "queues/%2f/moved").await.expect("moved on n3");
    assert_eq!(shown["node"], "n2", "{shown}");
    let (_c3, ch3) = amqp(n3).await;
    let got = get_one(&ch3, "moved").await;
    assert_eq!(got.delivery.data, b"on n2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_to_a_queue_whose_home_is_down_are_nacked() {
    // Nacked, never confirmed and dropped (RabbitMQ's channel nacks what
    // it sent to a queue process that is down). What was confirmed before
    // is there again once the home is back.
    let (data, cluster, _http, mut nodes) = three_members().await;
    let (_c1, ch1) = amqp(nodes[0].as_ref().unwrap()).await;
    ch1.queue_declare("homebound".into(), durable(), FieldTable::default())
        .await
        .expect("declare on n1");
    let n2 = nodes[1].take().expect("n2");
    wait_for_count(&n2, "homebound", Some(0)).await;
    let (_c2, ch2) = amqp(&n2).await;
    ch2.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    publish(&ch2, "", "homebound", b"kept").await;
    nodes[0].take().expect("n1").crash();
    let confirm = ch2
        .basic_publish(
            "".into(),
            "homebound".into(),
            BasicPublishOptions::default(),
            b"refused",
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish")
        .await
        .expect("a confirm");
    assert!(
        confirm.is_nack(),
        "a publish to a queue whose home is down was {confirm:?}"
    );
    nodes[0] = Some(cluster.start(0, data.path()));
    wait_for_count(nodes[0].as_ref().unwrap(), "homebound", Some(1)).await;
    wait_for_count(&n2, "homebound", Some(1)).await;
}
