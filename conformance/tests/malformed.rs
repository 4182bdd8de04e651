//! Malformed input and out-of-range negotiation on a raw socket, answered as
//! RabbitMQ 3.10.8 answers it. Every expectation here was first observed by
//! sending the same bytes to RabbitMQ 3.10.8: the reply code, text and
//! method ids of each close, or that the socket was dropped without a word
//! (at once, or after RabbitMQ's 3 s "silent close" delay).

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use warren_conformance::raw::Raw;
use warren_protocol::*;

fn frame(kind: u8, channel: u16, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u8(kind);
    out.put_u16(channel);
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
    out.put_u8(FRAME_END);
    out
}

fn method_frame(channel: u16, class: u16, method: u16, arguments: &[u8]) -> BytesMut {
    let mut payload = class.to_be_bytes().to_vec();
    payload.extend_from_slice(&method.to_be_bytes());
    payload.extend_from_slice(arguments);
    frame(frame_type::METHOD, channel, &payload)
}

/// The close's code, text and method ids.
fn parts(close: &ConnectionClose) -> (u16, &str, u16, u16) {
    (
        close.reply_code,
        close.reply_text.as_str(),
        close.class_id,
        close.method_id,
    )
}

#[tokio::test]
async fn arguments_that_do_not_decode_are_a_501_naming_the_bytes_and_the_method() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    raw.send(&method_frame(1, 50, 10, &[0, 0, 200, b'a', b'b', b'c'])).await;
    let close = raw.expect_close(501).await;
    assert_eq!(
        parts(&close),
        (501, "FRAME_ERROR - cannot decode <<0,0,200,97,98,99>>", 50, 10)
    );
}

#[tokio::test]
async fn bytes_after_the_last_argument_are_refused_too() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    // basic.qos with a stray octet after its global bit.
    raw.send(&method_frame(1, 60, 10, &[0, 0, 0, 0, 0, 1, 0, 7])).await;
    let close = raw.expect_close(501).await;
    assert_eq!(
        parts(&close),
        (501, "FRAME_ERROR - cannot decode <<0,0,0,0,0,1,0,7>>", 60, 10)
    );
}

#[tokio::test]
async fn a_long_reply_text_is_cut_to_255_bytes_as_rabbitmq_cuts_it() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    // queue.declare with a 100-character name and a table that claims 1000 bytes.
    let mut arguments = vec![0, 0, 100];
    arguments.extend_from_slice(&[b'q'; 100]);
    arguments.push(0);
    arguments.extend_from_slice(&1000u32.to_be_bytes());
    raw.send(&method_frame(1, 50, 10, &arguments)).await;
    let close = raw.expect_close(501).await;
    let text = close.reply_text.as_str();
    assert_eq!(text.len(), 255);
    assert!(
        text.starts_with("FRAME_ERROR - cannot decode <<0,0,100,113,113,"),
        "{text}"
    );
    assert!(text.ends_with("..."), "{text}");
}

#[tokio::test]
async fn a_field_table_that_does_not_parse_drops_the_socket_at_once() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    // exchange.declare "x" "direct" whose arguments hold a value of type 'Z'.
    let mut arguments = vec![0, 0, 1, b'x', 6];
    arguments.extend_from_slice(b"direct");
    arguments.push(0);
    let table = [3, b'f', b'o', b'o', b'Z', 0, 0, 0, 1];
    arguments.extend_from_slice(&(table.len() as u32).to_be_bytes());
    arguments.extend_from_slice(&table);
    raw.send(&method_frame(1, 40, 10, &arguments)).await;
    raw.expect_silent_close(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_short_string_that_is_not_utf8_is_a_501_without_method_ids() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    raw.send(&method_frame(1, 50, 10, &[0, 0, 2, 0xff, 0xfe, 0, 0, 0, 0, 0]))
        .await;
    let close = raw.expect_close(501).await;
    assert_eq!(parts(&close), (501, "FRAME_ERROR - Malformed UTF-8 in shortstr", 0, 0));
}

#[tokio::test]
async fn a_publish_whose_routing_key_is_not_utf8_is_accepted() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    raw.send_method(1, ConfirmSelect { nowait: false }).await;
    assert!(matches!(raw.method().await, Method::ConfirmSelectOk(_)));
    let mut out = method_frame(1, 60, 40, &[0, 0, 0, 1, 0xff, 0]);
    encode_header(&mut out, 1, &ContentHeader::new(60, 0, BasicProperties::default()));
    raw.send(&out).await;
    match raw.method().await {
        Method::BasicAck(ack) => assert_eq!(ack.delivery_tag, 1),
        other => panic!("expected basic.ack, got {other:?}"),
    }
}

#[tokio::test]
async fn a_method_on_channel_0_that_does_not_decode_is_an_internal_error() {
    let mut raw = Raw::open().await;
    raw.send(&method_frame(0, 50, 10, &[0, 0, 200, b'a', b'b', b'c'])).await;
    let close = raw.expect_close(541).await;
    assert_eq!(parts(&close), (541, "INTERNAL_ERROR", 0, 0));
}

#[tokio::test]
async fn a_channel_method_on_channel_0_is_a_channel_error_naming_it() {
    for (method, ids) in [
        (
            Method::from(QueueDeclare {
                queue: "q".into(),
                ..Default::default()
            }),
            (50, 10),
        ),
        (Method::from(ChannelOpen::default()), (20, 10)),
        (Method::from(BasicAck::default()), (60, 80)),
    ] {
        let mut raw = Raw::open().await;
        raw.send_method(0, method).await;
        let close = raw.expect_close(504).await;
        assert_eq!(
            parts(&close),
            (
                504,
                "CHANNEL_ERROR - unexpected method in connection state running",
                ids.0,
                ids.1
            )
        );
    }
}

#[tokio::test]
async fn content_frames_on_channel_0_are_shown_as_erlang_prints_them() {
    let mut raw = Raw::open().await;
    raw.send(&frame(frame_type::BODY, 0, b"hello")).await;
    let close = raw.expect_close(505).await;
    assert_eq!(
        parts(&close),
        (505, "UNEXPECTED_FRAME - type 3, all octets = <<\"hello\">>", 0, 0)
    );

    let mut raw = Raw::open().await;
    let mut out = BytesMut::new();
    encode_header(&mut out, 0, &ContentHeader::new(60, 5, BasicProperties::default()));
    raw.send(&out).await;
    let close = raw.expect_close(505).await;
    assert_eq!(
        close.reply_text.as_str(),
        "UNEXPECTED_FRAME - type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0,5,0,0>>"
    );
}

#[tokio::test]
async fn a_body_on_a_channel_never_opened_is_an_unexpected_frame() {
    let mut raw = Raw::open().await;
    raw.send(&frame(frame_type::BODY, 3, b"hello")).await;
    let text = raw.expect_connection_close(505).await;
    assert_eq!(
        text,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead"
    );
}

#[tokio::test]
async fn a_payload_of_exactly_frame_max_is_accepted() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    raw.send_method(1, ConfirmSelect { nowait: false }).await;
    assert!(matches!(raw.method().await, Method::ConfirmSelectOk(_)));
    let mut out = BytesMut::new();
    encode_method(
        &mut out,
        1,
        &BasicPublish {
            routing_key: "nowhere".into(),
            ..Default::default()
        }
        .into(),
    );
    encode_header(
        &mut out,
        1,
        &ContentHeader::new(60, 131_072, BasicProperties::default()),
    );
    out.put_slice(&frame(frame_type::BODY, 1, &vec![7u8; 131_072]));
    raw.send(&out).await;
    assert!(matches!(raw.method().await, Method::BasicAck(_)));
}

#[tokio::test]
async fn after_an_oversized_frame_nothing_more_is_read_and_the_socket_goes_3_s_later() {
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    let mut out = BytesMut::new();
    out.put_u8(frame_type::BODY);
    out.put_u16(1);
    out.put_u32(131_073);
    raw.send(&out).await;
    let close = raw.expect_close(501).await;
    assert_eq!(
        parts(&close),
        (
            501,
            "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,131073,131064}",
            0,
            0
        )
    );
    // close-ok is not read either: the socket stays until the delay is up.
    raw.send_method(0, ConnectionCloseOk {}).await;
    let waited = raw.expect_silent_close(Duration::from_secs(8)).await;
    assert!(waited >= Duration::from_secs(2), "closed after {waited:?}");
}

#[tokio::test]
async fn a_vhost_that_does_not_exist_is_refused_naming_connection_open() {
    let (mut raw, tune) = Raw::started().await;
    raw.tune_and_open(tune.channel_max, tune.frame_max, 0, "no-such-vhost")
        .await;
    let close = raw.expect_close(530).await;
    assert_eq!(
        parts(&close),
        (530, "NOT_ALLOWED - vhost no-such-vhost not found", 10, 40)
    );
}

#[tokio::test]
async fn limits_above_the_servers_in_tune_ok_end_the_handshake_silently() {
    // (channel_max, frame_max): above the server's, 0 ("no limit"), below 4096.
    let cases = [(2047, 131_073), (2047, 0), (2048, 131_072), (0, 131_072), (2047, 4095)];
    let runs = cases.into_iter().map(|(channel_max, frame_max)| async move {
        let (mut raw, _) = Raw::started().await;
        raw.tune_and_open(channel_max, frame_max, 0, "/").await;
        let waited = raw.expect_silent_close(Duration::from_secs(8)).await;
        assert!(
            waited >= Duration::from_secs(2),
            "channel_max {channel_max}, frame_max {frame_max}: closed after {waited:?}"
        );
    });
    futures::future::join_all(runs).await;
}

#[tokio::test]
async fn before_tuning_a_frame_may_carry_at_most_4096_bytes() {
    let (mut raw, _) = Raw::start().await;
    // A start-ok whose client properties fill the payload past 4096 bytes.
    let mut properties = FieldTable::new();
    properties.insert("padding", FieldValue::from("x".repeat(4100).as_str()));
    raw.send_method(
        0,
        ConnectionStartOk {
            client_properties: properties,
            mechanism: "PLAIN".into(),
            response: bytes::Bytes::from_static(b"\0guest\0guest"),
            locale: "en_US".into(),
        },
    )
    .await;
    let waited = raw.expect_silent_close(Duration::from_secs(8)).await;
    assert!(waited >= Duration::from_secs(2), "closed after {waited:?}");
}

#[tokio::test]
async fn after_close_ok_the_broker_reads_on_until_the_client_closes() {
    // A client that wrote publishes behind its connection.close (amqplib
    // does, with a full send buffer) must get close-ok, and not a reset
    // from a broker that closed first.
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    let mut out = BytesMut::new();
    encode_method(
        &mut out,
        0,
        &ConnectionClose {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        }
        .into(),
    );
    for _ in 0..100 {
        encode_method(
            &mut out,
            1,
            &BasicPublish {
                routing_key: "nowhere".into(),
                ..Default::default()
            }
            .into(),
        );
        encode_header(&mut out, 1, &ContentHeader::new(60, 0, BasicProperties::default()));
    }
    raw.send(&out).await;
    assert!(matches!(raw.method().await, Method::ConnectionCloseOk(_)));
    // The socket stays open: more bytes are still taken, nothing comes back.
    raw.send(&frame(frame_type::HEARTBEAT, 0, &[])).await;
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::io::AsyncReadExt::read(&mut raw.socket, &mut byte),
    )
    .await;
    assert!(
        read.is_err(),
        "the broker left the socket open for the client to close: {read:?}"
    );
}
