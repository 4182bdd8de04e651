//! Durability across restarts of the real `warren` process: a graceful
//! stop (SIGTERM) and a crash (SIGKILL) on the same data directory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

mod common;
use common::Warren;

async fn channel(warren: &Warren) -> (Connection, Channel) {
    let connection = Connection::connect(&warren.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// Returns once everything this connection did so far is on disk: a
/// persistent publish on a channel of the same connection is confirmed only
/// after a sync, and that sync (or an earlier one) covers what the broker
/// did before it (acks, delivery marks, requeues): frames of one
/// connection are handled in order. No waiting on the clock.
async fn synced(connection: &Connection) {
    let ch = connection.create_channel().await.unwrap();
    ch.queue_declare("sync-barrier".into(), durable(), FieldTable::default())
        .await
        .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    publish(&ch, "", "sync-barrier", b"barrier", persistent()).await;
    ch.wait_for_confirms().await.unwrap();
    ch.close(200, "synced".into()).await.unwrap();
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

async fn publish(channel: &Channel, exchange: &str, key: &str, body: &[u8], properties: BasicProperties) {
    channel
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .unwrap();
}

async fn drain(channel: &Channel, queue: &str) -> Vec<(Vec<u8>, bool)> {
    let mut got = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        got.push((message.delivery.data.clone(), message.delivery.redelivered));
    }
    got
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn graceful_restart_keeps_what_rabbitmq_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    {
        let (connection, ch) = channel(&warren).await;
        let args = FieldTable::default();
        let exchange_options = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.exchange_declare("d.x".into(), lapin::ExchangeKind::Topic, exchange_options, args.clone())
            .await
            .unwrap();
        ch.exchange_declare(
            "t.x".into(),
            lapin::ExchangeKind::Fanout,
            Default::default(),
            args.clone(),
        )
        .await
        .unwrap();
        ch.queue_declare("d.q".into(), durable(), args.clone()).await.unwrap();
        ch.queue_declare("t.q".into(), Default::default(), args.clone())
            .await
            .unwrap();
        ch.queue_bind(
            "d.q".into(),
            "d.x".into(),
            "a.*".into(),
            Default::default(),
            args.clone(),
        )
        .await
        .unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        publish(&ch, "d.x", "a.b", b"persistent", persistent()).await;
        publish(&ch, "d.x", "a.b", b"transient", BasicProperties::default()).await;
        publish(&ch, "", "t.q", b"in a transient queue", persistent()).await;
        ch.wait_for_confirms().await.unwrap();
        connection.close(200, "bye".into()).await.unwrap();
    }
    warren.stop();

    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.exchange_declare("d.x".into(), lapin::ExchangeKind::Topic, passive, FieldTable::default())
        .await
        .expect("durable exchange survives");
    // The binding survived too: a new publish through it arrives.
    publish(&ch, "d.x", "a.c", b"after restart", BasicProperties::default()).await;
    let got = drain(&ch, "d.q").await;
    let bodies: Vec<&[u8]> = got.iter().map(|(b, _)| b.as_slice()).collect();
    assert_eq!(
        bodies,
        vec![&b"persistent"[..], b"after restart"],
        "only the persistent message survives"
    );
    let (_c2, ch2) = channel(&warren).await;
    let missing = ch2
        .queue_declare(
            "t.q".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert!(missing.is_err(), "a non-durable queue does not survive");
    let ch3 = _connection.create_channel().await.unwrap();
    let missing = ch3
        .exchange_declare(
            "t.x".into(),
            lapin::ExchangeKind::Fanout,
            passive,
            FieldTable::default(),
        )
        .await;
    assert!(missing.is_err(), "a non-durable exchange does not survive");
}

#[tokio::test]
async fn confirmed_messages_survive_a_crash_and_unacked_come_back_redelivered() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    {
        let (_connection, ch) = channel(&warren).await;
        ch.queue_declare("work".into(), durable(), FieldTable::default())
            .await
            .unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        for i in 0..200u32 {
            publish(&ch, "", "work", &i.to_be_bytes(), persistent()).await;
        }
        ch.wait_for_confirms().await.unwrap();
        // Take the first message without acking it; ack the second.
        let first = ch.basic_get("work".into(), Default::default()).await.unwrap().unwrap();
        assert!(!first.delivery.redelivered);
        let second = ch.basic_get("work".into(), Default::default()).await.unwrap().unwrap();
        second.delivery.ack(Default::default()).await.unwrap();
        // The ack and the delivery mark are not confirmed operations: wait
        // until a sync has covered them.
        synced(&_connection).await;
    }
    warren.crash();

    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    let got = drain(&ch, "work").await;
    assert_eq!(
        got.len(),
        199,
        "every confirmed, unacked message is there, the acked one is not"
    );
    assert_eq!(
        got[0],
        (0u32.to_be_bytes().to_vec(), true),
        "the delivered one comes back redelivered, first"
    );
    assert!(got[1..].iter().all(|(_, redelivered)| !redelivered));
    let order: Vec<u32> = got
        .iter()
        .map(|(b, _)| u32::from_be_bytes(b[..4].try_into().unwrap()))
        .collect();
    let expected: Vec<u32> = std::iter::once(0).chain(2..200).collect();
    assert_eq!(order, expected, "in their original order");
}

/// Publishes ids with confirms until the broker goes away; returns the ids
/// the broker confirmed.
async fn publish_until_gone(ch: Channel, first_id: u64) -> Vec<u64> {
    let mut confirmed = Vec::new();
    let mut id = first_id;
    'outer: loop {
        let mut pending = Vec::new();
        for _ in 0..25 {
            let body = id.to_be_bytes();
            let sent = ch.basic_publish(
                "".into(),
                "crash".into(),
                BasicPublishOptions::default(),
                &body,
                persistent(),
            );
            match tokio::time::timeout(Duration::from_secs(2), sent).await {
                Ok(Ok(confirm)) => pending.push((id, confirm)),
                _ => break 'outer,
            }
            id += 1;
        }
        for (id, confirm) in pending {
            // A confirm that never comes (the broker died) is not a confirm.
            match tokio::time::timeout(Duration::from_secs(2), confirm).await {
                Ok(Ok(c)) if c.is_ack() => confirmed.push(id),
                Ok(Ok(_)) => {}
                _ => break 'outer,
            }
        }
    }
    confirmed
}

/// Consumes and acks until the broker goes away; returns the acked ids.
async fn consume_until_gone(ch: Channel) -> Vec<u64> {
    use futures::StreamExt;
    let mut acked = Vec::new();
    let Ok(mut consumer) = ch
        .basic_consume("crash".into(), "".into(), Default::default(), FieldTable::default())
        .await
    else {
        return acked;
    };
    while let Ok(Some(Ok(delivery))) = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await {
        let id = u64::from_be_bytes(delivery.data[..8].try_into().unwrap());
        match tokio::time::timeout(Duration::from_secs(2), delivery.ack(Default::default())).await {
            Ok(Ok(_)) => acked.push(id),
            _ => break,
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sigkill_under_load_loses_no_confirmed_message() {
    use std::collections::HashSet;
    let dir = tempfile::tempdir().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut confirmed = HashSet::new();
    let mut acked = HashSet::new();
    let mut next_id = 0u64;
    for round in 0..4 {
        let warren = Warren::start(dir.path());
        let (publisher_connection, publisher) = channel(&warren).await;
        publisher
            .queue_declare("crash".into(), durable(), FieldTable::default())
            .await
            .unwrap();
        publisher.confirm_select(Default::default()).await.unwrap();
        let (consumer_connection, consumer) = channel(&warren).await;
        consumer.basic_qos(50, Default::default()).await.unwrap();
        let publishing = tokio::spawn(publish_until_gone(publisher, next_id));
        let consuming = tokio::spawn(consume_until_gone(consumer));
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let run_for = Duration::from_millis(150 + (seed >> 33) % 500);
        tokio::time::sleep(run_for).await;
        warren.crash();
        let round_confirmed = publishing.await.unwrap();
        let round_acked = consuming.await.unwrap();
        drop((publisher_connection, consumer_connection));
        assert!(
            !round_confirmed.is_empty(),
            "round {round}: nothing was confirmed in {run_for:?}"
        );
        next_id += 1_000_000;
        confirmed.extend(round_confirmed);
        acked.extend(round_acked);
    }
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    let present: HashSet<u64> = drain(&ch, "crash")
        .await
        .iter()
        .map(|(b, _)| u64::from_be_bytes(b[..8].try_into().unwrap()))
        .collect();
    let lost: Vec<&u64> = confirmed
        .iter()
        .filter(|id| !acked.contains(id) && !present.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} confirmed, unacked messages lost after 4 crashes (of {} confirmed, {} acked): {:?}",
        lost.len(),
        confirmed.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
    eprintln!(
        "4 crashes: {} confirmed, {} acked, {} still queued, none lost",
        confirmed.len(),
        acked.len(),
        present.len()
    );
    warren.stop();
}

/// Publishes `count` numbered messages to `queue` with confirms; every
/// fourth is transient.
async fn publish_numbered(ch: &Channel, queue: &str, count: u32) {
    let mut confirms = Vec::new();
    for n in 0..count {
        let properties = if n % 4 == 3 {
            BasicProperties::default()
        } else {
            persistent()
        };
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &n.to_be_bytes(),
                properties,
            )
            .await
            .unwrap();
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(confirm.await.unwrap().is_ack());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_longer_than_memory_survives_a_crash_without_its_transient_messages() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    {
        let (_connection, ch) = channel(&warren).await;
        ch.queue_declare("long".into(), durable(), FieldTable::default())
            .await
            .unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        // 10,000 messages: most of them beyond the in-memory window, on disk
        // only, transient ones included (they were written only to page).
        publish_numbered(&ch, "long", 10_000).await;
        // Deliver the first 100 without acking them.
        ch.basic_qos(100, Default::default()).await.unwrap();
        let mut consumer = ch
            .basic_consume("long".into(), "".into(), Default::default(), FieldTable::default())
            .await
            .unwrap();
        for _ in 0..100 {
            consumer.next().await.unwrap().unwrap();
        }
        synced(&_connection).await;
    }
    warren.crash();

    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    let got = drain(&ch, "long").await;
    let numbers: Vec<u32> = got
        .iter()
        .map(|(b, _)| u32::from_be_bytes(b[..4].try_into().unwrap()))
        .collect();
    let expected: Vec<u32> = (0..10_000).filter(|n| n % 4 != 3).collect();
    assert_eq!(
        numbers.len(),
        expected.len(),
        "every persistent message, no transient one"
    );
    assert!(numbers == expected, "in publish order");
    // The first 100 deliveries were 100 messages of both kinds; the
    // persistent among them come back redelivered, the rest do not.
    let redelivered = got.iter().take_while(|(_, r)| *r).count();
    assert_eq!(redelivered, 75, "the 75 persistent messages delivered before the crash");
    assert!(got[75..].iter().all(|(_, r)| !r));
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    let meta = e.metadata().unwrap();
                    if meta.is_dir() {
                        dir_size(&e.path())
                    } else {
                        meta.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_space_comes_back_while_running_despite_an_old_unacked_message() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    for queue in ["old", "churn"] {
        ch.queue_declare(queue.into(), durable(), FieldTable::default())
            .await
            .unwrap();
    }
    ch.confirm_select(Default::default()).await.unwrap();
    // One message that stays unacknowledged the whole time, at the head of
    // its queue, written before everything else.
    publish(&ch, "", "old", b"old message", persistent()).await;
    ch.wait_for_confirms().await.unwrap();
    let holder = _connection.create_channel().await.unwrap();
    let mut held = holder
        .basic_consume("old".into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    held.next().await.unwrap().unwrap();

    // 80 MB of persistent messages through another queue, acked.
    let body = vec![7u8; 4096];
    let consumer_channel = _connection.create_channel().await.unwrap();
    consumer_channel.basic_qos(500, Default::default()).await.unwrap();
    let mut consumer = consumer_channel
        .basic_consume("churn".into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    let total = 20_000;
    let consuming = tokio::spawn(async move {
        for _ in 0..total {
            let delivery = consumer.next().await.unwrap().unwrap();
            delivery.ack(Default::default()).await.unwrap();
        }
    });
    let mut peak = 0;
    for chunk in 0..total / 1000 {
        let mut confirms = Vec::new();
        for _ in 0..1000 {
            let confirm = ch
                .basic_publish(
                    "".into(),
                    "churn".into(),
                    BasicPublishOptions::default(),
                    &body,
                    persistent(),
                )
                .await
                .unwrap();
            confirms.push(confirm);
        }
        for confirm in confirms {
            assert!(confirm.await.unwrap().is_ack());
        }
        if chunk % 5 == 0 {
            peak = peak.max(dir_size(&dir.path().join("messages")));
        }
    }
    consuming.await.unwrap();
    // Acked bodies go at the next sync; the segment the old message is in
    // is compacted once it has been idle for a few seconds.
    let started = Instant::now();
    let mut size = dir_size(&dir.path().join("messages"));
    while size > 9 * 1024 * 1024 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        size = dir_size(&dir.path().join("messages"));
    }
    eprintln!("message files: {peak} bytes at most while running, {size} bytes after");
    assert!(
        peak > 8 * 1024 * 1024,
        "the churn filled more than one segment ({peak} bytes)"
    );
    assert!(
        size <= 9 * 1024 * 1024,
        "the message files shrink back to about one segment ({size} bytes)"
    );
    // The old message is still there, and still there after a crash.
    drop(held);
    holder.close(200, "bye".into()).await.unwrap();
    // A sync after now covers the churn's acks (made on this connection).
    synced(&_connection).await;
    warren.crash();
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    let got = drain(&ch, "old").await;
    assert_eq!(got, vec![(b"old message".to_vec(), true)]);
    assert!(drain(&ch, "churn").await.is_empty());
}

#[tokio::test]
async fn properties_headers_and_positions_survive_a_restart_exclusive_queues_do_not() {
    use lapin::types::{AMQPValue, ShortString};
    let mut headers = FieldTable::default();
    headers.insert("count".into(), AMQPValue::LongLongInt(-42));
    headers.insert("name".into(), AMQPValue::LongString("warren".into()));
    let mut nested = FieldTable::default();
    nested.insert("ok".into(), AMQPValue::Boolean(true));
    headers.insert("nested".into(), AMQPValue::FieldTable(nested));
    let properties = persistent()
        .with_content_type(ShortString::from("application/json"))
        .with_content_encoding(ShortString::from("gzip"))
        .with_headers(headers)
        .with_priority(5)
        .with_correlation_id(ShortString::from("corr-1"))
        .with_reply_to(ShortString::from("replies"))
        .with_expiration(ShortString::from("600000"))
        .with_message_id(ShortString::from("m-1"))
        .with_timestamp(1_700_000_000)
        .with_type(ShortString::from("order.created"))
        .with_user_id(ShortString::from("guest"))
        .with_app_id(ShortString::from("tests"));
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    {
        let (connection, ch) = channel(&warren).await;
        ch.queue_declare("props".into(), durable(), FieldTable::default())
            .await
            .unwrap();
        let exclusive = QueueDeclareOptions {
            durable: true,
            exclusive: true,
            ..Default::default()
        };
        ch.queue_declare("mine".into(), exclusive, FieldTable::default())
            .await
            .unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        for n in 0..3u8 {
            publish(&ch, "", "props", &[n], properties.clone()).await;
        }
        publish(&ch, "", "mine", b"exclusive", persistent()).await;
        ch.wait_for_confirms().await.unwrap();
        // Deliver the first without acking it, then leave.
        let first = ch.basic_get("props".into(), Default::default()).await.unwrap().unwrap();
        assert!(!first.delivery.redelivered);
        synced(&connection).await;
        connection.close(200, "bye".into()).await.unwrap();
    }
    warren.stop();
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    let mut got = Vec::new();
    while let Some(message) = ch
        .basic_get("props".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        got.push(message.delivery);
    }
    let bodies: Vec<u8> = got.iter().map(|d| d.data[0]).collect();
    assert_eq!(bodies, vec![0, 1, 2], "in their original positions");
    assert_eq!(
        got.iter().map(|d| d.redelivered).collect::<Vec<_>>(),
        vec![true, false, false],
        "the one delivered before the restart comes back redelivered"
    );
    for delivery in &got {
        assert_eq!(
            delivery.properties, properties,
            "every property and header as published"
        );
    }
    let missing = ch
        .queue_declare(
            "mine".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert!(missing.is_err(), "an exclusive queue, even durable, does not survive");
}

#[tokio::test]
async fn ttls_keep_running_across_a_restart_and_quorum_delivery_counts_are_kept() {
    use lapin::types::{AMQPValue, ShortString};
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let mut quorum = FieldTable::default();
    quorum.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    {
        let (_connection, ch) = channel(&warren).await;
        ch.queue_declare("ttl".into(), durable(), FieldTable::default())
            .await
            .unwrap();
        ch.queue_declare("quorum".into(), durable(), quorum.clone())
            .await
            .unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        let short = persistent().with_expiration(ShortString::from("1000"));
        let long = persistent().with_expiration(ShortString::from("600000"));
        publish(&ch, "", "ttl", b"short", short).await;
        publish(&ch, "", "ttl", b"long", long).await;
        publish(&ch, "", "quorum", b"counted", persistent()).await;
        ch.wait_for_confirms().await.unwrap();
        for _ in 0..2 {
            let got = ch
                .basic_get("quorum".into(), Default::default())
                .await
                .unwrap()
                .unwrap();
            got.delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        synced(&_connection).await;
    }
    warren.stop();
    // The short TTL runs out while the broker is down.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    let bodies: Vec<Vec<u8>> = drain(&ch, "ttl").await.into_iter().map(|(b, _)| b).collect();
    assert_eq!(
        bodies,
        vec![b"long".to_vec()],
        "the expiry is a point in time, not reset by a restart"
    );
    ch.queue_declare("quorum".into(), durable(), quorum).await.unwrap();
    let got = ch
        .basic_get("quorum".into(), Default::default())
        .await
        .unwrap()
        .unwrap();
    let count = got
        .delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count").cloned());
    assert_eq!(count, Some(AMQPValue::LongLongInt(2)), "two returns before the restart");
}

#[tokio::test]
async fn messages_taken_with_no_ack_do_not_come_back_after_a_restart() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    {
        let (_connection, ch) = channel(&warren).await;
        ch.queue_declare("auto".into(), durable(), FieldTable::default())
            .await
            .unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        for n in 0..10u8 {
            publish(&ch, "", "auto", &[n], persistent()).await;
        }
        ch.wait_for_confirms().await.unwrap();
        for _ in 0..4 {
            let got = ch
                .basic_get("auto".into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap();
            assert!(got.is_some());
        }
        let options = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        let mut consumer = ch
            .basic_consume("auto".into(), "".into(), options, FieldTable::default())
            .await
            .unwrap();
        for _ in 4..10 {
            consumer.next().await.unwrap().unwrap();
        }
    }
    warren.stop();
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    assert_eq!(
        drain(&ch, "auto").await,
        vec![],
        "basic.get and consumers with no-ack took them for good"
    );
}

#[tokio::test]
async fn a_body_routed_to_several_durable_queues_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let queues = ["fan-0", "fan-1", "fan-2", "fan-3", "fan-4"];
    {
        let (_connection, ch) = channel(&warren).await;
        let exchange_options = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.exchange_declare(
            "fan".into(),
            lapin::ExchangeKind::Fanout,
            exchange_options,
            FieldTable::default(),
        )
        .await
        .unwrap();
        for queue in queues {
            ch.queue_declare(queue.into(), durable(), FieldTable::default())
                .await
                .unwrap();
            ch.queue_bind(
                queue.into(),
                "fan".into(),
                "".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        ch.confirm_select(Default::default()).await.unwrap();
        for n in 0..8u8 {
            publish(&ch, "fan", "", &vec![n; 1 << 20], persistent()).await;
        }
        ch.wait_for_confirms().await.unwrap();
    }
    let stored = dir_size(&dir.path().join("messages"));
    assert!(
        (8 << 20..10 << 20).contains(&stored),
        "8 MiB of bodies in 5 queues take 8 MiB, not 40: {stored} bytes"
    );
    warren.stop();
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    for queue in &queues[..4] {
        let got = drain(&ch, queue).await;
        assert_eq!(got.len(), 8, "{queue} has every message after a restart");
        assert!(got
            .iter()
            .enumerate()
            .all(|(n, (b, _))| b.len() == 1 << 20 && b[0] == n as u8));
    }
    // The bodies stay while one queue still holds them (after a sync that
    // would have freed them otherwise), and go with it.
    synced(&_connection).await;
    assert!(dir_size(&dir.path().join("messages")) >= 8 << 20);
    assert_eq!(drain(&ch, "fan-4").await.len(), 8);
    let started = Instant::now();
    while dir_size(&dir.path().join("messages")) > 1 << 20 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the bodies' space comes back once the last queue acked them: {:?}",
            std::fs::read_dir(dir.path().join("messages"))
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (e.file_name(), e.metadata().unwrap().len())
                })
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A tmpfs of a few MiB for a data directory, unmounted on drop: a disk
/// that really fills up.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    /// None where this machine does not let the test mount one (not root).
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Publishes 64 KiB persistent messages numbered from `*next` in batches,
/// until `nacks_wanted` were nacked or `limit` were sent; returns the acked.
async fn publish_until_nacked(ch: &Channel, next: &mut u32, limit: u32, nacks_wanted: usize) -> (Vec<u32>, usize) {
    let mut body = vec![0u8; 64 * 1024];
    let (mut acked, mut nacked) = (Vec::new(), 0);
    while nacked < nacks_wanted && *next < limit {
        let mut batch = Vec::new();
        for _ in 0..16 {
            body[..4].copy_from_slice(&next.to_be_bytes());
            let confirm = ch
                .basic_publish(
                    "".into(),
                    "full".into(),
                    BasicPublishOptions::default(),
                    &body,
                    persistent(),
                )
                .await
                .unwrap();
            batch.push((*next, confirm));
            *next += 1;
        }
        for (n, confirm) in batch {
            let confirmation = tokio::time::timeout(Duration::from_secs(10), confirm)
                .await
                .expect("every publish is confirmed or nacked, none left hanging")
                .unwrap();
            if confirmation.is_ack() {
                acked.push(n);
            } else {
                nacked += 1;
            }
        }
    }
    (acked, nacked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_nacks_publishes_serves_consumers_and_loses_nothing_confirmed() {
    use futures::StreamExt;
    let Some(disk) = SmallDisk::mount("40m") else {
        eprintln!("skipped: this test needs to mount a tmpfs (run as root)");
        return;
    };
    let data = disk.0.path().join("data");
    // No disk alarm: the writes themselves must fail, and be handled.
    let mut warren = Warren::start_with(&data, &["--disk-free-limit", "0"]);
    let (_connection, ch) = channel(&warren).await;
    ch.queue_declare("full".into(), durable(), FieldTable::default())
        .await
        .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let mut next = 0;
    let (mut confirmed, nacked) = publish_until_nacked(&ch, &mut next, 2_000, 32).await;
    assert!(nacked >= 32, "a full disk nacks publishes ({nacked} nacked of {next})");
    assert!(
        confirmed.len() > 100,
        "{} confirmed before the disk filled",
        confirmed.len()
    );
    assert!(warren.is_running(), "the broker survives the full disk");

    // Consumers are still served, in order, and their acks free space.
    let consumer_channel = _connection.create_channel().await.unwrap();
    consumer_channel.basic_qos(50, Default::default()).await.unwrap();
    let mut consumer = consumer_channel
        .basic_consume("full".into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    let mut consumed = Vec::new();
    for _ in 0..300.min(confirmed.len()) {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a consumer is served while the disk is full")
            .unwrap()
            .unwrap();
        consumed.push(u32::from_be_bytes(delivery.data[..4].try_into().unwrap()));
        delivery.ack(Default::default()).await.unwrap();
    }
    assert_eq!(
        consumed,
        confirmed[..consumed.len()].to_vec(),
        "confirmed messages, in order"
    );
    consumer_channel.close(200, "bye".into()).await.unwrap();

    // With space freed, publishes are confirmed again.
    let started = Instant::now();
    let mut recovered = false;
    while !recovered && started.elapsed() < Duration::from_secs(15) {
        let limit = next + 16;
        let (acked, _) = publish_until_nacked(&ch, &mut next, limit, usize::MAX).await;
        recovered = !acked.is_empty();
        confirmed.extend(acked);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "publishes are confirmed again once consumers freed space");

    // Every confirmed message not consumed survives a crash.
    warren.crash();
    let warren = Warren::start_with(&data, &["--disk-free-limit", "0"]);
    let (_connection, ch) = channel(&warren).await;
    let left: Vec<u32> = drain(&ch, "full")
        .await
        .iter()
        .map(|(b, _)| u32::from_be_bytes(b[..4].try_into().unwrap()))
        .collect();
    let expected: Vec<u32> = confirmed[consumed.len()..].to_vec();
    let lost: Vec<&u32> = expected.iter().filter(|n| !left.contains(n)).collect();
    assert!(
        lost.is_empty(),
        "{} confirmed messages lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    eprintln!(
        "full disk: {} confirmed, {nacked} nacked before consumers freed space; {} consumed; {} left after the crash",
        confirmed.len(),
        consumed.len(),
        left.len()
    );
    drop(warren);
    drop(disk);
}

/// Opens an AMQP connection by hand, so the test sees exactly which frames
/// the broker sends (a client library may race its own socket handling).
async fn raw_open(port: u16) -> (tokio::net::TcpStream, bytes::BytesMut) {
    use tokio::io::AsyncWriteExt;
    use warren_protocol::*;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    socket.write_all(PROTOCOL_HEADER).await.unwrap();
    raw_method(&mut socket, &mut buf).await;
    let start_ok = ConnectionStartOk {
        mechanism: "PLAIN".into(),
        response: bytes::Bytes::from_static(b"\0guest\0guest"),
        locale: "en_US".into(),
        ..Default::default()
    };
    for method in [
        Method::from(start_ok),
        ConnectionTuneOk {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 0,
        }
        .into(),
        ConnectionOpen {
            virtual_host: "/".into(),
            ..Default::default()
        }
        .into(),
    ] {
        let mut out = bytes::BytesMut::new();
        encode_method(&mut out, 0, &method);
        socket.write_all(&out).await.unwrap();
        if matches!(method, Method::ConnectionStartOk(_) | Method::ConnectionOpen(_)) {
            raw_method(&mut socket, &mut buf).await;
        }
    }
    (socket, buf)
}

async fn raw_method(socket: &mut tokio::net::TcpStream, buf: &mut bytes::BytesMut) -> Option<warren_protocol::Method> {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(warren_protocol::Frame::Method(_, m)) = warren_protocol::decode_frame(buf, 0).unwrap() {
            return Some(m);
        }
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read_buf(buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            return None;
        }
    }
}

#[tokio::test]
async fn sigterm_closes_connections_with_320_and_exits() {
    use tokio::io::AsyncWriteExt;
    use warren_protocol::*;
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let (mut socket, mut buf) = raw_open(warren.port()).await;
    let started = Instant::now();
    warren.stop_async();
    let close = raw_method(&mut socket, &mut buf).await;
    match close {
        Some(Method::ConnectionClose(c)) => {
            assert_eq!(c.reply_code, 320);
            assert_eq!(
                c.reply_text.as_str(),
                "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
            );
        }
        other => panic!("expected connection.close 320, got {other:?}"),
    }
    let mut out = bytes::BytesMut::new();
    encode_method(&mut out, 0, &ConnectionCloseOk {}.into());
    socket.write_all(&out).await.unwrap();
    assert!(
        raw_method(&mut socket, &mut buf).await.is_none(),
        "then the socket is closed"
    );
    warren.wait_exit();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "graceful shutdown is prompt"
    );
}
