//! Test harness for the conformance suite.
//!
//! `broker_url()` returns the AMQP URL to test against. Without
//! configuration it starts one Warren broker in-process (on a free loopback
//! port, in a runtime of its own that outlives each test's runtime) and every
//! test in the binary shares it; tests use unique names so they can run in
//! parallel. With `WARREN_TEST_URL` set (for example to a RabbitMQ at
//! `amqp://guest:guest@127.0.0.1:5673/%2f`) the suite runs against that
//! broker instead, which is how its expectations are checked against
//! RabbitMQ itself.

use std::sync::OnceLock;

pub fn broker_url() -> String {
    if let Ok(url) = std::env::var("WARREN_TEST_URL") {
        return url;
    }
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| start_background_broker(warren::ephemeral_config()))
        .clone()
}

/// Starts a Warren broker with `config` on a thread of its own and returns
/// its URL. The broker lives until the test process exits.
pub fn start_background_broker(config: warren::BrokerConfig) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("warren-test-broker".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test broker runtime");
            runtime.block_on(async move {
                let broker = warren::start(config).await.expect("start test broker");
                let _ = tx.send(broker.amqp_url());
                std::future::pending::<()>().await;
            });
        })
        .expect("spawn test broker thread");
    rx.recv().expect("test broker did not start")
}

/// Whether the suite runs against an external broker (RabbitMQ) rather
/// than an in-process Warren.
pub fn external_broker() -> bool {
    std::env::var("WARREN_TEST_URL").is_ok()
}

/// Small helpers the lapin tests share.
pub mod lapin_util {
    use std::time::Duration;

    use futures::StreamExt;
    use lapin::options::*;
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

    /// A name unique to this test run, so tests can share a broker.
    pub fn unique(prefix: &str) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
    }

    pub async fn connect() -> Connection {
        Connection::connect(&super::broker_url(), ConnectionProperties::default())
            .await
            .expect("connect")
    }

    pub async fn channel() -> (Connection, Channel) {
        let connection = connect().await;
        let channel = connection.create_channel().await.expect("channel");
        (connection, channel)
    }

    /// Declares a non-durable queue that deletes itself with its connection.
    pub async fn temp_queue(channel: &Channel) -> String {
        let name = unique("q");
        let options = QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        };
        channel
            .queue_declare(name.as_str().into(), options, FieldTable::default())
            .await
            .expect("declare");
        name
    }

    pub async fn publish(channel: &Channel, exchange: &str, key: &str, body: &[u8]) {
        publish_with(channel, exchange, key, body, BasicProperties::default()).await;
    }

    pub async fn publish_with(channel: &Channel, exchange: &str, key: &str, body: &[u8], props: BasicProperties) {
        channel
            .basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), body, props)
            .await
            .expect("publish");
    }

    /// Gets every message now in the queue (no-ack), bodies as strings.
    pub async fn drain(channel: &Channel, queue: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        while let Some(m) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("get")
        {
            bodies.push(String::from_utf8_lossy(&m.delivery.data).into_owned());
        }
        bodies
    }

    /// The next delivery on a consumer, within two seconds.
    pub async fn next(consumer: &mut Consumer) -> lapin::message::Delivery {
        tokio::time::timeout(Duration::from_secs(2), consumer.next())
            .await
            .expect("a delivery within 2 s")
            .expect("consumer open")
            .expect("delivery")
    }

    /// Asserts that nothing arrives on the consumer for a short while.
    pub async fn nothing_more(consumer: &mut Consumer) {
        let more = tokio::time::timeout(Duration::from_millis(200), consumer.next()).await;
        assert!(more.is_err(), "expected no further delivery");
    }

    /// The reply code and text of a protocol error.
    pub fn reply_of(error: &lapin::Error) -> (u16, String) {
        match error.kind() {
            lapin::ErrorKind::ProtocolError(e) => (e.get_id(), e.get_message().to_string()),
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }
}
