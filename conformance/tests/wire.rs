//! Wire-level behaviour no client library will produce, on a raw socket:
//! the protocol header, malformed frames, and frames out of order. Each
//! connection exception must come back as connection.close with the reply
//! code RabbitMQ sends, after which the broker closes the socket.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_protocol::*;

fn address() -> String {
    let url = warren_conformance::broker_url();
    let after_at = url.rsplit('@').next().unwrap_or(&url).to_string();
    after_at.split('/').next().unwrap_or("127.0.0.1:5672").to_string()
}

struct Raw {
    socket: TcpStream,
    buf: BytesMut,
}

impl Raw {
    async fn connect() -> Raw {
        Raw {
            socket: TcpStream::connect(address()).await.expect("connect"),
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.expect("write");
    }

    async fn send_method(&mut self, channel: u16, method: impl Into<Method>) {
        let mut out = BytesMut::new();
        encode_method(&mut out, channel, &method.into());
        self.send(&out).await;
    }

    /// The next frame, or None when the broker closed the socket.
    async fn frame(&mut self) -> Option<Frame> {
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

    async fn method(&mut self) -> Method {
        loop {
            match self.frame().await.expect("a frame") {
                Frame::Method(_, m) => return m,
                _ => continue,
            }
        }
    }

    /// Protocol header, start-ok (guest), tune-ok, open: an open connection
    /// without heartbeats.
    async fn open() -> Raw {
        Raw::open_with_heartbeat(0).await
    }

    async fn open_with_heartbeat(heartbeat: u16) -> Raw {
        let mut raw = Raw::connect().await;
        raw.send(PROTOCOL_HEADER).await;
        assert!(matches!(raw.method().await, Method::ConnectionStart(_)));
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
        let Method::ConnectionTune(tune) = raw.method().await else {
            panic!("expected connection.tune")
        };
        assert_eq!(
            (tune.channel_max, tune.frame_max, tune.heartbeat),
            (2047, 131_072, 60),
            "RabbitMQ's defaults"
        );
        raw.send_method(
            0,
            ConnectionTuneOk {
                channel_max: tune.channel_max,
                frame_max: tune.frame_max,
                heartbeat,
            },
        )
        .await;
        raw.send_method(
            0,
            ConnectionOpen {
                virtual_host: "/".into(),
                ..Default::default()
            },
        )
        .await;
        assert!(matches!(raw.method().await, Method::ConnectionOpenOk(_)));
        raw
    }

    /// Expects connection.close with `code`, answers close-ok, and expects
    /// the socket to be closed. Returns the reply text.
    async fn expect_connection_close(&mut self, code: u16) -> String {
        let close = loop {
            match self.method().await {
                Method::ConnectionClose(c) => break c,
                _ => continue,
            }
        };
        assert_eq!(close.reply_code, code, "{}", close.reply_text);
        self.send_method(0, ConnectionCloseOk {}).await;
        while self.frame().await.is_some() {}
        close.reply_text.to_string()
    }
}

#[tokio::test]
async fn an_unsupported_protocol_header_is_answered_with_ours_then_closed() {
    let mut raw = Raw::connect().await;
    raw.send(b"AMQP\x00\x00\x09\x00").await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), raw.socket.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the broker closes the socket");
    assert_eq!(answer, PROTOCOL_HEADER);
}

#[tokio::test]
async fn a_bad_frame_end_octet_is_a_frame_error() {
    let mut raw = Raw::open().await;
    let mut out = BytesMut::new();
    encode_method(&mut out, 1, &ChannelOpen::default().into());
    let last = out.len() - 1;
    out[last] = 0x00;
    raw.send(&out).await;
    raw.expect_connection_close(501).await;
}

#[tokio::test]
async fn a_frame_larger_than_frame_max_is_a_frame_error() {
    let mut raw = Raw::open().await;
    let mut out = BytesMut::new();
    out.put_u8(frame_type::BODY);
    out.put_u16(1);
    out.put_u32(200_000);
    raw.send(&out).await;
    raw.expect_connection_close(501).await;
}

#[tokio::test]
async fn a_method_on_a_channel_not_opened_is_a_channel_error() {
    let mut raw = Raw::open().await;
    raw.send_method(
        5,
        QueueDeclare {
            queue: "x".into(),
            ..Default::default()
        },
    )
    .await;
    raw.expect_connection_close(504).await;
}

#[tokio::test]
async fn content_without_a_publish_is_an_unexpected_frame() {
    let mut raw = Raw::open().await;
    raw.send_method(1, ChannelOpen::default()).await;
    assert!(matches!(raw.method().await, Method::ChannelOpenOk(_)));
    let mut out = BytesMut::new();
    encode_header(&mut out, 1, &ContentHeader::new(60, 3, BasicProperties::default()));
    raw.send(&out).await;
    raw.expect_connection_close(505).await;
}

#[tokio::test]
async fn a_method_where_content_was_expected_is_an_unexpected_frame() {
    let mut raw = Raw::open().await;
    raw.send_method(1, ChannelOpen::default()).await;
    assert!(matches!(raw.method().await, Method::ChannelOpenOk(_)));
    raw.send_method(
        1,
        BasicPublish {
            routing_key: "q".into(),
            ..Default::default()
        },
    )
    .await;
    raw.send_method(
        1,
        BasicQos {
            prefetch_count: 1,
            ..Default::default()
        },
    )
    .await;
    raw.expect_connection_close(505).await;
}

#[tokio::test]
async fn a_second_channel_open_is_a_channel_error() {
    let mut raw = Raw::open().await;
    raw.send_method(1, ChannelOpen::default()).await;
    assert!(matches!(raw.method().await, Method::ChannelOpenOk(_)));
    raw.send_method(1, ChannelOpen::default()).await;
    raw.expect_connection_close(504).await;
}

#[tokio::test]
async fn many_channels_on_one_connection() {
    let mut raw = Raw::open().await;
    for id in 1..=200u16 {
        raw.send_method(id, ChannelOpen::default()).await;
    }
    for _ in 1..=200 {
        assert!(matches!(raw.method().await, Method::ChannelOpenOk(_)));
    }
    raw.send_method(
        0,
        ConnectionClose {
            reply_code: 200,
            reply_text: "bye".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(raw.method().await, Method::ConnectionCloseOk(_)));
}

#[tokio::test]
async fn heartbeats_are_sent_and_a_silent_client_is_disconnected() {
    // Ask for a 1 s heartbeat, then never send anything again.
    let mut raw = Raw::open_with_heartbeat(1).await;
    let started = std::time::Instant::now();
    let mut heartbeats = 0;
    while let Some(frame) = raw.frame().await {
        if let Frame::Heartbeat(0) = frame {
            heartbeats += 1;
        }
    }
    let elapsed = started.elapsed();
    assert!(heartbeats >= 1, "the broker sends heartbeats");
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(5),
        "a client silent for two intervals is disconnected (after {elapsed:?})"
    );
}

#[tokio::test]
async fn server_properties_announce_rabbitmqs_capabilities_and_mechanisms() {
    let mut raw = Raw::connect().await;
    raw.send(PROTOCOL_HEADER).await;
    let Method::ConnectionStart(start) = raw.method().await else {
        panic!("expected connection.start")
    };
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    let mechanisms = String::from_utf8_lossy(&start.mechanisms).to_string();
    assert!(mechanisms.split(' ').any(|m| m == "PLAIN"), "{mechanisms}");
    assert!(mechanisms.split(' ').any(|m| m == "AMQPLAIN"), "{mechanisms}");
    let capabilities = start
        .server_properties
        .get("capabilities")
        .and_then(FieldValue::as_table)
        .expect("a capabilities table");
    for capability in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        assert_eq!(
            capabilities.get(capability),
            Some(&FieldValue::Bool(true)),
            "{capability}"
        );
    }
    for key in ["product", "version", "platform"] {
        assert!(start.server_properties.get(key).is_some(), "{key}");
    }
}

#[tokio::test]
async fn amqplain_login_works() {
    let mut raw = Raw::connect().await;
    raw.send(PROTOCOL_HEADER).await;
    assert!(matches!(raw.method().await, Method::ConnectionStart(_)));
    let mut credentials = FieldTable::new();
    credentials.insert("LOGIN", FieldValue::from("guest"));
    credentials.insert("PASSWORD", FieldValue::from("guest"));
    let mut encoded = BytesMut::new();
    credentials.encode(&mut encoded);
    raw.send_method(
        0,
        ConnectionStartOk {
            mechanism: "AMQPLAIN".into(),
            // The table without its length prefix, as clients send it.
            response: Bytes::copy_from_slice(&encoded[4..]),
            locale: "en_US".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        matches!(raw.method().await, Method::ConnectionTune(_)),
        "AMQPLAIN accepted"
    );
}
