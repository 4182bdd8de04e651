//! The memory alarm of the real process: above `--memory-high-watermark`
//! publishing connections get `connection.blocked` ("low on memory") and
//! are not read, consumers keep being served, the alarm clears once they
//! acknowledge what they hold, and the publisher resumes with nothing it had confirmed
//! lost. A consumer whose socket stalls holds a bounded amount of the
//! broker's memory, and the queue goes on serving its other consumers. A
//! non-durable queue far longer than memory keeps its tail on disk, and
//! none of it outlives a restart; so does a priority queue, which keeps
//! its order across a kill -9.
//! The process's resident memory is sampled throughout.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::proxy::PausableProxy;
use common::{passive_declare, Warren};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Event};

const MIB: u64 = 1 << 20;

async fn connect(warren: &Warren) -> Connection {
    Connection::connect(&warren.url(), ConnectionProperties::default())
        .await
        .expect("connect")
}

/// Waits (up to `within`) for the next blocked/unblocked event.
async fn next_block_event(events: &mut (impl futures::Stream<Item = Event> + Unpin), within: Duration) -> Event {
    tokio::time::timeout(within, async {
        loop {
            match events.next().await {
                Some(event @ (Event::ConnectionBlocked(_) | Event::ConnectionUnblocked)) => return event,
                Some(_) => continue,
                None => panic!("the connection's events ended"),
            }
        }
    })
    .await
    .expect("no connection.blocked/unblocked in time")
}

/// Samples a process's resident memory every few milliseconds, keeping the
/// highest value, until dropped.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(rss) = resident(pid) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        RssSampler { peak, stop }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn resident(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line["VmRSS:".len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

async fn message_count(channel: &Channel, queue: &str) -> u32 {
    passive_declare(channel, queue)
        .await
        .expect("passive declare")
        .message_count()
}

/// The next delivery, within 30 s; `stalled` says what it means if none comes.
async fn next_delivery(consumer: &mut lapin::Consumer, stalled: &str) -> lapin::message::Delivery {
    tokio::time::timeout(Duration::from_secs(30), consumer.next())
        .await
        .unwrap_or_else(|_| panic!("{stalled}"))
        .expect("consumer ended")
        .expect("delivery")
}

/// Declares the durable queue `name` with `arguments` and puts the
/// channel in confirm mode.
async fn durable_queue_with_confirms(channel: &Channel, name: &str, arguments: FieldTable) {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel.queue_declare(name.into(), durable, arguments).await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
}

/// An auto-ack consumer of `queue`.
async fn consume_auto_ack(channel: &Channel, queue: &str) -> lapin::Consumer {
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    channel
        .basic_consume(queue.into(), "reader".into(), no_ack, FieldTable::default())
        .await
        .unwrap()
}

/// Publishes the messages numbered `numbers` (the number in the first four
/// bytes of a `body_size` body) on a channel in confirm mode, then waits
/// for every confirm and checks it is an ack.
async fn publish_numbered(
    channel: &Channel,
    queue: &str,
    numbers: std::ops::Range<u32>,
    body_size: usize,
    properties: BasicProperties,
) {
    let mut confirms = Vec::with_capacity(numbers.len());
    for n in numbers {
        let mut body = vec![0u8; body_size];
        body[..4].copy_from_slice(&n.to_be_bytes());
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body,
                properties.clone(),
            )
            .await
            .expect("publish");
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(confirm.await.expect("confirm").is_ack(), "a publish was nacked");
    }
}

/// The number a test wrote in the first four bytes of a body.
fn number(delivery: &lapin::message::Delivery) -> u32 {
    u32::from_be_bytes(delivery.data[..4].try_into().expect("a numbered body"))
}

#[tokio::test]
async fn a_watermark_of_zero_blocks_every_publisher_and_no_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start_with(dir.path(), &["--memory-high-watermark", "0"]);
    warren.wait_for_log("memory resource limit alarm set on node");

    let publisher = connect(&warren).await;
    let mut events = publisher.events_listener();
    let channel = publisher.create_channel().await.unwrap();
    channel
        .queue_declare("zero".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    channel
        .basic_publish(
            "".into(),
            "zero".into(),
            BasicPublishOptions::default(),
            b"first",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    match next_block_event(&mut events, Duration::from_secs(10)).await {
        Event::ConnectionBlocked(reason) => assert_eq!(reason, "low on memory"),
        other => panic!("expected connection.blocked, got {other:?}"),
    }

    // Another connection that does not publish is served: it declares,
    // consumes the one message read before the block, and acks it.
    let consumer = connect(&warren).await;
    let channel = consumer.create_channel().await.unwrap();
    assert_eq!(message_count(&channel, "zero").await, 1);
    let got = channel
        .basic_get("zero".into(), BasicGetOptions::default())
        .await
        .unwrap()
        .expect("the message published before the block");
    assert_eq!(got.delivery.data, b"first");
    got.delivery.ack(BasicAckOptions::default()).await.unwrap();
}

#[tokio::test]
async fn a_flood_is_held_at_the_watermark_and_resumes_once_consumed() {
    const WATERMARK: u64 = 48 * MIB;
    const MESSAGES: u32 = 1200; // 75 MiB of 64 KiB bodies: more than fits
    const BODY: usize = 64 * 1024;

    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start_with(dir.path(), &["--memory-high-watermark", "48MiB"]);
    warren.wait_for_log("memory high watermark set to 48 MiB");
    let sampler = RssSampler::start(warren.child.id());

    // The consumer takes every message and acknowledges none until the
    // alarm: unacknowledged messages stay in memory (queues page only what
    // is ready, as RabbitMQ's do), so the flood reaches the watermark.
    let consumer = connect(&warren).await;
    let consume = consumer.create_channel().await.unwrap();
    consume
        .queue_declare("flood".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let mut deliveries = consume
        .basic_consume(
            "flood".into(),
            "drain".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (alarm_seen, mut alarm) = tokio::sync::oneshot::channel::<()>();
    let draining = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                _ = &mut alarm => break,
                delivery = next_delivery(&mut deliveries, "no delivery before the alarm") => held.push(delivery),
            }
        }
        // Consumers are served while publishers are blocked: everything
        // held is acknowledged, then the rest consumed as it comes.
        let before_alarm = held.len() as u32;
        let mut expected = 0;
        for delivery in held {
            assert_eq!(number(&delivery), expected);
            expected += 1;
            delivery.ack(BasicAckOptions::default()).await.unwrap();
        }
        while expected < MESSAGES {
            let delivery = next_delivery(&mut deliveries, "the flood stalled").await;
            assert_eq!(delivery.data.len(), BODY);
            assert_eq!(number(&delivery), expected);
            expected += 1;
            delivery.ack(BasicAckOptions::default()).await.unwrap();
        }
        before_alarm
    });

    // The publisher: transient 64 KiB messages, as fast as the socket
    // takes them, confirmed.
    let publisher = connect(&warren).await;
    let mut events = publisher.events_listener();
    let publish = publisher.create_channel().await.unwrap();
    publish.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let publishing = tokio::spawn(async move {
        publish_numbered(&publish, "flood", 0..MESSAGES, BODY, BasicProperties::default()).await;
        publisher
    });

    match next_block_event(&mut events, Duration::from_secs(30)).await {
        Event::ConnectionBlocked(reason) => assert_eq!(reason, "low on memory"),
        other => panic!("expected connection.blocked, got {other:?}"),
    }
    warren.wait_for_log("memory resource limit alarm set on node");
    assert!(!publishing.is_finished(), "the whole flood got in before the alarm");
    // The consumer acknowledges what it holds: the alarm clears, the
    // publisher resumes, and every message arrives once, in order.
    let _ = alarm_seen.send(());
    match next_block_event(&mut events, Duration::from_secs(30)).await {
        Event::ConnectionUnblocked => {}
        other => panic!("expected connection.unblocked, got {other:?}"),
    }
    warren.wait_for_log("memory resource limit alarm cleared on node");
    let _publisher = tokio::time::timeout(Duration::from_secs(60), publishing)
        .await
        .expect("the publisher did not finish")
        .expect("publisher task");
    let before_alarm = tokio::time::timeout(Duration::from_secs(60), draining)
        .await
        .expect("the consumer did not finish")
        .expect("consumer task");
    assert!(before_alarm < MESSAGES, "the whole flood got in: {before_alarm}");

    // The broker only learns of memory by measuring it, so it can pass the
    // watermark by what its connections read between two measurements: a
    // few socket reads, well under 5%.
    let peak = sampler.peak();
    eprintln!("peak resident memory: {:.1} MiB", peak as f64 / MIB as f64);
    assert!(
        peak <= WATERMARK + WATERMARK / 20,
        "resident memory reached {} MiB with a {} MiB watermark",
        peak / MIB,
        WATERMARK / MIB
    );
}

#[tokio::test]
async fn a_stalled_no_ack_consumer_holds_a_bounded_share_and_others_get_the_rest() {
    const MESSAGES: u32 = 1600; // 100 MiB on disk
    const BODY: usize = 64 * 1024;

    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let direct = connect(&warren).await;
    let channel = direct.create_channel().await.unwrap();
    durable_queue_with_confirms(&channel, "deep", FieldTable::default()).await;
    let persistent = BasicProperties::default().with_delivery_mode(2);
    publish_numbered(&channel, "deep", 0..MESSAGES, BODY, persistent).await;
    let before = resident(warren.child.id()).expect("VmRSS");
    let sampler = RssSampler::start(warren.child.id());

    // A no-ack consumer behind a proxy that stops reading: the broker's
    // writes to it fill the socket buffers and wait.
    let proxy = PausableProxy::start(warren.addr).await;
    let slow = Connection::connect(&proxy.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let slow_channel = slow.create_channel().await.unwrap();
    proxy.pause(true);
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let mut slow_deliveries = slow_channel
        .basic_consume("deep".into(), "slow".into(), no_ack, FieldTable::default())
        .await
        .unwrap();

    // The queue hands the stalled consumer what its window and socket take,
    // then stops: wait for the count to settle.
    let mut settled = (MESSAGES, 0);
    let started = std::time::Instant::now();
    while settled.1 < 10 {
        assert!(started.elapsed() < Duration::from_secs(30), "the queue never stopped");
        let count = message_count(&channel, "deep").await;
        settled = if count == settled.0 {
            (count, settled.1 + 1)
        } else {
            (count, 0)
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = settled.0;
    assert!(
        left > MESSAGES / 2,
        "the stalled consumer took {} of {MESSAGES} messages",
        MESSAGES - left
    );
    let growth = sampler.peak().saturating_sub(before);
    assert!(
        growth < 32 * MIB,
        "a stalled consumer grew resident memory by {} MiB",
        growth / MIB
    );

    // Another consumer of the same queue gets everything the stalled one
    // does not hold.
    channel.basic_qos(100, BasicQosOptions::default()).await.unwrap();
    let mut fast = channel
        .basic_consume(
            "deep".into(),
            "fast".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut seen = vec![false; MESSAGES as usize];
    for _ in 0..left {
        let delivery = next_delivery(&mut fast, "the other consumer stalled too").await;
        let n = number(&delivery) as usize;
        assert!(!std::mem::replace(&mut seen[n], true), "message {n} twice");
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }

    // Once its network moves again the stalled consumer gets the rest.
    proxy.pause(false);
    while seen.iter().any(|s| !s) {
        let missing = format!("{} messages never arrived", seen.iter().filter(|s| !**s).count());
        let delivery = next_delivery(&mut slow_deliveries, &missing).await;
        let n = number(&delivery) as usize;
        assert!(!std::mem::replace(&mut seen[n], true), "message {n} twice");
    }
    eprintln!(
        "stalled consumer: took {} messages, resident memory grew {:.1} MiB",
        MESSAGES - left,
        growth as f64 / MIB as f64
    );
}

/// Bytes of the files under `dir`, recursively.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[tokio::test]
async fn a_non_durable_queue_pages_past_its_window_and_none_of_it_outlives_a_restart() {
    const MESSAGES: u32 = 60_000; // 240 MiB of 4 KiB bodies
    const BODY: usize = 4096;

    let dir = tempfile::tempdir().unwrap();
    // Paging from the start (by default a non-durable queue pages once
    // memory reaches half the watermark).
    let warren = Warren::start_with(dir.path(), &["--memory-paging-ratio", "0"]);
    let before = resident(warren.child.id()).expect("VmRSS");
    let sampler = RssSampler::start(warren.child.id());
    let connection = connect(&warren).await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare("long".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    publish_numbered(&channel, "long", 0..MESSAGES, BODY, BasicProperties::default()).await;
    assert_eq!(message_count(&channel, "long").await, MESSAGES);
    let growth = sampler.peak().saturating_sub(before);
    let on_disk = dir_bytes(dir.path());
    eprintln!(
        "non-durable queue of {} MiB: resident memory grew {:.1} MiB, {:.1} MiB on disk",
        (MESSAGES as usize * BODY) >> 20,
        growth as f64 / MIB as f64,
        on_disk as f64 / MIB as f64
    );
    assert!(on_disk > 150 * MIB, "the tail is on disk: {} MiB", on_disk / MIB);
    assert!(
        growth < 150 * MIB,
        "resident memory grew {} MiB for a 234 MiB queue",
        growth / MIB
    );

    // Half of it comes back from disk in order.
    let mut deliveries = consume_auto_ack(&channel, "long").await;
    for expected in 0..MESSAGES / 2 {
        let delivery = next_delivery(&mut deliveries, "the queue stalled").await;
        assert_eq!(number(&delivery), expected);
    }
    drop(deliveries);
    drop(channel);
    drop(connection);

    // After a restart the queue is gone, and so is what it had on disk.
    warren.stop();
    let warren = Warren::start(dir.path());
    warren.wait_for_log("store: dropped what did not survive");
    let connection = connect(&warren).await;
    let channel = connection.create_channel().await.unwrap();
    let gone = passive_declare(&channel, "long")
        .await
        .expect_err("a non-durable queue does not survive a restart");
    assert!(gone.to_string().contains("NOT_FOUND"), "{gone}");
}

#[tokio::test]
async fn a_flood_into_a_non_durable_queue_pages_to_disk_under_the_watermark() {
    // The flood of issue #11: two publishers of 64 KiB transient messages
    // into a non-durable queue nobody consumes (it took the process to
    // 4.4 GiB in 8 s). At half the watermark the queue pages; the process
    // stays under the watermark and every publish is confirmed.
    const WATERMARK: u64 = 128 * MIB;
    const PER_PUBLISHER: u32 = 1600; // 2 x 100 MiB
    const BODY: usize = 64 * 1024;

    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start_with(dir.path(), &["--memory-high-watermark", "128MiB"]);
    let sampler = RssSampler::start(warren.child.id());
    let setup = connect(&warren).await;
    let channel = setup.create_channel().await.unwrap();
    channel
        .queue_declare("flood".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let mut publishers = Vec::new();
    for p in 0..2u32 {
        let connection = connect(&warren).await;
        publishers.push(tokio::spawn(async move {
            let channel = connection.create_channel().await.unwrap();
            channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
            let numbers = p * PER_PUBLISHER..(p + 1) * PER_PUBLISHER;
            publish_numbered(&channel, "flood", numbers, BODY, BasicProperties::default()).await;
            connection
        }));
    }
    for publisher in publishers {
        tokio::time::timeout(Duration::from_secs(120), publisher)
            .await
            .expect("the publishers did not finish")
            .expect("publisher task");
    }
    assert_eq!(message_count(&channel, "flood").await, 2 * PER_PUBLISHER);
    let peak = sampler.peak();
    let on_disk = dir_bytes(dir.path());
    eprintln!(
        "flood of 200 MiB into a non-durable queue: peak {:.1} MiB, {:.1} MiB on disk",
        peak as f64 / MIB as f64,
        on_disk as f64 / MIB as f64
    );
    assert!(on_disk > 64 * MIB, "the queue paged: {} MiB on disk", on_disk / MIB);
    assert!(
        peak <= WATERMARK + WATERMARK / 20,
        "resident memory reached {} MiB with a {} MiB watermark",
        peak / MIB,
        WATERMARK / MIB
    );
}

#[tokio::test]
async fn a_priority_queue_pages_past_its_window_and_keeps_its_order_across_a_kill() {
    const MESSAGES: u32 = 40_000; // 156 MiB of 4 KiB bodies
    const BODY: usize = 4096;
    // Priorities 0 to 4 in turn into levels 0 to 3 (4 counts as 3).
    let priority = |n: u32| (n % 5) as u8;

    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let before = resident(warren.child.id()).expect("VmRSS");
    let sampler = RssSampler::start(warren.child.id());
    let connection = connect(&warren).await;
    let channel = connection.create_channel().await.unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-priority".into(), lapin::types::AMQPValue::ShortShortUInt(3));
    durable_queue_with_confirms(&channel, "prioritised", arguments).await;
    for level in 0..5u8 {
        // Numbered so that message n has priority n % 5, published a
        // priority at a time so levels interleave on disk.
        let numbers: Vec<u32> = (0..MESSAGES).filter(|&n| priority(n) == level).collect();
        let mut confirms = Vec::with_capacity(numbers.len());
        for n in numbers {
            let mut body = vec![0u8; BODY];
            body[..4].copy_from_slice(&n.to_be_bytes());
            let properties = BasicProperties::default().with_delivery_mode(2).with_priority(level);
            let confirm = channel
                .basic_publish(
                    "".into(),
                    "prioritised".into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await
                .expect("publish");
            confirms.push(confirm);
        }
        for confirm in confirms {
            assert!(confirm.await.expect("confirm").is_ack(), "a publish was nacked");
        }
    }
    assert_eq!(message_count(&channel, "prioritised").await, MESSAGES);
    let growth = sampler.peak().saturating_sub(before);
    eprintln!(
        "priority queue of {} MiB: resident memory grew {:.1} MiB",
        (MESSAGES as usize * BODY) >> 20,
        growth as f64 / MIB as f64
    );
    assert!(
        growth < 100 * MIB,
        "resident memory grew {} MiB for a 156 MiB priority queue",
        growth / MIB
    );
    drop(channel);
    drop(connection);

    // After a kill -9, every message comes back: the highest level first,
    // in publish order within a level, and memory stays bounded.
    warren.crash();
    let warren = Warren::start(dir.path());
    let connection = connect(&warren).await;
    let channel = connection.create_channel().await.unwrap();
    assert_eq!(message_count(&channel, "prioritised").await, MESSAGES);
    let restarted = resident(warren.child.id()).expect("VmRSS");
    assert!(
        restarted < before + 100 * MIB,
        "{} MiB resident after the restart",
        restarted / MIB
    );
    // Publish order was by priority, then number.
    let mut expected: Vec<u32> = (0..MESSAGES).collect();
    expected.sort_by_key(|&n| (std::cmp::Reverse(priority(n).min(3)), priority(n), n));
    let mut deliveries = consume_auto_ack(&channel, "prioritised").await;
    for (i, expected) in expected.into_iter().enumerate() {
        let delivery = next_delivery(&mut deliveries, "the queue stalled").await;
        assert_eq!(number(&delivery), expected, "delivery {i}");
    }
}

/// Properties whose `headers` hold one array of `values` voids: a byte each
/// on the wire, tens of bytes each once decoded.
fn dense_headers(values: usize) -> BasicProperties {
    let mut headers = FieldTable::default();
    let voids = vec![lapin::types::AMQPValue::Void; values];
    headers.insert("dense".into(), lapin::types::AMQPValue::FieldArray(voids.into()));
    BasicProperties::default().with_delivery_mode(2).with_headers(headers)
}

#[tokio::test]
async fn a_queue_of_header_heavy_messages_pages_by_what_they_take_in_memory() {
    // 3,000 messages of 10,000 header values: 30 MB on the wire, over a
    // gigabyte decoded. The window counts decoded headers, so the queue
    // pages them instead of holding them all.
    const MESSAGES: u32 = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let before = resident(warren.child.id()).expect("VmRSS");
    let sampler = RssSampler::start(warren.child.id());
    let connection = connect(&warren).await;
    let channel = connection.create_channel().await.unwrap();
    durable_queue_with_confirms(&channel, "dense", FieldTable::default()).await;
    publish_numbered(&channel, "dense", 0..MESSAGES, 16, dense_headers(10_000)).await;
    assert_eq!(message_count(&channel, "dense").await, MESSAGES);
    let growth = sampler.peak().saturating_sub(before);
    eprintln!(
        "3,000 header-heavy messages: resident memory grew {:.1} MiB",
        growth as f64 / MIB as f64
    );
    assert!(growth < 200 * MIB, "resident memory grew {} MiB", growth / MIB);

    let mut deliveries = consume_auto_ack(&channel, "dense").await;
    for expected in 0..MESSAGES {
        let delivery = next_delivery(&mut deliveries, "the queue stalled").await;
        assert_eq!(number(&delivery), expected);
    }
}

#[tokio::test]
async fn a_header_table_of_more_than_16384_values_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let connection = connect(&warren).await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare("q".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let _ = channel
        .basic_publish(
            "".into(),
            "q".into(),
            BasicPublishOptions::default(),
            b"body",
            dense_headers(16_385),
        )
        .await;
    warren.wait_for_log("could not be parsed: field table of more than 16384 values");
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while connection.status().connected() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection was not closed");
    // Others are served as before.
    let other = connect(&warren).await;
    let channel = other.create_channel().await.unwrap();
    assert_eq!(message_count(&channel, "q").await, 0);
}

#[tokio::test]
async fn a_message_over_the_connections_unfinished_limit_is_refused_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start_with(dir.path(), &["--max-unfinished-per-connection", "1000000"]);
    let connection = connect(&warren).await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare("q".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    // Within the limit: published.
    publish_numbered(&channel, "q", 0..1, 900_000, BasicProperties::default()).await;
    // Over it: the channel is closed with 406, as for an oversized message.
    let refused = async {
        channel
            .basic_publish(
                "".into(),
                "q".into(),
                BasicPublishOptions::default(),
                &vec![0u8; 1_200_000],
                BasicProperties::default(),
            )
            .await?
            .await
    }
    .await;
    let error = refused.expect_err("the publish is refused");
    let text = error.to_string();
    assert!(text.contains("PRECONDITION_FAILED"), "{text}");
    assert!(text.contains("more than its limit of 1000000"), "{text}");
    // The connection goes on: another channel sees the first message.
    let other = connection.create_channel().await.unwrap();
    assert_eq!(message_count(&other, "q").await, 1);
}
