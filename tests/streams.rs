//! Streams in the real `warren` process: retention gives disk space back
//! while it runs, and after a crash (SIGKILL) and a restart the log is
//! there from the offset retention kept, consumers resume from any offset
//! or time, and new messages continue the offsets.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

mod common;
use common::Warren;

const MESSAGES: u64 = 30_000;

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(meta) if meta.is_dir() => dir_size(&e.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn channel(warren: &Warren) -> (Connection, Channel) {
    let connection = Connection::connect(&warren.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

async fn declare(ch: &Channel) {
    ch.queue_declare(
        "log".into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        table(&[
            ("x-queue-type", AMQPValue::LongString("stream".into())),
            ("x-max-length-bytes", AMQPValue::LongLongInt(4_000_000)),
            ("x-stream-max-segment-size-bytes", AMQPValue::LongLongInt(1_000_000)),
        ]),
    )
    .await
    .unwrap();
}

/// A delivery's `x-stream-offset` header, if it has one.
fn stream_offset(delivery: &lapin::message::Delivery) -> Option<u64> {
    match delivery.properties.headers().as_ref()?.inner().get("x-stream-offset") {
        Some(AMQPValue::LongLongInt(n)) => Some(*n as u64),
        _ => None,
    }
}

/// Reads `want` messages from `offset`; returns their x-stream-offset
/// headers and bodies' first bytes.
async fn read(ch: &Channel, offset: AMQPValue, want: usize) -> Vec<(u64, u64)> {
    ch.basic_qos(500, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            "log".into(),
            "".into(),
            BasicConsumeOptions::default(),
            table(&[("x-stream-offset", offset)]),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < want {
        let Ok(Some(Ok(delivery))) = tokio::time::timeout(Duration::from_secs(20), consumer.next()).await else {
            break;
        };
        let offset = stream_offset(&delivery).expect("an x-stream-offset header");
        let number = u64::from_be_bytes(delivery.data[..8].try_into().unwrap());
        got.push((offset, number));
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    ch.basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_frees_disk_and_a_crashed_stream_resumes_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    declare(&ch).await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let mut confirms = Vec::new();
    for n in 0..MESSAGES {
        let mut body = n.to_be_bytes().to_vec();
        body.resize(1024, b'x');
        confirms.push(
            ch.basic_publish(
                "".into(),
                "log".into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap(),
        );
    }
    for confirm in confirms {
        assert!(confirm.await.unwrap().is_ack());
    }
    // About 30 MB were written; retention keeps about 4 MB (whole 1 MB
    // segments), and the store gives the rest back while running.
    let deadline = Instant::now() + Duration::from_secs(60);
    while dir_size(dir.path()) > 15_000_000 {
        assert!(
            Instant::now() < deadline,
            "disk space not given back: {} bytes",
            dir_size(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = read(&ch, AMQPValue::LongString("first".into()), MESSAGES as usize).await;
    let first = before[0].0;
    assert!(first > 0, "retention dropped the oldest");
    assert!(before.len() < 6_000 && before.len() > 3_000, "{} kept", before.len());
    assert_eq!(before.last().unwrap().0, MESSAGES - 1);
    assert!(
        before.iter().all(|(offset, n)| offset == n),
        "offsets are the publish order"
    );

    warren.crash();
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    declare(&ch).await;
    let after = read(&ch, AMQPValue::LongString("first".into()), before.len()).await;
    assert_eq!(after, before, "the same log after the crash");
    let from_offset = read(&ch, AMQPValue::LongLongInt(MESSAGES as i64 - 10), 10).await;
    assert_eq!(from_offset.first().map(|m| m.0), Some(MESSAGES - 10));
    // The append times survived: a minute ago reaches the start.
    let minute = read(&ch, AMQPValue::LongString("1m".into()), before.len()).await;
    assert_eq!(minute.first().map(|m| m.0), Some(first));
    // New messages continue the offsets.
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let mut body = MESSAGES.to_be_bytes().to_vec();
    body.resize(16, 0);
    ch.basic_publish(
        "".into(),
        "log".into(),
        BasicPublishOptions::default(),
        &body,
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let last = read(&ch, AMQPValue::LongString("last".into()), 1).await;
    assert_eq!(last, vec![(MESSAGES, MESSAGES)]);
    warren.stop();
}

/// Declares a durable stream without retention limits.
async fn declare_stream(ch: &Channel, name: &str) {
    let stream = table(&[("x-queue-type", AMQPValue::LongString("stream".into()))]);
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(name.into(), durable, stream).await.unwrap();
}

/// Consumes up to `want` from "tracked" with `arguments`; returns the
/// offsets, and cancels (which saves a tracked consumer's offset).
async fn take(ch: &Channel, tag: &str, arguments: FieldTable, want: usize) -> Vec<u64> {
    ch.basic_qos(100, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume("tracked".into(), tag.into(), BasicConsumeOptions::default(), arguments)
        .await
        .unwrap();
    let mut offsets = Vec::new();
    while offsets.len() < want {
        let Ok(Some(Ok(delivery))) = tokio::time::timeout(Duration::from_millis(1500), consumer.next()).await else {
            break;
        };
        if let Some(offset) = stream_offset(&delivery) {
            offsets.push(offset);
        }
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    ch.basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    offsets
}

/// Beyond RabbitMQ 3.10: filtering by a value publishers tag messages
/// with, and the stream remembering a consumer tag's offset across
/// resubscriptions and a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_server_side_offset_tracking() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    declare_stream(&ch, "tracked").await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    for n in 0..110u32 {
        let mut properties = BasicProperties::default();
        if n < 100 {
            let region = if n % 2 == 0 { "eu" } else { "us" };
            properties = properties.with_headers(table(&[(
                "x-stream-filter-value",
                AMQPValue::LongString(region.into()),
            )]));
        }
        ch.basic_publish(
            "".into(),
            "tracked".into(),
            BasicPublishOptions::default(),
            b"m",
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let first = ("x-stream-offset", AMQPValue::LongString("first".into()));
    let eu = ("x-stream-filter", AMQPValue::LongString("eu".into()));
    let eu_only = take(&ch, "", table(&[first.clone(), eu.clone()]), 110).await;
    assert_eq!(eu_only.len(), 50);
    assert!(eu_only.iter().all(|o| o % 2 == 0));
    let with_untagged = take(
        &ch,
        "",
        table(&[
            first.clone(),
            eu.clone(),
            ("x-stream-match-unfiltered", AMQPValue::Boolean(true)),
        ]),
        110,
    )
    .await;
    assert_eq!(with_untagged.len(), 60);

    let tracked = ("x-stream-automatic-offset-tracking", AMQPValue::Boolean(true));
    let args = table(&[first.clone(), tracked.clone()]);
    assert_eq!(
        take(&ch, "billing", args.clone(), 40).await,
        (0..40).collect::<Vec<_>>()
    );
    let again = take(&ch, "billing", args.clone(), 20).await;
    assert_eq!(again, (40..60).collect::<Vec<_>>(), "resumed after its last ack");
    // Another tag is tracked apart.
    assert_eq!(take(&ch, "audit", args.clone(), 5).await, (0..5).collect::<Vec<_>>());

    warren.stop();
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    declare_stream(&ch, "tracked").await;
    let after_restart = take(&ch, "billing", args.clone(), 10).await;
    assert_eq!(after_restart, (60..70).collect::<Vec<_>>(), "resumed after a restart");
    warren.stop();
}

/// The next delivery's x-stream-offset and delivery tag, within 5 s.
async fn next_offset(consumer: &mut lapin::Consumer) -> Option<(u64, u64)> {
    let Ok(Some(Ok(delivery))) = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await else {
        return None;
    };
    let offset = stream_offset(&delivery).expect("an x-stream-offset header");
    Some((offset, delivery.delivery_tag))
}

/// A consumer replaying from disk is sent batches once half its prefetch
/// window is free; one that acks less than half and holds the rest (waiting
/// for more before it acks again) is still sent what its window takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_holding_most_of_its_window_still_gets_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let (_connection, ch) = channel(&warren).await;
    declare_stream(&ch, "held").await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    // More than a stream keeps in memory: the first are read back from disk.
    for n in 0..6_000u64 {
        ch.basic_publish(
            "".into(),
            "held".into(),
            BasicPublishOptions::default(),
            &n.to_be_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap();
    }
    assert!(ch.wait_for_confirms().await.unwrap().is_empty(), "all confirmed");

    ch.basic_qos(10, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            "held".into(),
            "".into(),
            BasicConsumeOptions::default(),
            table(&[("x-stream-offset", AMQPValue::LongString("first".into()))]),
        )
        .await
        .unwrap();
    let mut received = Vec::new();
    for _ in 0..10 {
        received.push(next_offset(&mut consumer).await.expect("the first window"));
    }
    // Four of ten acked, six held: the four free places are filled.
    ch.basic_ack(received[3].1, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    for _ in 0..4 {
        received.push(
            next_offset(&mut consumer)
                .await
                .expect("the four acked places refilled"),
        );
    }
    // All acked: a whole window more.
    ch.basic_ack(received[13].1, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    for _ in 0..10 {
        received.push(next_offset(&mut consumer).await.expect("the next window"));
    }
    let offsets: Vec<u64> = received.iter().map(|(offset, _)| *offset).collect();
    assert_eq!(offsets, (0..24).collect::<Vec<_>>());
    warren.stop();
}
