//! A dynamic shovel replaying a dead-letter queue in the real `warren`
//! process, killed with SIGKILL mid-move and restarted, twice: the shovel
//! resumes from its stored definition, and at the end the destination
//! holds every message exactly once (nothing lost, nothing duplicated).

use std::time::{Duration, Instant};

use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{json, Value};

mod common;
use common::Warren;

const MESSAGES: u32 = 30_000;

async fn channel(warren: &Warren) -> (Connection, Channel) {
    let connection = Connection::connect(&warren.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// The management API's base URL, from the process's log.
fn api(warren: &Warren) -> String {
    let line = warren.wait_for_log("management API listening on");
    let start = line.find("http://").expect("a URL in the line");
    line[start..].split_whitespace().next().unwrap().to_string()
}

async fn depth(ch: &Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .unwrap()
        .message_count()
}

/// Waits (polling the queue) until `work` holds at least `at_least`
/// messages or the shovel is done.
async fn wait_for_depth(ch: &Channel, at_least: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = depth(ch, "work").await;
        if now >= at_least {
            return now;
        }
        assert!(Instant::now() < deadline, "the shovel stalled at {now}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shovel_killed_mid_move_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let (connection, ch) = channel(&warren).await;
    for queue in ["dlq", "work"] {
        ch.queue_declare(queue.into(), durable(), FieldTable::default())
            .await
            .unwrap();
    }
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let mut confirms = Vec::new();
    for n in 0..MESSAGES {
        let confirm = ch
            .basic_publish(
                "".into(),
                "dlq".into(),
                BasicPublishOptions::default(),
                &n.to_be_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap();
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(confirm.await.unwrap().is_ack());
    }
    // Small batches, so that a kill lands mid-move.
    let definition = json!({"value": {
        "src-uri": "amqp://", "src-queue": "dlq", "dest-uri": "amqp://", "dest-queue": "work",
        "src-delete-after": "queue-length", "src-prefetch-count": 50, "ack-mode": "on-confirm"}});
    let http = reqwest::Client::new();
    let put = http
        .put(format!("{}parameters/shovel/%2F/replay", api(&warren)))
        .basic_auth("guest", Some("guest"))
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);

    // Killed twice mid-move; each restart resumes the stored shovel.
    let mut warren = warren;
    let mut _connection = connection;
    let mut ch = ch;
    for fraction in [4, 2] {
        let reached = wait_for_depth(&ch, MESSAGES / fraction).await;
        assert!(reached < MESSAGES, "the move ended before the kill; make it longer");
        warren.crash();
        warren = Warren::start(dir.path());
        (_connection, ch) = channel(&warren).await;
    }

    let base = api(&warren);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shovels: Value = http
            .get(format!("{base}shovels"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if shovels.as_array().is_some_and(|s| s.is_empty()) && depth(&ch, "dlq").await == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the shovel did not finish: {shovels}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen = vec![0u32; MESSAGES as usize];
    while let Some(message) = ch
        .basic_get("work".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let n = u32::from_be_bytes(message.delivery.data[..4].try_into().unwrap());
        seen[n as usize] += 1;
    }
    let lost: Vec<usize> = (0..seen.len()).filter(|&n| seen[n] == 0).collect();
    let doubled: Vec<usize> = (0..seen.len()).filter(|&n| seen[n] > 1).collect();
    assert!(
        lost.is_empty(),
        "{} lost, first {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        doubled.is_empty(),
        "{} duplicated, first {:?}",
        doubled.len(),
        &doubled[..doubled.len().min(10)]
    );
    warren.stop();
}
