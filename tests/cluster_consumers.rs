//! Every node's consumers of a classic queue count at the queue's home, as
//! in RabbitMQ: exclusive use, single active consumer, queue.delete's
//! if-unused, the consumer count and auto-delete see consumers on other
//! nodes. Through three real `warren` processes and lapin.

mod common;

use std::time::{Duration, Instant};

use common::cluster_clients::{amqp, declare, next_delivery, publish_confirmed, three_members, wait_exists};
use common::{passive_declare, Warren};
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::Channel;

/// basic.consume with manual acks, tagged `tag`.
async fn consume_as(channel: &Channel, queue: &str, tag: &str, exclusive: bool) -> lapin::Result<lapin::Consumer> {
    let options = BasicConsumeOptions {
        exclusive,
        ..Default::default()
    };
    channel
        .basic_consume(queue.into(), tag.into(), options, FieldTable::default())
        .await
}

/// The reply code and text an operation was refused with.
fn refusal<T>(result: lapin::Result<T>) -> (u16, String) {
    match result.map(|_| ()).map_err(|e| e.kind().clone()) {
        Err(lapin::ErrorKind::ProtocolError(e)) => (e.get_id(), e.get_message().to_string()),
        other => panic!("expected a channel error, got {other:?}"),
    }
}

/// Waits until queue.declare-ok through `node` counts `count` consumers.
async fn wait_consumers(node: &Warren, queue: &str, count: u32) {
    let started = Instant::now();
    loop {
        let (_connection, channel) = amqp(node).await;
        let now = passive_declare(&channel, queue).await.map(|q| q.consumer_count());
        if now.as_ref().is_ok_and(|n| *n == count) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{queue} through {}: {now:?} consumers, not {count}",
            node.addr
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn confirming(node: &Warren) -> (lapin::Connection, Channel) {
    let (connection, channel) = amqp(node).await;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    (connection, channel)
}

/// Takes `from..to` in order from `consumer`, acking each.
async fn receive_in_order(consumer: &mut lapin::Consumer, from: u32, to: u32) {
    for i in from..to {
        let delivery = next_delivery(consumer, Duration::from_secs(20)).await;
        assert_eq!(delivery.data, format!("m{i}").into_bytes(), "{}", consumer.tag());
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_use_and_if_unused_see_consumers_on_other_nodes() {
    let (_data, _cluster, _http, nodes) = three_members().await;
    let [n1, n2, n3] = [0, 1, 2].map(|i| nodes[i].as_ref().unwrap());
    let (_c1, ch1) = amqp(n1).await;
    declare(&ch1, "shared", FieldTable::default()).await;

    // An exclusive consumer on n2 holds the queue for every node.
    let (_c2, ch2) = amqp(n2).await;
    // (A lapin consumer dropped is cancelled: each is kept while it counts.)
    let _owner = consume_as(&ch2, "shared", "owner", true)
        .await
        .expect("exclusive on n2");
    wait_consumers(n1, "shared", 1).await;
    wait_consumers(n3, "shared", 1).await;
    let in_use = "ACCESS_REFUSED - queue 'shared' in vhost '/' in exclusive use";
    for node in [n1, n3] {
        let (_c, ch) = amqp(node).await;
        let (code, text) = refusal(consume_as(&ch, "shared", "intruder", false).await);
        assert_eq!((code, text.as_str()), (403, in_use), "through {}", node.addr);
    }
    let (_c3, ch3) = amqp(n3).await;
    let (code, text) = refusal(
        ch3.queue_delete(
            "shared".into(),
            QueueDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(
        (code, text.as_str()),
        (406, "PRECONDITION_FAILED - queue 'shared' in vhost '/' in use")
    );

    // Cancelled: a consumer on n3 may join, and it is fed; then n1 may
    // not consume exclusively.
    ch2.basic_cancel("owner".into(), BasicCancelOptions::default())
        .await
        .expect("cancel");
    wait_consumers(n1, "shared", 0).await;
    let (_c3, ch3) = amqp(n3).await;
    let mut reader = consume_as(&ch3, "shared", "reader", false)
        .await
        .expect("consume on n3");
    let (_p, publisher) = confirming(n1).await;
    publish_confirmed(&publisher, "shared", b"m0").await;
    receive_in_order(&mut reader, 0, 1).await;
    let (_c, ch) = amqp(n1).await;
    let (code, text) = refusal(consume_as(&ch, "shared", "exclusive", true).await);
    assert_eq!((code, text.as_str()), (403, in_use));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_single_active_consumer_among_every_nodes_consumers() {
    let (_data, _cluster, _http, nodes) = three_members().await;
    let [n1, n2, n3] = [0, 1, 2].map(|i| nodes[i].as_ref().unwrap());
    let (_c1, ch1) = amqp(n1).await;
    let mut args = FieldTable::default();
    args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    declare(&ch1, "sac", args).await;

    // The first consumer is on n2, then one at home, then one on n3.
    let (_c2, ch2) = amqp(n2).await;
    let mut first = consume_as(&ch2, "sac", "first", false).await.expect("n2");
    wait_consumers(n1, "sac", 1).await;
    let mut second = consume_as(&ch1, "sac", "second", false).await.expect("n1");
    let (_c3, ch3) = amqp(n3).await;
    let mut third = consume_as(&ch3, "sac", "third", false).await.expect("n3");
    wait_consumers(n1, "sac", 3).await;

    // Only the active one receives; each that cancels hands over to the
    // next, wherever it is. (Published in turns: what a cancelled consumer
    // was sent and did not ack stays its channel's, as in RabbitMQ.)
    let (_p, publisher) = confirming(n1).await;
    let publish = |from: u32| {
        let publisher = publisher.clone();
        async move {
            for i in from..from + 5 {
                publish_confirmed(&publisher, "sac", format!("m{i}").as_bytes()).await;
            }
        }
    };
    publish(0).await;
    receive_in_order(&mut first, 0, 5).await;
    ch2.basic_cancel("first".into(), BasicCancelOptions::default())
        .await
        .expect("cancel first");
    publish(5).await;
    receive_in_order(&mut second, 5, 10).await;
    ch1.basic_cancel("second".into(), BasicCancelOptions::default())
        .await
        .expect("cancel second");
    publish(10).await;
    receive_in_order(&mut third, 10, 15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_delete_queue_goes_with_the_last_consumer_of_any_node() {
    let (_data, _cluster, _http, mut nodes) = three_members().await;
    let [n1, n2, _] = [0, 1, 2].map(|i| nodes[i].as_ref().unwrap());
    let auto = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    let (_c1, ch1) = amqp(n1).await;
    ch1.queue_declare("fleeting".into(), auto, FieldTable::default())
        .await
        .expect("declare");
    wait_exists(n2, "fleeting", true).await;
    let (_c2, ch2) = amqp(n2).await;
    let _there = consume_as(&ch2, "fleeting", "there", false).await.expect("n2");
    let _here = consume_as(&ch1, "fleeting", "here", false).await.expect("n1");
    wait_consumers(n1, "fleeting", 2).await;
    // The home's own consumer goes: n2's still holds the queue.
    ch1.basic_cancel("here".into(), BasicCancelOptions::default())
        .await
        .expect("cancel here");
    wait_consumers(n1, "fleeting", 1).await;
    // n2's goes: the queue goes from every node.
    ch2.basic_cancel("there".into(), BasicCancelOptions::default())
        .await
        .expect("cancel there");
    wait_exists(n1, "fleeting", false).await;
    wait_exists(n2, "fleeting", false).await;

    // Its only consumer's node dies: the queue goes too.
    ch1.queue_declare("orphan".into(), auto, FieldTable::default())
        .await
        .expect("declare");
    let n3 = nodes[2].as_ref().unwrap();
    wait_exists(n3, "orphan", true).await;
    let (_c3, ch3) = amqp(n3).await;
    let _doomed = consume_as(&ch3, "orphan", "doomed", false).await.expect("n3");
    wait_consumers(n1, "orphan", 1).await;
    nodes[2].take().expect("n3").crash();
    wait_exists(nodes[0].as_ref().unwrap(), "orphan", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_delete_queue_declared_again_at_once_stays() {
    // The last consumer goes and the client declares the queue again at
    // once (as RPC clients do with their reply queues): the new queue must
    // not be taken by the delete of the old one, on any node.
    let (_data, _cluster, _http, nodes) = three_members().await;
    let [n1, n2, _] = [0, 1, 2].map(|i| nodes[i].as_ref().unwrap());
    let (_c1, ch1) = amqp(n1).await;
    let auto = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    for round in 0..10 {
        let name = format!("again-{round}");
        ch1.queue_declare(name.as_str().into(), auto, FieldTable::default())
            .await
            .expect("declare");
        let consumer = consume_as(&ch1, &name, "once", false).await.expect("consume");
        ch1.basic_cancel("once".into(), BasicCancelOptions::default())
            .await
            .expect("cancel");
        drop(consumer);
        ch1.queue_declare(name.as_str().into(), auto, FieldTable::default())
            .await
            .expect("declared again");
        // Held by a consumer this time, so that only a wrong delete ends it.
        let _keep = consume_as(&ch1, &name, "keep", false).await.expect("consume again");
        wait_consumers(n1, &name, 1).await;
        wait_consumers(n2, &name, 1).await;
        let (_c, ch) = amqp(n1).await;
        let still = passive_declare(&ch, &name).await;
        assert!(still.is_ok(), "round {round}: the queue declared again went: {still:?}");
    }
}
