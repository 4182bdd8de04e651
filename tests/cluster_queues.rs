//! Replicated quorum queues in a cluster of three real `warren` processes
//! (127.0.0.1, .2, .3), each feature exercised across nodes: declared on
//! one, published to on another, consumed on a third. Groups spread their
//! leaders and keep their declared size; a queue declared while a member is
//! down still elects; TTLs (the leader's clock), length limits,
//! dead-lettering and a single active consumer hold; a node that dies for
//! good gives back what its consumers held; a member that missed more than
//! its group's log keeps catches up from the group's snapshot; a queue
//! deeper than a member keeps in memory waits on each member's disk.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster_clients::{
    amqp, consume, declare, get, next_delivery, publish_confirmed, quorum_args, three_members, wait_until,
};
use common::Warren;
use lapin::types::AMQPValue;
use serde_json::Value;

/// The `reason` of a dead letter's first `x-death` entry.
fn death_reason(letter: &lapin::message::Delivery) -> Option<AMQPValue> {
    letter
        .properties
        .headers()
        .as_ref()
        .and_then(|h| match h.inner().get("x-death")? {
            AMQPValue::FieldArray(deaths) => match deaths.as_slice().first()? {
                AMQPValue::FieldTable(death) => death.inner().get("reason").cloned(),
                _ => None,
            },
            _ => None,
        })
}

/// A queue's leader and members once `node` knows its leader.
async fn placement(http: &reqwest::Client, node: &Warren, queue: &str) -> (String, Vec<String>) {
    let path = format!("queues/%2f/{queue}");
    wait_until(http, node, &path, |q| q["leader"].is_string()).await;
    let q = get(http, node, &path).await.unwrap_or(Value::Null);
    let members = q["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|n| n.as_str().map(String::from)).collect())
        .unwrap_or_default();
    (q["leader"].as_str().unwrap_or_default().to_string(), members)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_spread_their_leaders_keep_their_size_and_start_without_a_member() {
    let (_data, _cluster, http, mut nodes) = three_members().await;
    let n1 = nodes[0].as_ref().unwrap();
    let (_c1, ch1) = amqp(n1).await;
    let mut leaders = BTreeSet::new();
    for i in 0..6 {
        let name = format!("spread-{i}");
        declare(&ch1, &name, quorum_args(&[])).await;
        let (leader, members) = placement(&http, n1, &name).await;
        assert_eq!(members.len(), 3, "{name}: every member votes: {members:?}");
        leaders.insert(leader);
    }
    assert!(leaders.len() >= 2, "six groups all led by {leaders:?}");

    // One voter: the other two nodes still serve the queue, as learners.
    let one = quorum_args(&[("x-quorum-initial-group-size", AMQPValue::LongInt(1))]);
    declare(&ch1, "single", one).await;
    let (leader, members) = placement(&http, n1, "single").await;
    assert_eq!(members, vec![leader.clone()], "one member, which leads");
    let learners: Vec<&Warren> = nodes
        .iter()
        .flatten()
        .zip(["n1", "n2", "n3"])
        .filter(|(_, name)| *name != leader)
        .map(|(node, _)| node)
        .collect();
    let (_cp, publisher) = amqp(learners[0]).await;
    publisher.confirm_select(Default::default()).await.expect("confirms");
    publish_confirmed(&publisher, "single", b"via a learner").await;
    let (_cc, reader) = amqp(learners[1]).await;
    let mut consumer = consume(&reader, "single").await;
    let delivery = next_delivery(&mut consumer, Duration::from_secs(10)).await;
    assert_eq!(delivery.data, b"via a learner");
    delivery.ack(Default::default()).await.expect("ack");
    let zero = quorum_args(&[("x-quorum-initial-group-size", AMQPValue::LongInt(0))]);
    let refused = ch1
        .queue_declare(
            "none".into(),
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            zero,
        )
        .await
        .expect_err("a group of none is refused");
    assert!(refused.to_string().contains("value_zero"), "{refused}");

    // n1 down for good: groups declared now elect among n2 and n3 and take
    // confirmed messages, those that n1 was picked to start too (names
    // place the same in every run: late-4's group is one of them).
    nodes[0].take().expect("n1 runs").crash();
    let (_c2, ch2) = amqp(nodes[1].as_ref().unwrap()).await;
    ch2.confirm_select(Default::default()).await.expect("confirms");
    let (_c3, ch3) = amqp(nodes[2].as_ref().unwrap()).await;
    for i in 0..6 {
        let name = format!("late-{i}");
        declare(&ch2, &name, quorum_args(&[])).await;
        publish_confirmed(&ch2, &name, name.as_bytes()).await;
        let mut consumer = consume(&ch3, &name).await;
        let delivery = next_delivery(&mut consumer, Duration::from_secs(15)).await;
        assert_eq!(delivery.data, name.as_bytes());
        delivery.ack(Default::default()).await.expect("ack");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_and_length_limits_hold_across_nodes() {
    let (_data, _cluster, http, nodes) = three_members().await;
    let [n1, n2, n3] = [0, 1, 2].map(|i| nodes[i].as_ref().unwrap());
    let (_c1, ch1) = amqp(n1).await;
    let (_c2, ch2) = amqp(n2).await;
    ch2.confirm_select(Default::default()).await.expect("confirms");
    let (_c3, ch3) = amqp(n3).await;

    // A TTL runs out by the leader's clock; the message is dead-lettered.
    declare(&ch1, "expired", quorum_args(&[])).await;
    let ttl = quorum_args(&[
        ("x-message-ttl", AMQPValue::LongInt(300)),
        ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
        ("x-dead-letter-routing-key", AMQPValue::LongString("expired".into())),
    ]);
    declare(&ch1, "short-lived", ttl).await;
    publish_confirmed(&ch2, "short-lived", b"late").await;
    let mut expired = consume(&ch3, "expired").await;
    let letter = next_delivery(&mut expired, Duration::from_secs(10)).await;
    assert_eq!(letter.data, b"late");
    assert_eq!(death_reason(&letter), Some(AMQPValue::LongString("expired".into())));
    for node in [n1, n2, n3] {
        wait_until(&http, node, "queues/%2f/short-lived", |q| q["messages"] == 0).await;
    }

    // drop-head: the oldest goes.
    declare(&ch1, "bounded", quorum_args(&[("x-max-length", AMQPValue::LongInt(2))])).await;
    for body in [b"m0", b"m1", b"m2"] {
        publish_confirmed(&ch2, "bounded", body).await;
    }
    let mut bounded = consume(&ch3, "bounded").await;
    for expected in [b"m1", b"m2"] {
        let delivery = next_delivery(&mut bounded, Duration::from_secs(10)).await;
        assert_eq!(delivery.data, expected);
        delivery.ack(Default::default()).await.expect("ack");
    }

    // reject-publish: the publish that would overflow is nacked.
    let full = quorum_args(&[
        ("x-max-length", AMQPValue::LongInt(1)),
        ("x-overflow", AMQPValue::LongString("reject-publish".into())),
    ]);
    declare(&ch1, "full", full).await;
    publish_confirmed(&ch2, "full", b"kept").await;
    let refused = ch2
        .basic_publish(
            "".into(),
            "full".into(),
            Default::default(),
            b"refused",
            Default::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("an answer");
    assert!(refused.is_nack(), "the second message is refused");
    let mut full = consume(&ch3, "full").await;
    assert_eq!(next_delivery(&mut full, Duration::from_secs(10)).await.data, b"kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queues_dead_letter_and_outlive_a_node_that_never_returns() {
    use lapin::options::{BasicQosOptions, BasicRejectOptions};
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
    assert_eq!(
        death_reason(&letter),
        Some(AMQPValue::LongString("delivery_limit".into()))
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_active_consumer_holds_across_nodes_until_it_goes() {
    let (_data, _cluster, _http, nodes) = three_members().await;
    let [n1, n2, n3] = [0, 1, 2].map(|i| nodes[i].as_ref().unwrap());
    let (_c1, ch1) = amqp(n1).await;
    let single = quorum_args(&[("x-single-active-consumer", AMQPValue::Boolean(true))]);
    declare(&ch1, "one-at-a-time", single).await;
    let (_c3, publisher) = amqp(n3).await;
    publisher.confirm_select(Default::default()).await.expect("confirms");

    // n2's consumer came first: it is the active one (a message proves it
    // is in line before n3's consumer comes).
    let (c2, ch2) = amqp(n2).await;
    let mut first = consume(&ch2, "one-at-a-time").await;
    publish_confirmed(&publisher, "one-at-a-time", b"0").await;
    let delivery = next_delivery(&mut first, Duration::from_secs(10)).await;
    assert_eq!(delivery.data, b"0");
    delivery.ack(Default::default()).await.expect("ack");
    let mut second = consume(&publisher, "one-at-a-time").await;
    for i in 1..=5u8 {
        publish_confirmed(&publisher, "one-at-a-time", &[b'0' + i]).await;
    }
    // Each message goes to one consumer: all of them here, in order, means
    // none went to the second.
    for i in 1..=5u8 {
        let delivery = next_delivery(&mut first, Duration::from_secs(10)).await;
        assert_eq!(delivery.data, [b'0' + i]);
        delivery.ack(Default::default()).await.expect("ack");
    }

    // The active consumer's connection closes: the next in line takes over.
    c2.close(200, "bye".into()).await.expect("close");
    for i in 6..=8u8 {
        publish_confirmed(&publisher, "one-at-a-time", &[b'0' + i]).await;
    }
    for i in 6..=8u8 {
        let delivery = next_delivery(&mut second, Duration::from_secs(10)).await;
        assert_eq!(delivery.data, [b'0' + i]);
        delivery.ack(Default::default()).await.expect("ack");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_quorum_queue_expires_on_every_node() {
    let (_data, _cluster, http, nodes) = three_members().await;
    let [n1, n2, n3] = [0, 1, 2].map(|i| nodes[i].as_ref().unwrap());
    let (_c1, ch1) = amqp(n1).await;
    declare(
        &ch1,
        "fleeting",
        quorum_args(&[("x-expires", AMQPValue::LongInt(1500))]),
    )
    .await;
    // A consumer on n2 keeps it: still there on every node well past 1.5 s.
    let (c2, ch2) = amqp(n2).await;
    let _consumer = consume(&ch2, "fleeting").await;
    let kept = std::time::Instant::now();
    while kept.elapsed() < Duration::from_secs(4) {
        for node in [n1, n2, n3] {
            let queue = get(&http, node, "queues/%2f/fleeting").await;
            assert!(
                queue.as_ref().is_some_and(|q| q["name"] == "fleeting"),
                "gone while consumed: {queue:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The consumer goes: 1.5 s later the queue goes, from every node.
    c2.close(200, "bye".into()).await.expect("close");
    for node in [n1, n2, n3] {
        wait_until(&http, node, "queues/%2f/fleeting", |q| q.get("name").is_none()).await;
    }
}

/// Whether some queue group's log under `node`'s data was purged behind
/// a snapshot.
fn a_queue_log_was_purged(data: &std::path::Path, node: &str) -> bool {
    let groups = data.join(node).join("cluster").join("queues");
    std::fs::read_dir(groups)
        .into_iter()
        .flatten()
        .flatten()
        .any(|group| group.path().join("purged.state").exists())
}

/// A body of `len` bytes that says which message it is.
fn numbered(i: u32, len: usize) -> Vec<u8> {
    let mut body = vec![(i % 251) as u8; len];
    body[..4].copy_from_slice(&i.to_be_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_missed_the_log_catches_up_from_the_snapshot() {
    let (data, cluster, http, mut nodes) = three_members().await;
    let (_c1, ch1) = amqp(nodes[0].as_ref().unwrap()).await;
    declare(&ch1, "big", quorum_args(&[])).await;
    nodes[2].take().expect("n3 runs").crash();

    // 150 MB while n3 is away: past the size at which a group snapshots
    // (64 MiB) twice, and more entries than it keeps behind a snapshot, so
    // the log n3 would need is gone and only the snapshot brings it back.
    const COUNT: u32 = 300;
    const LEN: usize = 512 * 1024;
    ch1.confirm_select(Default::default()).await.expect("confirms");
    let mut confirms = Vec::new();
    for i in 0..COUNT {
        let properties = lapin::BasicProperties::default().with_delivery_mode(2);
        let body = numbered(i, LEN);
        let confirm = ch1
            .basic_publish("".into(), "big".into(), Default::default(), &body, properties)
            .await
            .expect("publish");
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(confirm.await.expect("confirm").is_ack());
    }
    let started = std::time::Instant::now();
    while !(a_queue_log_was_purged(data.path(), "n1") && a_queue_log_was_purged(data.path(), "n2")) {
        assert!(started.elapsed() < Duration::from_secs(30), "no queue log was purged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    nodes[2] = Some(cluster.start(2, data.path()));
    // n3's own machine holds them once it installed the snapshot.
    wait_until(&http, nodes[2].as_ref().unwrap(), "queues/%2f/big", |q| {
        q["messages"] == COUNT
    })
    .await;
    // Without n1, n3 must take part in every commit: consumed through n3,
    // every message comes back whole and in order.
    nodes[0].take().expect("n1 runs").crash();
    let (_c3, ch3) = amqp(nodes[2].as_ref().unwrap()).await;
    let mut consumer = consume(&ch3, "big").await;
    for i in 0..COUNT {
        let delivery = next_delivery(&mut consumer, Duration::from_secs(30)).await;
        assert!(delivery.data == numbered(i, LEN), "message {i} came back changed");
        delivery.ack(Default::default()).await.expect("ack");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_quorum_queue_waits_on_each_members_disk_and_comes_back_in_order() {
    let (data, cluster, http, mut nodes) = three_members().await;
    let n1 = nodes[0].as_ref().unwrap();
    let (_c1, ch1) = amqp(n1).await;
    declare(&ch1, "deep", quorum_args(&[])).await;

    // More than a member keeps in memory (4,096 ready messages): the rest
    // wait in each member's store.
    const COUNT: u32 = 6_000;
    const LEN: usize = 1024;
    ch1.confirm_select(Default::default()).await.expect("confirms");
    let mut confirms = Vec::new();
    for i in 0..COUNT {
        let properties = lapin::BasicProperties::default().with_delivery_mode(2);
        let confirm = ch1
            .basic_publish(
                "".into(),
                "deep".into(),
                Default::default(),
                &numbered(i, LEN),
                properties,
            )
            .await
            .expect("publish");
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(confirm.await.expect("confirm").is_ack());
    }
    let paged =
        |q: &Value| q["messages"] == COUNT && q["messages_paged_out"].as_u64() >= Some(u64::from(COUNT) - 4_096);
    for node in nodes.iter().flatten() {
        wait_until(&http, node, "queues/%2f/deep", paged).await;
    }

    // A member killed and started again rebuilds the queue from its log and
    // pages it out again (what its store held before is gone with it).
    nodes[2].take().expect("n3 runs").crash();
    nodes[2] = Some(cluster.start(2, data.path()));
    let n3 = nodes[2].as_ref().unwrap();
    wait_until(&http, n3, "queues/%2f/deep", paged).await;

    // Consumed through that member, with a prefetch: every message whole
    // and in order, read back from its disk ahead of need.
    let (_c3, ch3) = amqp(n3).await;
    ch3.basic_qos(300, Default::default()).await.expect("qos");
    let mut consumer = consume(&ch3, "deep").await;
    for i in 0..COUNT {
        let delivery = next_delivery(&mut consumer, Duration::from_secs(30)).await;
        assert!(
            delivery.data == numbered(i, LEN),
            "message {i} came back changed or out of order"
        );
        delivery.ack(Default::default()).await.expect("ack");
    }
    for node in nodes.iter().flatten() {
        wait_until(&http, node, "queues/%2f/deep", |q| {
            q["messages"] == 0 && q["messages_paged_out"] == 0
        })
        .await;
    }
}

/// Publishes numbered messages (4 bytes, big-endian) to `queue` through
/// `channel`, with confirms, until `stop` is set; returns how many.
async fn publish_numbers(
    channel: lapin::Channel,
    queue: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u32 {
    channel.confirm_select(Default::default()).await.expect("confirms");
    let mut next = 0u32;
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        let mut confirms = Vec::new();
        for _ in 0..20 {
            let properties = lapin::BasicProperties::default().with_delivery_mode(2);
            let confirm = channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    Default::default(),
                    &next.to_be_bytes(),
                    properties,
                )
                .await
                .expect("publish");
            confirms.push(confirm);
            next += 1;
        }
        for confirm in confirms {
            assert!(confirm.await.expect("confirm").is_ack());
        }
    }
    next
}

/// A delivery's number, after checking that a first delivery comes after
/// every first delivery before it (`last`).
fn in_order(delivery: &lapin::message::Delivery, last: &mut Option<u32>, what: &str) -> u32 {
    let id = u32::from_be_bytes(delivery.data[..4].try_into().expect("4 bytes"));
    if !delivery.redelivered {
        assert!(last.is_none_or(|l| id > l), "{what}: message {id} came after {last:?}");
        *last = Some(id);
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_single_active_consumer_on_another_node_takes_over_in_order() {
    use futures::StreamExt;
    let (_data, _cluster, http, nodes) = three_members().await;
    let n1 = nodes[0].as_ref().unwrap();
    let (_c1, ch1) = amqp(n1).await;
    let single = quorum_args(&[("x-single-active-consumer", AMQPValue::Boolean(true))]);
    declare(&ch1, "handover", single).await;
    // The consumers on the two members that follow: each applies a
    // checkout made for it only after the leader answered it.
    let (leader, _) = placement(&http, n1, "handover").await;
    let followers: Vec<&Warren> = (0..3)
        .filter(|i| format!("n{}", i + 1) != leader)
        .filter_map(|i| nodes[i].as_ref())
        .collect();
    let leader_node = (0..3)
        .find(|i| format!("n{}", i + 1) == leader)
        .and_then(|i| nodes[i].as_ref())
        .expect("the leader runs");
    let (_cp, publisher) = amqp(leader_node).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publishing = tokio::spawn(publish_numbers(publisher, "handover", stop.clone()));

    // Consumers come and go on alternate followers while messages flow.
    // What was checked out for one that left and not delivered to it goes
    // back to the queue before the next in line starts: the next one's
    // first deliveries carry on in order (messages delivered to the one
    // that left stay with its channel until it closes; they come back
    // redelivered).
    let mut last = None;
    let mut seen = BTreeSet::new();
    let mut connections = Vec::new();
    let (c, ch) = amqp(followers[0]).await;
    ch.basic_qos(20, Default::default()).await.expect("qos");
    let mut current = (ch.clone(), consume(&ch, "handover").await);
    connections.push(c);
    for round in 0..4 {
        let (c, ch) = amqp(followers[(round + 1) % 2]).await;
        ch.basic_qos(20, Default::default()).await.expect("qos");
        let next = (ch.clone(), consume(&ch, "handover").await);
        connections.push(c);
        for _ in 0..200 {
            let delivery = next_delivery(&mut current.1, Duration::from_secs(10)).await;
            seen.insert(in_order(&delivery, &mut last, &format!("round {round}")));
            delivery.ack(Default::default()).await.expect("ack");
        }
        current
            .0
            .basic_cancel(current.1.tag(), Default::default())
            .await
            .expect("cancel");
        while let Ok(Some(Ok(delivery))) = tokio::time::timeout(Duration::from_millis(500), current.1.next()).await {
            seen.insert(in_order(&delivery, &mut last, &format!("round {round}, cancelled")));
            delivery.ack(Default::default()).await.expect("ack");
        }
        current = next;
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    let published = tokio::time::timeout(Duration::from_secs(10), publishing)
        .await
        .expect("the publisher stops")
        .expect("the publisher");
    // Every connection closes: what their channels held comes back, and
    // one last consumer takes everything not yet seen.
    for connection in connections {
        let _ = connection.close(200, "bye".into()).await;
    }
    let (_cl, last_channel) = amqp(followers[1]).await;
    let mut rest = consume(&last_channel, "handover").await;
    while seen.len() < published as usize {
        let delivery = next_delivery(&mut rest, Duration::from_secs(10)).await;
        seen.insert(u32::from_be_bytes(delivery.data[..4].try_into().expect("4 bytes")));
        delivery.ack(Default::default()).await.expect("ack");
    }
    assert_eq!(seen.len(), published as usize, "every message once at least");
}
