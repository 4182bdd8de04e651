//! RabbitMQ's consumer (ack) timeout: a delivery left unacknowledged longer
//! than the timeout closes its channel with 406, and the message goes back
//! to the queue for another consumer. Broker-wide (`--consumer-timeout-ms`)
//! and per queue (`x-consumer-timeout`).

use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

/// A broker of its own with a 300 ms consumer timeout.
fn url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let mut config = warren::ephemeral_config();
        config.consumer_timeout = Some(Duration::from_millis(300));
        warren_conformance::start_background_broker(config)
    })
    .clone()
}

async fn open(url: &str) -> (Connection, Channel) {
    let connection = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

fn reply_of(error: &lapin::Error) -> (u16, String) {
    match error.kind() {
        lapin::ErrorKind::ProtocolError(e) => (e.get_id(), e.get_message().to_string()),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// Consumes one message without acking, and returns the error that closes
/// the channel.
async fn hold_one_without_ack(url: &str, queue: &str) -> (u16, String) {
    let (_connection, channel) = open(url).await;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .expect("a delivery")
        .unwrap()
        .unwrap();
    assert!(!delivery.redelivered);
    // Never ack: the broker closes the channel, which ends the consumer
    // stream with the channel.close it sent.
    let closed = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .expect("the channel is closed within the timeout and a tick");
    match closed {
        Some(Err(error)) => reply_of(&error),
        other => panic!("expected the consumer to end with the close reason, got {other:?}"),
    }
}

async fn setup(url: &str, queue: &str, args: FieldTable) {
    let (_connection, channel) = open(url).await;
    channel
        .queue_declare(queue.into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap();
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            b"job",
            BasicProperties::default(),
        )
        .await
        .unwrap();
}

async fn redelivered_to_another(url: &str, queue: &str) {
    let (_connection, channel) = open(url).await;
    let message = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the unacked message went back to the queue");
    assert!(message.delivery.redelivered);
    assert_eq!(message.delivery.data, b"job");
}

#[tokio::test]
async fn broker_wide_timeout_closes_the_channel_and_requeues() {
    let url = url();
    setup(&url, "ct-broker-wide", FieldTable::default()).await;
    let (code, text) = hold_one_without_ack(&url, "ct-broker-wide").await;
    assert_eq!(code, 406);
    assert!(
        text.starts_with(
            "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: 300 ms"
        ),
        "{text}"
    );
    redelivered_to_another(&url, "ct-broker-wide").await;
}

#[tokio::test]
async fn per_queue_timeout_overrides_the_broker_wide_one() {
    // A broker whose own timeout is long: only the queue's 200 ms applies.
    static LONG: OnceLock<String> = OnceLock::new();
    let url = LONG
        .get_or_init(|| {
            let mut config = warren::ephemeral_config();
            config.consumer_timeout = Some(Duration::from_secs(600));
            warren_conformance::start_background_broker(config)
        })
        .clone();
    let mut args = FieldTable::default();
    args.insert("x-consumer-timeout".into(), AMQPValue::LongInt(200));
    setup(&url, "ct-per-queue", args).await;
    let (code, text) = hold_one_without_ack(&url, "ct-per-queue").await;
    assert_eq!(code, 406);
    assert!(text.contains("Timeout value used: 200 ms"), "{text}");
    redelivered_to_another(&url, "ct-per-queue").await;
}
