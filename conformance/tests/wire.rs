//! Wire-level behaviour no client library will produce, on a raw socket:
//! malformed frames, frames out of order and heartbeats. Each connection
//! exception must come back as connection.close with the reply code and
//! text RabbitMQ sends, after which the broker closes the socket. (The
//! protocol header and the bad frame-end octet are in connection.rs.)

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use warren_conformance::raw::Raw;
use warren_protocol::*;

#[tokio::test]
async fn a_frame_larger_than_frame_max_is_a_frame_error() {
    let mut raw = Raw::open().await;
    let mut out = BytesMut::new();
    out.put_u8(frame_type::BODY);
    out.put_u16(1);
    out.put_u32(200_000);
    raw.send(&out).await;
    let text = raw.expect_connection_close(501).await;
    assert_eq!(
        text,
        "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,200000,131064}"
    );
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
    let text = raw.expect_connection_close(504).await;
    assert_eq!(text, "CHANNEL_ERROR - expected 'channel.open'");
}

#[tokio::test]
async fn content_without_a_publish_is_an_unexpected_frame() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    let mut out = BytesMut::new();
    encode_header(&mut out, 1, &ContentHeader::new(60, 3, BasicProperties::default()));
    raw.send(&out).await;
    let text = raw.expect_connection_close(505).await;
    assert_eq!(
        text,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead"
    );
}

#[tokio::test]
async fn a_method_where_content_was_expected_is_an_unexpected_frame() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
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
    let text = raw.expect_connection_close(505).await;
    assert_eq!(
        text,
        "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead"
    );
}

#[tokio::test]
async fn a_second_channel_open_is_a_channel_error() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    raw.send_method(1, ChannelOpen::default()).await;
    let text = raw.expect_connection_close(504).await;
    assert_eq!(text, "CHANNEL_ERROR - second 'channel.open' seen");
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

/// A frame of any type with `payload`, correctly framed.
fn frame(kind: u8, channel: u16, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u8(kind);
    out.put_u16(channel);
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
    out.put_u8(FRAME_END);
    out
}

#[tokio::test]
async fn an_unknown_frame_type_is_a_frame_error() {
    let mut raw = Raw::open().await;
    raw.send(&frame(9, 0, b"")).await;
    let text = raw.expect_connection_close(501).await;
    assert_eq!(text, "FRAME_ERROR - type 9, all octets = <<>>: unknown_frame");
}

#[tokio::test]
async fn a_heartbeat_on_a_channel_is_an_unexpected_frame() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    raw.send(&frame(frame_type::HEARTBEAT, 1, b"")).await;
    let text = raw.expect_connection_close(505).await;
    assert_eq!(text, "UNEXPECTED_FRAME - type 8, all octets = <<>>");
}

#[tokio::test]
async fn an_unknown_method_closes_the_socket_without_a_close() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    // class 60 (basic), method 99: no such method. RabbitMQ cannot parse it
    // and drops the connection without connection.close.
    raw.send(&frame(frame_type::METHOD, 1, &[0, 60, 0, 99])).await;
    let answer = raw.read_to_end().await;
    assert!(
        answer.is_empty(),
        "no connection.close, just the end of the socket: got {:?}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn a_body_longer_than_its_header_declares_leaves_the_channel_expecting_content() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    raw.send_method(
        1,
        BasicPublish {
            routing_key: "nowhere".into(),
            ..Default::default()
        },
    )
    .await;
    let mut out = BytesMut::new();
    encode_header(&mut out, 1, &ContentHeader::new(60, 3, BasicProperties::default()));
    raw.send(&out).await;
    // Four bytes where three were declared: RabbitMQ says nothing, still
    // waits for the rest of the body, and so refuses the next method.
    raw.send(&frame(frame_type::BODY, 1, b"four")).await;
    raw.send_method(
        1,
        QueueDeclare {
            exclusive: true,
            ..Default::default()
        },
    )
    .await;
    let text = raw.expect_connection_close(505).await;
    assert_eq!(
        text,
        "UNEXPECTED_FRAME - expected content body, got non content body frame instead"
    );
}

#[tokio::test]
async fn a_connection_method_on_a_channel_is_refused() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    raw.send_method(
        1,
        ConnectionOpen {
            virtual_host: "/".into(),
            ..Default::default()
        },
    )
    .await;
    let text = raw.expect_connection_close(503).await;
    assert_eq!(text, "COMMAND_INVALID - unimplemented method");
}
