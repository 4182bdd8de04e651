//! How malformed frames are reported: each case below was sent to RabbitMQ
//! 3.10.8 and the reply code, text, method ids and kind here are what it
//! answered (or, for the kind, how it reacted: a close, or a dropped socket).

use bytes::BytesMut;
use warren_protocol::*;

fn frame(kind: u8, channel: u16, payload: &[u8]) -> BytesMut {
    let mut frame = vec![kind];
    frame.extend_from_slice(&channel.to_be_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame.push(0xCE);
    BytesMut::from(&frame[..])
}

fn method_frame(class: u16, method: u16, arguments: &[u8]) -> BytesMut {
    let mut payload = class.to_be_bytes().to_vec();
    payload.extend_from_slice(&method.to_be_bytes());
    payload.extend_from_slice(arguments);
    frame(1, 1, &payload)
}

fn error_of(mut buf: BytesMut) -> ProtocolError {
    decode_frame(&mut buf, 131_072).expect_err("the frame is refused")
}

#[test]
fn arguments_cut_short_are_rabbitmqs_cannot_decode() {
    // queue.declare whose queue name claims 200 bytes and has 3.
    let e = error_of(method_frame(50, 10, &[0, 0, 200, b'a', b'b', b'c']));
    assert_eq!(e.kind, ErrorKind::Arguments);
    assert_eq!(
        (e.code, e.text.as_str(), e.class_id, e.method_id),
        (501, "cannot decode <<0,0,200,97,98,99>>", 50, 10)
    );
    // basic.publish with only its reserved short and an empty exchange.
    let e = error_of(method_frame(60, 40, &[0, 0, 0]));
    assert_eq!(
        (e.code, e.text.as_str(), e.class_id, e.method_id),
        (501, "cannot decode <<0,0,0>>", 60, 40)
    );
}

#[test]
fn trailing_bytes_after_the_arguments_are_refused() {
    let mut arguments = vec![0, 0, 9];
    arguments.extend_from_slice(b"probe.q1b");
    arguments.extend_from_slice(&[4, 0, 0, 0, 0, 0]);
    let e = error_of(method_frame(50, 10, &arguments));
    assert_eq!(e.kind, ErrorKind::Arguments);
    assert_eq!(
        e.text,
        "cannot decode <<0,0,9,112,114,111,98,101,46,113,49,98,4,0,0,0,0,0>>"
    );
    // Without the extra byte it decodes.
    let mut buf = method_frame(50, 10, &arguments[..arguments.len() - 1]);
    assert!(matches!(
        decode_frame(&mut buf, 131_072),
        Ok(Some(Frame::Method(1, Method::QueueDeclare(_))))
    ));
}

#[test]
fn a_field_table_with_broken_contents_is_its_own_kind() {
    // exchange.declare "x" "direct" with a table holding type 'Z'.
    let mut arguments = vec![0, 0, 1, b'x', 6];
    arguments.extend_from_slice(b"direct");
    arguments.push(0);
    let table = [3, b'f', b'o', b'o', b'Z', 0, 0, 0, 1];
    arguments.extend_from_slice(&(table.len() as u32).to_be_bytes());
    arguments.extend_from_slice(&table);
    let e = error_of(method_frame(40, 10, &arguments));
    assert_eq!(e.kind, ErrorKind::FieldTable);
    // A table whose length runs past the payload is a layout error instead.
    let mut arguments = vec![0, 0, 1, b'x', 6];
    arguments.extend_from_slice(b"direct");
    arguments.push(0);
    arguments.extend_from_slice(&100u32.to_be_bytes());
    arguments.extend_from_slice(&[3, b'f', b'o', b'o']);
    assert_eq!(error_of(method_frame(40, 10, &arguments)).kind, ErrorKind::Arguments);
}

#[test]
fn short_strings_must_be_utf8_except_in_content_bearing_methods() {
    let e = error_of(method_frame(50, 10, &[0, 0, 2, 0xff, 0xfe, 0, 0, 0, 0, 0]));
    assert_eq!(e.kind, ErrorKind::Utf8);
    assert_eq!((e.code, e.text.as_str()), (501, "Malformed UTF-8 in shortstr"));
    // basic.publish with routing key 0xff is taken as RabbitMQ takes it.
    let mut buf = method_frame(60, 40, &[0, 0, 0, 1, 0xff, 0]);
    match decode_frame(&mut buf, 131_072) {
        Ok(Some(Frame::Method(1, Method::BasicPublish(p)))) => assert_eq!(p.routing_key.as_str(), "\u{fffd}"),
        other => panic!("publish not decoded: {other:?}"),
    }
}

#[test]
fn a_payload_of_exactly_frame_max_is_accepted_one_more_is_not() {
    for size in [131_064usize, 131_072] {
        let mut buf = frame(3, 1, &vec![7u8; size]);
        match decode_frame(&mut buf, 131_072) {
            Ok(Some(Frame::Body(1, body))) => assert_eq!(body.len(), size),
            other => panic!("payload {size}: {other:?}"),
        }
    }
    for size in [131_073usize, 131_080] {
        let e = error_of(frame(3, 1, &vec![7u8; size]));
        assert_eq!(e.kind, ErrorKind::FrameTooLarge);
        assert_eq!(
            e.text,
            format!("type 3, all octets = <<>>: {{frame_too_large,{size},131064}}")
        );
    }
}

#[test]
fn an_unknown_method_is_its_own_kind() {
    assert_eq!(error_of(method_frame(50, 99, &[])).kind, ErrorKind::UnknownMethod);
}
