//! Queues longer than the in-memory window (Warren keeps 4,096 messages of
//! a queue in memory and reads the rest back from disk, durable queue or
//! not, as RabbitMQ 3.12+ does): through lapin, a long queue behaves
//! exactly as a short one: order, counts, length limits, TTL with
//! dead-lettering, purge, requeue. Every scenario runs on a durable and on
//! a non-durable queue, and holds on RabbitMQ too (`WARREN_TEST_URL`).

use std::time::Duration;

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use warren_conformance::lapin_util::*;

/// Comfortably more than the window, so every scenario crosses it.
const LONG: u32 = 10_000;

async fn new_queue(channel: &Channel, durable: bool, arguments: FieldTable) -> String {
    let name = unique("paged");
    let options = QueueDeclareOptions {
        durable,
        ..Default::default()
    };
    channel
        .queue_declare(name.as_str().into(), options, arguments)
        .bounded()
        .await
        .expect("declare");
    name
}

/// Publishes `count` messages numbered from `first` with confirms; every
/// `transient_every`-th is transient (0: none), the rest persistent.
async fn publish_numbered(channel: &Channel, queue: &str, first: u32, count: u32, transient_every: u32) {
    publish_each(channel, queue, first..first + count, |n| {
        let transient = transient_every > 0 && n % transient_every == 0;
        BasicProperties::default().with_delivery_mode(if transient { 1 } else { 2 })
    })
    .await;
}

/// Publishes messages numbered `numbers` (the body is the number), message
/// `n` with `properties(n)`, then waits for every confirm to be an ack.
async fn publish_each(
    channel: &Channel,
    queue: &str,
    numbers: std::ops::Range<u32>,
    properties: impl Fn(u32) -> BasicProperties,
) {
    let mut confirms = Vec::with_capacity(numbers.len());
    for n in numbers {
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                format!("{n:06}").as_bytes(),
                properties(n),
            )
            .bounded()
            .await
            .expect("publish");
        confirms.push(confirm);
    }
    for confirm in confirms {
        let confirmation = confirm.bounded().await.expect("confirm");
        assert!(confirmation.is_ack(), "every publish is confirmed");
    }
}

async fn confirming_channel() -> (lapin::Connection, Channel) {
    let (connection, channel) = channel().await;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .bounded()
        .await
        .expect("confirm.select");
    (connection, channel)
}

async fn count(channel: &Channel, queue: &str) -> u32 {
    counts(channel, queue).await.0
}

/// Consumes `n` deliveries with manual acks (prefetch 500) on a channel of
/// its own and returns their bodies. Closing that channel at the end puts
/// back what was prefetched beyond `n`, in its place.
async fn consume_and_ack(queue: &str, n: u32) -> Vec<String> {
    let (connection, channel) = channel().await;
    channel
        .basic_qos(500, BasicQosOptions::default())
        .bounded()
        .await
        .unwrap();
    let mut consumer = consume(&channel, queue, "", false).await;
    let mut bodies = Vec::with_capacity(n as usize);
    while bodies.len() < n as usize {
        let delivery = next(&mut consumer).await;
        bodies.push(body(&delivery));
        delivery.ack(BasicAckOptions::default()).bounded().await.unwrap();
    }
    connection.close(200, "done".into()).bounded().await.unwrap();
    bodies
}

fn numbered(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|n| format!("{n:06}")).collect()
}

/// Asserts `bodies` are exactly the messages numbered `expected`, in order,
/// naming the first difference instead of printing thousands of bodies.
#[track_caller]
fn assert_numbered(bodies: &[String], expected: std::ops::Range<u32>, what: &str) {
    assert_bodies(bodies, &numbered(expected), what);
}

/// Asserts `bodies` are `expected`, in order, naming the first difference.
#[track_caller]
fn assert_bodies(bodies: &[String], expected: &[String], what: &str) {
    if let Some(i) = (0..bodies.len().min(expected.len())).find(|&i| bodies[i] != expected[i]) {
        let around = &bodies[i.saturating_sub(2)..(i + 3).min(bodies.len())];
        panic!(
            "{what}: position {i} holds {} instead of {} (around it: {around:?})",
            bodies[i], expected[i]
        );
    }
    assert_eq!(bodies.len(), expected.len(), "{what}: how many");
}

/// A priority queue's arguments: levels 0 to 3.
fn priorities() -> FieldTable {
    table(&[("x-max-priority", AMQPValue::ShortShortUInt(3))])
}

/// Publishes messages numbered `numbers` with confirms, message `n` at
/// priority `priority(n)`; every third is transient.
async fn publish_prioritised(channel: &Channel, queue: &str, numbers: std::ops::Range<u32>, priority: fn(u32) -> u8) {
    publish_each(channel, queue, numbers, |n| {
        BasicProperties::default()
            .with_delivery_mode(if n % 3 == 0 { 1 } else { 2 })
            .with_priority(priority(n))
    })
    .await;
}

/// Priorities 0 to 4 in turn: 4 is above the queue's maximum and counts as 3.
fn in_turn(n: u32) -> u8 {
    (n % 5) as u8
}

/// The order a queue with levels 0..=3 delivers messages `numbers`
/// published at `in_turn` priorities: highest level first, FIFO within one.
fn by_priority(numbers: std::ops::Range<u32>) -> Vec<String> {
    let mut order: Vec<u32> = numbers.collect();
    order.sort_by_key(|&n| (std::cmp::Reverse(in_turn(n).min(3)), n));
    order.into_iter().map(|n| format!("{n:06}")).collect()
}

async fn a_long_queue_delivers_everything_once_in_order(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let queue = new_queue(&channel, durable, FieldTable::default()).await;
    publish_numbered(&channel, &queue, 0, LONG, 3).await;
    assert_eq!(
        count(&channel, &queue).await,
        LONG,
        "the count includes messages on disk"
    );
    let bodies = consume_and_ack(&queue, LONG).await;
    assert_numbered(&bodies, 0..LONG, "persistent and transient alike, in publish order");
    assert_eq!(count(&channel, &queue).await, 0);
    delete_queue(&queue).await;
}

async fn publishing_while_consuming_keeps_the_order_across_the_window(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let queue = new_queue(&channel, durable, FieldTable::default()).await;
    publish_numbered(&channel, &queue, 0, 6_000, 0).await;
    let first = consume_and_ack(&queue, 3_000).await;
    publish_numbered(&channel, &queue, 6_000, 6_000, 0).await;
    let rest = consume_and_ack(&queue, 9_000).await;
    assert_numbered(&[first, rest].concat(), 0..12_000, "one run, in publish order");
    delete_queue(&queue).await;
}

async fn basic_get_counts_what_is_left_on_disk(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let queue = new_queue(&channel, durable, FieldTable::default()).await;
    publish_numbered(&channel, &queue, 0, LONG, 0).await;
    let message = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .bounded()
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(body(&message.delivery), "000000");
    assert_eq!(message.message_count, LONG - 1);
    delete_queue(&queue).await;
}

async fn a_length_limit_counts_messages_on_disk(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let limit = table(&[("x-max-length", AMQPValue::LongInt(5_000))]);
    let queue = new_queue(&channel, durable, limit).await;
    publish_numbered(&channel, &queue, 0, 8_000, 0).await;
    assert_eq!(count(&channel, &queue).await, 5_000);
    let bodies = consume_and_ack(&queue, 5_000).await;
    assert_numbered(&bodies, 3_000..8_000, "drop-head dropped the oldest 3,000");
    delete_queue(&queue).await;
}

async fn reject_publish_refuses_once_the_queue_on_disk_is_full(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let limit = table(&[
        ("x-max-length", AMQPValue::LongInt(6_000)),
        ("x-overflow", text("reject-publish")),
    ]);
    let queue = new_queue(&channel, durable, limit).await;
    publish_numbered(&channel, &queue, 0, 6_000, 0).await;
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            b"one too many",
            BasicProperties::default().with_delivery_mode(2),
        )
        .bounded()
        .await
        .unwrap()
        .bounded()
        .await
        .unwrap();
    assert!(confirm.is_nack(), "the 6,001st publish is nacked");
    assert_eq!(count(&channel, &queue).await, 6_000);
    delete_queue(&queue).await;
}

async fn messages_on_disk_expire_into_the_dead_letter_queue(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let dead = new_queue(&channel, durable, FieldTable::default()).await;
    let arguments = table(&[
        ("x-message-ttl", AMQPValue::LongInt(200)),
        ("x-dead-letter-exchange", text("")),
        ("x-dead-letter-routing-key", text(&dead)),
    ]);
    let queue = new_queue(&channel, durable, arguments).await;
    publish_numbered(&channel, &queue, 0, 6_000, 0).await;
    let started = std::time::Instant::now();
    while count(&channel, &dead).await < 6_000 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "all 6,000 expire and are dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&channel, &queue).await, 0);
    let bodies = consume_and_ack(&dead, 6_000).await;
    assert_numbered(&bodies, 0..6_000, "dead-lettered in order");
    delete_queue(&queue).await;
    delete_queue(&dead).await;
}

async fn purge_counts_and_removes_messages_on_disk(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let queue = new_queue(&channel, durable, FieldTable::default()).await;
    publish_numbered(&channel, &queue, 0, LONG, 4).await;
    let purged = channel
        .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
        .bounded()
        .await
        .unwrap();
    assert_eq!(purged, LONG);
    assert_eq!(count(&channel, &queue).await, 0);
    publish_numbered(&channel, &queue, LONG, 10, 0).await;
    assert_numbered(
        &drain(&channel, &queue).await,
        LONG..LONG + 10,
        "nothing purged comes back",
    );
    delete_queue(&queue).await;
}

async fn unacked_messages_come_back_first_when_their_channel_closes(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let queue = new_queue(&channel, durable, FieldTable::default()).await;
    publish_numbered(&channel, &queue, 0, LONG, 0).await;
    {
        let connection = connect().await;
        let worker = connection.create_channel().bounded().await.unwrap();
        worker
            .basic_qos(1_000, BasicQosOptions::default())
            .bounded()
            .await
            .unwrap();
        let mut consumer = consume(&worker, &queue, "", false).await;
        for n in 0..1_000 {
            let delivery = next(&mut consumer).await;
            assert_eq!(body(&delivery), format!("{n:06}"));
        }
        connection.close(200, "bye".into()).bounded().await.unwrap();
    }
    let mut consumer = consume(&channel, &queue, "", true).await;
    for n in 0..LONG {
        let delivery = next(&mut consumer).await;
        assert_eq!(body(&delivery), format!("{n:06}"));
        assert_eq!(delivery.redelivered, n < 1_000, "message {n}");
    }
    nothing_more(&mut consumer).await;
    delete_queue(&queue).await;
}

async fn deleting_a_long_queue_reports_every_message(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let queue = new_queue(&channel, durable, FieldTable::default()).await;
    publish_numbered(&channel, &queue, 0, LONG, 0).await;
    let deleted = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .bounded()
        .await
        .unwrap();
    assert_eq!(deleted, LONG);
}

async fn a_long_priority_queue_delivers_the_highest_first_in_order(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let queue = new_queue(&channel, durable, priorities()).await;
    publish_prioritised(&channel, &queue, 0..LONG, in_turn).await;
    assert_eq!(count(&channel, &queue).await, LONG);
    let bodies = consume_and_ack(&queue, LONG).await;
    assert_bodies(&bodies, &by_priority(0..LONG), "highest first, FIFO within a level");
    delete_queue(&queue).await;
}

async fn a_higher_priority_overtakes_a_long_queue(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let queue = new_queue(&channel, durable, priorities()).await;
    publish_prioritised(&channel, &queue, 0..LONG, |_| 0).await;
    publish_prioritised(&channel, &queue, LONG..LONG + 100, |_| 2).await;
    let first = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .bounded()
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(
        body(&first.delivery),
        format!("{LONG:06}"),
        "basic.get takes the highest first"
    );
    assert_eq!(first.message_count, LONG + 99);
    let bodies = consume_and_ack(&queue, LONG + 99).await;
    let expected: Vec<String> = numbered(LONG + 1..LONG + 100)
        .into_iter()
        .chain(numbered(0..LONG))
        .collect();
    assert_bodies(&bodies, &expected, "the later, higher ones first");
    delete_queue(&queue).await;
}

async fn purging_a_priority_queue_leaves_its_unacked_messages(durable: bool) {
    let (_connection, channel) = confirming_channel().await;
    let queue = new_queue(&channel, durable, priorities()).await;
    publish_prioritised(&channel, &queue, 0..LONG, in_turn).await;
    let expected = by_priority(0..LONG);
    let worker = connect().await;
    let worker_channel = worker.create_channel().bounded().await.unwrap();
    worker_channel
        .basic_qos(50, BasicQosOptions::default())
        .bounded()
        .await
        .unwrap();
    let mut consumer = consume(&worker_channel, &queue, "", false).await;
    for held in expected.iter().take(50) {
        assert_eq!(&body(&next(&mut consumer).await), held);
    }
    let purged = channel
        .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
        .bounded()
        .await
        .unwrap();
    assert_eq!(purged, LONG - 50, "every ready message, on disk or not");
    // The unacknowledged ones come back when their channel closes; nothing
    // purged does, and new ones are delivered after them by priority.
    worker.close(200, "bye".into()).bounded().await.unwrap();
    publish_prioritised(&channel, &queue, LONG..LONG + 10, in_turn).await;
    let bodies = consume_and_ack(&queue, 60).await;
    let mut after: Vec<String> = expected[..50].to_vec();
    after.extend(by_priority(LONG..LONG + 10));
    after.sort_by_key(|b| {
        let n: u32 = b.parse().unwrap_or_default();
        (std::cmp::Reverse(in_turn(n).min(3)), n)
    });
    assert_bodies(&bodies, &after, "the held 50 and the 10 new, by priority");
    assert_eq!(count(&channel, &queue).await, 0);
    delete_queue(&queue).await;
}

/// Each case as two tests: `durable::case` and `non_durable::case`.
macro_rules! durable_and_not {
    ($($case:ident),* $(,)?) => {
        mod durable {
            $(#[tokio::test]
            async fn $case() {
                super::$case(true).await
            })*
        }
        mod non_durable {
            $(#[tokio::test]
            async fn $case() {
                super::$case(false).await
            })*
        }
    };
}

durable_and_not!(
    a_long_queue_delivers_everything_once_in_order,
    publishing_while_consuming_keeps_the_order_across_the_window,
    basic_get_counts_what_is_left_on_disk,
    a_length_limit_counts_messages_on_disk,
    reject_publish_refuses_once_the_queue_on_disk_is_full,
    messages_on_disk_expire_into_the_dead_letter_queue,
    purge_counts_and_removes_messages_on_disk,
    unacked_messages_come_back_first_when_their_channel_closes,
    deleting_a_long_queue_reports_every_message,
    a_long_priority_queue_delivers_the_highest_first_in_order,
    a_higher_priority_overtakes_a_long_queue,
    purging_a_priority_queue_leaves_its_unacked_messages,
);
