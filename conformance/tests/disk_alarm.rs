//! The disk alarm: below `--disk-free-limit` free bytes, a connection that
//! publishes gets connection.blocked (when it announced the capability) and
//! its further publishes are not read, as RabbitMQ's disk alarm does; other
//! connections keep working.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_protocol::*;

async fn read_method(socket: &mut TcpStream, buf: &mut BytesMut) -> Method {
    loop {
        if let Some(Frame::Method(_, m)) = decode_frame(buf, 0).unwrap() {
            return m;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read_buf(buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "socket closed");
    }
}

async fn send(socket: &mut TcpStream, channel: u16, method: impl Into<Method>) {
    let mut out = BytesMut::new();
    encode_method(&mut out, channel, &method.into());
    socket.write_all(&out).await.unwrap();
}

async fn publish(socket: &mut TcpStream, queue: &str, body: &'static [u8]) {
    let mut out = WriteBuffer::new();
    let method = Method::BasicPublish(BasicPublish {
        routing_key: queue.into(),
        ..Default::default()
    });
    let header = ContentHeader::new(60, body.len() as u64, BasicProperties::default());
    encode_content(&mut out, 1, &method, &header, &Bytes::from_static(body), 131_072);
    socket.write_all(&out.to_bytes()).await.unwrap();
}

/// Opens a connection announcing the connection.blocked capability.
async fn open(address: &str) -> (TcpStream, BytesMut) {
    let mut socket = TcpStream::connect(address).await.unwrap();
    let mut buf = BytesMut::new();
    socket.write_all(PROTOCOL_HEADER).await.unwrap();
    assert!(matches!(
        read_method(&mut socket, &mut buf).await,
        Method::ConnectionStart(_)
    ));
    let mut capabilities = FieldTable::new();
    capabilities.insert("connection.blocked", FieldValue::Bool(true));
    let mut props = FieldTable::new();
    props.insert("capabilities", FieldValue::Table(capabilities));
    send(
        &mut socket,
        0,
        ConnectionStartOk {
            client_properties: props,
            mechanism: "PLAIN".into(),
            response: Bytes::from_static(b"\0guest\0guest"),
            locale: "en_US".into(),
        },
    )
    .await;
    assert!(matches!(
        read_method(&mut socket, &mut buf).await,
        Method::ConnectionTune(_)
    ));
    send(
        &mut socket,
        0,
        ConnectionTuneOk {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 0,
        },
    )
    .await;
    send(
        &mut socket,
        0,
        ConnectionOpen {
            virtual_host: "/".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(
        read_method(&mut socket, &mut buf).await,
        Method::ConnectionOpenOk(_)
    ));
    send(&mut socket, 1, ChannelOpen::default()).await;
    assert!(matches!(
        read_method(&mut socket, &mut buf).await,
        Method::ChannelOpenOk(_)
    ));
    (socket, buf)
}

#[tokio::test]
async fn publishers_are_blocked_while_the_disk_is_low_and_consumers_are_not() {
    let mut config = warren::ephemeral_config();
    // More free space than any disk has: the alarm is raised at once.
    config.disk_free_limit = u64::MAX;
    let url = warren_conformance::start_background_broker(config);
    let address = url.rsplit('@').next().unwrap().split('/').next().unwrap().to_string();

    let (mut publisher, mut pbuf) = open(&address).await;
    send(
        &mut publisher,
        1,
        QueueDeclare {
            queue: "alarm".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(
        read_method(&mut publisher, &mut pbuf).await,
        Method::QueueDeclareOk(_)
    ));
    publish(&mut publisher, "alarm", b"first").await;
    let blocked = read_method(&mut publisher, &mut pbuf).await;
    match blocked {
        Method::ConnectionBlocked(blocked) => assert_eq!(blocked.reason.as_str(), "low on disk"),
        other => panic!("expected connection.blocked, got {other:?}"),
    }
    publish(&mut publisher, "alarm", b"second").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another connection still works, and sees only what was read before
    // the block.
    let (mut other, mut obuf) = open(&address).await;
    send(
        &mut other,
        1,
        QueueDeclare {
            queue: "alarm".into(),
            passive: true,
            ..Default::default()
        },
    )
    .await;
    match read_method(&mut other, &mut obuf).await {
        Method::QueueDeclareOk(ok) => assert_eq!(ok.message_count, 1, "the publish after the block was not taken"),
        other => panic!("expected declare-ok, got {other:?}"),
    }
}
