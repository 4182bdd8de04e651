//! Connections: the handshake as lapin sees it (negotiated limits, refused
//! logins and vhosts), connection.start's server properties, the protocol
//! header, frame errors, and many channels on one connection.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use lapin::{Connection, ConnectionProperties};
use warren_conformance::lapin_util::*;
use warren_conformance::raw::Raw;
use warren_conformance::url_with;
use warren_protocol::*;

#[tokio::test]
async fn connect_and_close() {
    let connection = connect().await;
    assert!(connection.status().connected());
    assert_eq!(connection.status().vhost().as_str(), "/");
    assert_eq!(connection.status().username(), "guest");
    assert_connection_works(&connection).await;
    connection.close(200, "OK".into()).bounded().await.unwrap();
    assert_connection_closed(&connection).await;
}

#[tokio::test]
async fn lapin_negotiates_rabbitmqs_defaults() {
    let connection = connect().await;
    let config = connection.configuration();
    assert_eq!(
        (config.channel_max(), config.frame_max(), config.heartbeat()),
        (2047, 131_072, 60)
    );
    connection.close(200, "OK".into()).bounded().await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_403() {
    let refused = Connection::connect(&url_with("guest", "wrong", "/"), ConnectionProperties::default())
        .bounded()
        .await;
    assert_refused(
        refused,
        403,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
    );
}

#[tokio::test]
async fn an_unknown_vhost_is_refused_with_530() {
    let vhost = unique("no-such-vhost");
    let refused = Connection::connect(&url_with("guest", "guest", &vhost), ConnectionProperties::default())
        .bounded()
        .await;
    assert_refused(refused, 530, &format!("NOT_ALLOWED - vhost {vhost} not found"));
}

#[tokio::test]
async fn server_properties_announce_rabbitmqs_capabilities_and_mechanisms() {
    let (_raw, start) = Raw::start().await;
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    let mechanisms: BTreeSet<String> = String::from_utf8_lossy(&start.mechanisms)
        .split(' ')
        .map(str::to_string)
        .collect();
    assert!(
        mechanisms.contains("PLAIN") && mechanisms.contains("AMQPLAIN"),
        "{mechanisms:?}"
    );
    assert_eq!(String::from_utf8_lossy(&start.locales), "en_US");
    let props = &start.server_properties;
    for key in [
        "product",
        "version",
        "platform",
        "copyright",
        "information",
        "cluster_name",
    ] {
        let value = props.get(key).unwrap_or_else(|| panic!("server property {key}"));
        assert!(
            value.as_str().is_some_and(|s| !s.is_empty()),
            "{key} is a non-empty long string: {value:?}"
        );
    }
    let capabilities = props
        .get("capabilities")
        .and_then(FieldValue::as_table)
        .expect("a capabilities table");
    let announced: BTreeSet<String> = capabilities.iter().map(|(k, _)| k.to_string()).collect();
    let expected: BTreeSet<String> = [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(announced, expected, "exactly RabbitMQ 3.10's capabilities");
    for (key, value) in capabilities.iter() {
        assert_eq!(value, &FieldValue::Bool(true), "{key}");
    }
    if warren_conformance::external_broker() {
        return;
    }
    // Presented as RabbitMQ 3.x, which kombu (Celery) needs to pick
    // RabbitMQ's prefetch semantics; Warren's own name and version beside.
    assert_eq!(props.get("product").and_then(FieldValue::as_str), Some("RabbitMQ"));
    let version = props.get("version").and_then(FieldValue::as_str).unwrap_or_default();
    assert!(version.starts_with("3."), "a RabbitMQ 3.x version: {version}");
    assert!(
        props
            .get("information")
            .and_then(FieldValue::as_str)
            .is_some_and(|s| s.starts_with("Warren ")),
        "{props:?}"
    );
    assert!(props.get("warren_version").and_then(FieldValue::as_str).is_some());
}

#[tokio::test]
async fn amqplain_login_works() {
    let (mut raw, _) = Raw::start().await;
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

/// connection.start-ok with `mechanism` and `response`, announcing the
/// authentication_failure_close capability or not.
fn start_ok(mechanism: &str, response: &'static [u8], failure_close: bool) -> ConnectionStartOk {
    let mut client_properties = FieldTable::new();
    if failure_close {
        let mut capabilities = FieldTable::new();
        capabilities.insert("authentication_failure_close", FieldValue::Bool(true));
        client_properties.insert("capabilities", FieldValue::Table(capabilities));
    }
    ConnectionStartOk {
        client_properties,
        mechanism: mechanism.into(),
        response: Bytes::from_static(response),
        locale: "en_US".into(),
    }
}

#[tokio::test]
async fn a_wrong_password_is_a_403_close_for_clients_that_announce_authentication_failure_close() {
    let (mut raw, _) = Raw::start().await;
    raw.send_method(0, start_ok("PLAIN", b"\0guest\0wrong", true)).await;
    let text = raw.expect_connection_close(403).await;
    assert_eq!(
        text,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."
    );
}

#[tokio::test]
async fn a_wrong_password_closes_the_socket_silently_for_other_clients() {
    // RabbitMQ waits 3 s before closing (against password guessing).
    let (mut raw, _) = Raw::start().await;
    raw.send_method(0, start_ok("PLAIN", b"\0guest\0wrong", false)).await;
    let answer = raw.read_to_end().await;
    assert!(
        answer.is_empty(),
        "no connection.close, just the end of the socket: got {:?}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn an_unknown_mechanism_closes_the_socket_silently() {
    // Even with authentication_failure_close: the refusal is 503
    // COMMAND_INVALID, which RabbitMQ only logs during the handshake.
    let (mut raw, _) = Raw::start().await;
    raw.send_method(0, start_ok("NOPE", b"\0guest\0guest", true)).await;
    let answer = raw.read_to_end().await;
    assert!(
        answer.is_empty(),
        "no connection.close, just the end of the socket: got {:?}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn unsupported_protocol_headers_are_answered_with_ours_then_closed() {
    // Eight bytes each: bytes the broker never reads would turn its close
    // into a reset.
    for header in [
        &b"AMQP\x00\x00\x09\x00"[..],
        b"AMQP\x01\x01\x00\x0a",
        b"AMQP\x00\x01\x00\x00",
        b"HTTP/1.1",
    ] {
        let mut raw = Raw::connect().await;
        raw.send(header).await;
        let answer = raw.read_to_end().await;
        assert_eq!(answer, PROTOCOL_HEADER, "answer to {header:?}");
    }
}

#[tokio::test]
async fn a_bad_frame_end_octet_is_a_frame_error() {
    let mut raw = Raw::open().await;
    let mut out = BytesMut::new();
    encode_method(&mut out, 1, &ChannelOpen::default().into());
    let last = out.len() - 1;
    out[last] = 0x00;
    raw.send(&out).await;
    let text = raw.expect_connection_close(501).await;
    assert_eq!(
        text,
        "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}"
    );
}

#[tokio::test]
async fn many_channels_on_one_connection() {
    let connection = connect().await;
    let mut channels = Vec::new();
    for _ in 0..100 {
        channels.push(connection.create_channel().bounded().await.expect("channel"));
    }
    let ids: BTreeSet<u16> = channels.iter().map(|c| c.id()).collect();
    assert_eq!(ids.len(), 100, "distinct channel ids");
    // Each channel works on its own: its queue gets only its own message.
    let mut queues = Vec::new();
    for ch in &channels {
        let q = temp_queue(ch).await;
        publish(ch, "", &q, format!("on {}", ch.id()).as_bytes()).await;
        queues.push(q);
    }
    for (ch, q) in channels.iter().zip(&queues) {
        assert_eq!(drain(ch, q).await, [format!("on {}", ch.id())]);
    }
    for ch in channels.iter().step_by(2) {
        ch.close(200, "OK".into()).bounded().await.unwrap();
    }
    for ch in channels.iter().skip(1).step_by(2) {
        assert!(ch.status().connected(), "closing one channel leaves the others open");
    }
    connection.close(200, "OK".into()).bounded().await.unwrap();
}

#[tokio::test]
async fn the_channel_count_is_limited_by_channel_max() {
    let mut raw = Raw::open().await;
    for id in 1..=2047u16 {
        raw.send_method(id, ChannelOpen::default()).await;
    }
    for _ in 1..=2047 {
        assert!(matches!(raw.method().await, Method::ChannelOpenOk(_)));
    }
    raw.send_method(2048, ChannelOpen::default()).await;
    let text = raw.expect_connection_close(530).await;
    assert_eq!(
        text,
        "NOT_ALLOWED - number of channels opened (2047) has reached the negotiated channel_max (2047)"
    );
}

#[tokio::test]
async fn a_channel_number_above_channel_max_is_accepted() {
    // RabbitMQ limits how many channels are open, not their numbers.
    let mut raw = Raw::open().await;
    raw.open_channel(3000).await;
    raw.send_method(
        3000,
        QueueDeclare {
            exclusive: true,
            ..Default::default()
        },
    )
    .await;
    match raw.frame().await {
        Some(Frame::Method(3000, Method::QueueDeclareOk(ok))) => assert!(ok.queue.starts_with("amq.gen-")),
        other => panic!("expected queue.declare-ok on channel 3000, got {other:?}"),
    }
}
