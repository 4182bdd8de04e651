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

pub mod python;
pub mod recorded;

pub fn broker_url() -> String {
    shared_broker().0.clone()
}

/// The port of the management HTTP API of the broker under test
/// (`WARREN_TEST_HTTP_PORT` with `WARREN_TEST_URL`, 15672 by default).
pub fn management_port() -> u16 {
    shared_broker().1
}

fn shared_broker() -> &'static (String, u16) {
    static BROKER: OnceLock<(String, u16)> = OnceLock::new();
    BROKER.get_or_init(|| {
        if let Ok(url) = std::env::var("WARREN_TEST_URL") {
            let port = std::env::var("WARREN_TEST_HTTP_PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(15672);
            return (url, port);
        }
        let mut config = warren::ephemeral_config();
        // Non-durable queues page past their window as durable ones do (by
        // default only under memory pressure), so the suite covers paging.
        config.memory_paging_ratio = 0.0;
        start_background_warren(config)
    })
}

/// Starts a Warren broker with `config` on a thread of its own and returns
/// its URL. The broker lives until the test process exits.
pub fn start_background_broker(config: warren::BrokerConfig) -> String {
    start_background_warren(config).0
}

/// Starts Warren with `config` on a thread of its own and returns its
/// AMQP URL and its management API's port (0 if it has none).
pub fn start_background_warren(config: warren::BrokerConfig) -> (String, u16) {
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
                let http_port = broker.management_addr().map_or(0, |a| a.port());
                let _ = tx.send((broker.amqp_url(), http_port));
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

/// The broker's `host:port`, taken from [`broker_url`].
pub fn broker_address() -> String {
    let url = broker_url();
    let after_at = url.rsplit('@').next().unwrap_or(&url).to_string();
    after_at.split('/').next().unwrap_or("127.0.0.1:5672").to_string()
}

/// [`broker_url`] with other credentials and another (unencoded) vhost.
pub fn url_with(user: &str, password: &str, vhost: &str) -> String {
    let vhost = if vhost == "/" {
        "%2f".to_string()
    } else {
        vhost.to_string()
    };
    format!("amqp://{user}:{password}@{}/{vhost}", broker_address())
}

/// Small helpers the lapin tests share.
pub mod lapin_util {
    use std::future::Future;
    use std::time::Duration;

    use futures::StreamExt;
    use lapin::options::*;
    use lapin::types::{AMQPValue, FieldTable};
    use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

    /// How long any single step may take before the test fails instead of hanging.
    pub const STEP: Duration = Duration::from_secs(5);

    /// Bounds any future by [`STEP`]: `.bounded().await` panics, naming the
    /// caller's line, instead of hanging when the broker never answers.
    pub trait Bounded: Future + Sized {
        #[track_caller]
        fn bounded(self) -> impl Future<Output = Self::Output> {
            let at = std::panic::Location::caller();
            async move {
                match tokio::time::timeout(STEP, self).await {
                    Ok(output) => output,
                    Err(_) => panic!("no answer within {STEP:?} at {at}"),
                }
            }
        }
    }

    impl<F: Future> Bounded for F {}

    /// Polls `check` every 10 ms until it gives a value, for at most
    /// [`STEP`]; panics naming `what` if it never does. For what a broker
    /// does asynchronously (dead-lettering, expiry, closing).
    #[track_caller]
    pub fn eventually<T, F, Fut>(what: &str, mut check: F) -> impl Future<Output = T> + '_
    where
        F: FnMut() -> Fut + 'static,
        Fut: Future<Output = Option<T>>,
    {
        let at = std::panic::Location::caller();
        async move {
            let deadline = tokio::time::Instant::now() + STEP;
            loop {
                if let Some(value) = check().await {
                    return value;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what}: not within {STEP:?} at {at}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// A name unique to this test run (and unlikely to clash with earlier
    /// runs against the same broker), so tests can share a broker.
    pub fn unique(prefix: &str) -> String {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(n);
        let random = hasher.finish() as u32;
        format!("{prefix}-{}-{random:08x}-{n}", std::process::id())
    }

    pub async fn connect() -> Connection {
        Connection::connect(&super::broker_url(), ConnectionProperties::default())
            .bounded()
            .await
            .expect("connect")
    }

    pub async fn channel() -> (Connection, Channel) {
        let connection = connect().await;
        let channel = connection.create_channel().bounded().await.expect("channel");
        (connection, channel)
    }

    pub fn passive_queue() -> QueueDeclareOptions {
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        }
    }

    pub fn passive_exchange() -> ExchangeDeclareOptions {
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        }
    }

    /// A table from `(key, value)` pairs.
    pub fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in entries {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    /// A long-string field value.
    pub fn text(s: &str) -> AMQPValue {
        AMQPValue::LongString(s.into())
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
            .bounded()
            .await
            .expect("declare");
        name
    }

    /// Declares a non-durable, non-exclusive queue (delete it at the end).
    pub async fn shared_queue(channel: &Channel, prefix: &str) -> String {
        let name = unique(prefix);
        channel
            .queue_declare(
                name.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .bounded()
            .await
            .expect("declare");
        name
    }

    /// Declares a non-durable exchange of `kind` (delete it at the end).
    pub async fn exchange(channel: &Channel, kind: lapin::ExchangeKind, args: FieldTable) -> String {
        let name = unique("x");
        channel
            .exchange_declare(name.as_str().into(), kind, ExchangeDeclareOptions::default(), args)
            .bounded()
            .await
            .expect("exchange.declare");
        name
    }

    pub async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str, args: FieldTable) {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                args,
            )
            .bounded()
            .await
            .expect("queue.bind");
    }

    pub async fn publish(channel: &Channel, exchange: &str, key: &str, body: &[u8]) {
        publish_with(channel, exchange, key, body, BasicProperties::default()).await;
    }

    pub async fn publish_with(channel: &Channel, exchange: &str, key: &str, body: &[u8], props: BasicProperties) {
        channel
            .basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), body, props)
            .bounded()
            .await
            .expect("publish");
    }

    /// Gets every message now in the queue (no-ack), bodies as strings.
    pub async fn drain(channel: &Channel, queue: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        while let Some(m) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .bounded()
            .await
            .expect("get")
        {
            bodies.push(String::from_utf8_lossy(&m.delivery.data).into_owned());
        }
        bodies
    }

    /// Starts a consumer with a client-chosen tag (empty: the broker picks one).
    pub async fn consume(channel: &Channel, queue: &str, tag: &str, no_ack: bool) -> Consumer {
        let options = BasicConsumeOptions {
            no_ack,
            ..Default::default()
        };
        channel
            .basic_consume(queue.into(), tag.into(), options, FieldTable::default())
            .bounded()
            .await
            .expect("basic.consume")
    }

    /// The body of a delivery as a string.
    pub fn body(d: &lapin::message::Delivery) -> String {
        String::from_utf8_lossy(&d.data).into_owned()
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
        assert!(more.is_err(), "expected no further delivery, got {more:?}");
    }

    /// The reply code and text of a protocol error.
    pub fn reply_of(error: &lapin::Error) -> (u16, String) {
        match error.kind() {
            lapin::ErrorKind::ProtocolError(e) => (e.get_id(), e.get_message().to_string()),
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    /// Asserts that an operation was refused with exactly `code` and `text`.
    #[track_caller]
    pub fn assert_refused<T>(result: lapin::Result<T>, code: u16, text: &str) {
        match result {
            Ok(_) => panic!("expected the broker to refuse with {code} {text:?}, but it succeeded"),
            Err(error) => assert_eq!(reply_of(&error), (code, text.to_string())),
        }
    }

    /// A consumer on a fresh server-named queue of `channel`. It sees nothing
    /// but the end of the channel: when the broker closes the channel (or
    /// the connection), the stream yields the reason. Set it up before an
    /// operation the broker refuses asynchronously (a publish, an ack).
    pub async fn watch(channel: &Channel) -> Consumer {
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        let queue = channel
            .queue_declare("".into(), options, FieldTable::default())
            .bounded()
            .await
            .expect("declare the watch queue");
        consume(channel, queue.name().as_str(), "", true).await
    }

    /// The reply code and text with which the broker closed the watched
    /// channel or connection (see [`watch`]).
    pub async fn closed_with(watch: &mut Consumer) -> (u16, String) {
        match watch.next().bounded().await {
            Some(Err(error)) => reply_of(&error),
            other => panic!("expected the channel to be closed with an error, got {other:?}"),
        }
    }

    /// After a channel exception: `channel` is closed, but `connection`
    /// still works (a new channel declares, publishes, gets and deletes).
    pub async fn assert_only_channel_closed(connection: &Connection, channel: &Channel) {
        for _ in 0..100 {
            if !channel.status().connected() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!channel.status().connected(), "the channel is closed");
        assert!(connection.status().connected(), "the connection is still open");
        assert_connection_works(connection).await;
    }

    /// Opens a new channel on `connection` and does a round trip through a queue.
    pub async fn assert_connection_works(connection: &Connection) {
        let fresh = connection.create_channel().bounded().await.expect("a new channel");
        let queue = fresh
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .bounded()
            .await
            .expect("declare on the new channel");
        let name = queue.name().as_str().to_string();
        publish(&fresh, "", &name, b"still works").await;
        assert_eq!(drain(&fresh, &name).await, ["still works"]);
        fresh
            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
            .bounded()
            .await
            .expect("delete");
        fresh
            .close(200, "OK".into())
            .bounded()
            .await
            .expect("close the new channel");
    }

    /// After a connection exception: the connection is closed and no new
    /// channel can be opened on it.
    pub async fn assert_connection_closed(connection: &Connection) {
        for _ in 0..100 {
            if !connection.status().connected() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!connection.status().connected(), "the connection is closed");
        assert!(
            connection.create_channel().bounded().await.is_err(),
            "no channel can be opened on a closed connection"
        );
    }

    /// Deletes a queue from a fresh connection (for cleanup after an error
    /// closed the test's own connection).
    pub async fn delete_queue(queue: &str) {
        let (connection, ch) = channel().await;
        ch.queue_delete(queue.into(), QueueDeleteOptions::default())
            .bounded()
            .await
            .expect("queue.delete");
        let _ = connection.close(200, "OK".into()).bounded().await;
    }

    /// Deletes exchanges from a fresh connection (see [`delete_queue`]).
    pub async fn delete_exchanges(exchanges: &[&str]) {
        let (connection, ch) = channel().await;
        for exchange in exchanges {
            ch.exchange_delete((*exchange).into(), ExchangeDeleteOptions::default())
                .bounded()
                .await
                .expect("exchange.delete");
        }
        let _ = connection.close(200, "OK".into()).bounded().await;
    }

    /// A queue's (ready messages, consumers), by a passive declare on `channel`.
    pub async fn counts(channel: &Channel, queue: &str) -> (u32, u32) {
        let q = channel
            .queue_declare(queue.into(), passive_queue(), FieldTable::default())
            .bounded()
            .await
            .expect("passive queue.declare");
        (q.message_count(), q.consumer_count())
    }

    /// Checks from a fresh connection that a (non-exclusive) queue exists:
    /// its (ready messages, consumers), or the refusal.
    pub async fn queue_counts(queue: &str) -> lapin::Result<(u32, u32)> {
        let (connection, probe) = channel().await;
        let result = probe
            .queue_declare(queue.into(), passive_queue(), FieldTable::default())
            .bounded()
            .await
            .map(|q| (q.message_count(), q.consumer_count()));
        let _ = connection.close(200, "OK".into()).bounded().await;
        result
    }

    /// Checks from a fresh connection that a queue no longer exists (404).
    /// Waits up to 2 s for it: RabbitMQ deletes auto-delete and exclusive
    /// queues just after answering the cancel or close that caused it.
    pub async fn assert_queue_gone(queue: &str, why: &str) {
        let gone = (404, format!("NOT_FOUND - no queue '{queue}' in vhost '/'"));
        let mut last = None;
        for _ in 0..40 {
            match queue_counts(queue).await {
                Err(error) if reply_of(&error) == gone => return,
                other => last = Some(other.map_err(|e| reply_of(&e))),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{why}: queue {queue} still exists: {last:?}");
    }

    /// Checks from a fresh connection whether an exchange exists.
    pub async fn exchange_exists(exchange: &str) -> bool {
        let (connection, probe) = channel().await;
        let result = probe
            .exchange_declare(
                exchange.into(),
                lapin::ExchangeKind::Direct,
                passive_exchange(),
                FieldTable::default(),
            )
            .bounded()
            .await;
        let _ = connection.close(200, "OK".into()).bounded().await;
        match result {
            Ok(()) => true,
            Err(error) => {
                assert_eq!(
                    reply_of(&error),
                    (404, format!("NOT_FOUND - no exchange '{exchange}' in vhost '/'"))
                );
                false
            }
        }
    }
}

/// A raw AMQP socket for what no client library will send: hand-written
/// frames, encoded with `warren-protocol`.
pub mod raw {
    use std::time::Duration;

    use bytes::{Bytes, BytesMut};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use warren_protocol::*;

    pub struct Raw {
        pub socket: TcpStream,
        pub buf: BytesMut,
    }

    impl Raw {
        pub async fn connect() -> Raw {
            let socket = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(super::broker_address()))
                .await
                .expect("connect within 5 s")
                .expect("connect");
            Raw {
                socket,
                buf: BytesMut::new(),
            }
        }

        pub async fn send(&mut self, bytes: &[u8]) {
            self.socket.write_all(bytes).await.expect("write");
        }

        pub async fn send_method(&mut self, channel: u16, method: impl Into<Method>) {
            let mut out = BytesMut::new();
            encode_method(&mut out, channel, &method.into());
            self.send(&out).await;
        }

        /// Everything the broker sends until it closes the socket (within 5 s).
        pub async fn read_to_end(&mut self) -> Vec<u8> {
            let mut answer = self.buf.split().to_vec();
            let read = tokio::time::timeout(Duration::from_secs(5), self.socket.read_to_end(&mut answer)).await;
            assert!(read.is_ok(), "the broker closes the socket within 5 s");
            answer
        }

        /// The next frame, or None when the broker closed the socket.
        pub async fn frame(&mut self) -> Option<Frame> {
            loop {
                if let Some(frame) = decode_frame(&mut self.buf, 0).expect("the broker sends valid frames") {
                    return Some(frame);
                }
                let n = tokio::time::timeout(Duration::from_secs(5), self.socket.read_buf(&mut self.buf))
                    .await
                    .expect("the broker answers within 5 s")
                    .ok()?;
                if n == 0 {
                    return None;
                }
            }
        }

        /// The next method frame (skipping heartbeats and content).
        pub async fn method(&mut self) -> Method {
            loop {
                match self.frame().await.expect("a frame") {
                    Frame::Method(_, m) => return m,
                    _ => continue,
                }
            }
        }

        /// Sends the protocol header and returns connection.start.
        pub async fn start() -> (Raw, ConnectionStart) {
            let mut raw = Raw::connect().await;
            raw.send(PROTOCOL_HEADER).await;
            match raw.method().await {
                Method::ConnectionStart(start) => (raw, start),
                other => panic!("expected connection.start, got {other:?}"),
            }
        }

        /// Protocol header, start-ok (guest), tune-ok, open: an open connection
        /// without heartbeats.
        pub async fn open() -> Raw {
            Raw::open_with_heartbeat(0).await
        }

        pub async fn open_with_heartbeat(heartbeat: u16) -> Raw {
            let (mut raw, tune) = Raw::started().await;
            assert_eq!(
                (tune.channel_max, tune.frame_max, tune.heartbeat),
                (2047, 131_072, 60),
                "RabbitMQ's defaults"
            );
            raw.tune_and_open(tune.channel_max, tune.frame_max, heartbeat, "/")
                .await;
            assert!(matches!(raw.method().await, Method::ConnectionOpenOk(_)));
            raw
        }

        /// Sends tune-ok with these limits, then connection.open for `vhost`.
        pub async fn tune_and_open(&mut self, channel_max: u16, frame_max: u32, heartbeat: u16, vhost: &str) {
            let tune_ok = ConnectionTuneOk {
                channel_max,
                frame_max,
                heartbeat,
            };
            self.send_method(0, tune_ok).await;
            let open = ConnectionOpen {
                virtual_host: vhost.into(),
                ..Default::default()
            };
            self.send_method(0, open).await;
        }

        /// Opens channel `id` and waits for channel.open-ok.
        pub async fn open_channel(&mut self, id: u16) {
            self.send_method(id, ChannelOpen::default()).await;
            match self.method().await {
                Method::ChannelOpenOk(_) => {}
                other => panic!("expected channel.open-ok, got {other:?}"),
            }
        }

        /// Expects connection.close with `code`, answers close-ok, and expects
        /// the socket to be closed. Returns the reply text.
        pub async fn expect_connection_close(&mut self, code: u16) -> String {
            let close = self.expect_close(code).await;
            self.send_method(0, ConnectionCloseOk {}).await;
            while self.frame().await.is_some() {}
            close.reply_text.to_string()
        }

        /// Expects connection.close with `code` (skipping other frames) and
        /// returns it, without answering.
        pub async fn expect_close(&mut self, code: u16) -> ConnectionClose {
            loop {
                match self.method().await {
                    Method::ConnectionClose(c) => {
                        assert_eq!(c.reply_code, code, "{}", c.reply_text);
                        return c;
                    }
                    _ => continue,
                }
            }
        }

        /// Expects the broker to close the socket without sending anything,
        /// within `within`; returns how long that took.
        pub async fn expect_silent_close(&mut self, within: Duration) -> Duration {
            let started = std::time::Instant::now();
            let mut rest = Vec::new();
            let read = tokio::time::timeout(within, self.socket.read_to_end(&mut rest)).await;
            assert!(read.is_ok(), "the broker closes the socket within {within:?}");
            assert!(
                rest.is_empty() && self.buf.is_empty(),
                "nothing is sent before the socket closes, got {rest:?}"
            );
            started.elapsed()
        }

        /// Protocol header and start-ok as guest; returns connection.tune.
        pub async fn started() -> (Raw, ConnectionTune) {
            let (mut raw, _) = Raw::start().await;
            raw.send_method(
                0,
                ConnectionStartOk {
                    mechanism: "PLAIN".into(),
                    response: Bytes::from_static(b"\0guest\0guest"),
                    locale: "en_US".into(),
                    ..Default::default()
                },
            )
            .await;
            match raw.method().await {
                Method::ConnectionTune(tune) => (raw, tune),
                other => panic!("expected connection.tune, got {other:?}"),
            }
        }
    }
}
