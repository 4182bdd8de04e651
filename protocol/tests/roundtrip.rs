//! Round trips through the codec: whatever is encoded decodes to the same
//! values, for every method, content headers with any of the 14 properties,
//! nested field tables, and streams of frames however they are split.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use warren_protocol::arbitrary::Arbitrary;
use warren_protocol::*;

fn decode_all(mut buf: BytesMut) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some(frame) = decode_frame(&mut buf, 0).expect("valid frames decode") {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "no bytes left over");
    frames
}

#[test]
fn every_method_with_default_arguments_round_trips() {
    let methods = Method::all_defaults();
    assert!(
        methods.len() >= 60,
        "all classes and methods of 0-9-1 with RabbitMQ's extensions"
    );
    for method in methods {
        let mut buf = BytesMut::new();
        encode_method(&mut buf, 7, &method);
        assert_eq!(
            decode_all(buf),
            vec![Frame::Method(7, method.clone())],
            "{}",
            method.name()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_method_round_trips(method in Method::arbitrary(), channel in any::<u16>()) {
        let mut buf = BytesMut::new();
        encode_method(&mut buf, channel, &method);
        prop_assert_eq!(decode_all(buf), vec![Frame::Method(channel, method)]);
    }

    #[test]
    fn content_headers_round_trip(properties in BasicProperties::strategy(), size in any::<u64>()) {
        let header = ContentHeader::new(60, size, properties);
        let mut buf = BytesMut::new();
        encode_header(&mut buf, 1, &header);
        let frames = decode_all(buf);
        let Frame::Header(1, decoded) = &frames[0] else { panic!("expected a header frame") };
        prop_assert_eq!(decoded.properties(), header.properties());
        prop_assert_eq!(decoded.body_size, size);
        // A decoded header re-encodes to the same bytes (it keeps them).
        let (mut again, mut original) = (BytesMut::new(), BytesMut::new());
        encode_header(&mut again, 1, decoded);
        encode_header(&mut original, 1, &header);
        prop_assert_eq!(again, original);
    }

    #[test]
    fn nested_field_tables_round_trip(table in warren_protocol::arbitrary::any_table()) {
        let mut buf = BytesMut::new();
        table.encode(&mut buf);
        let body = Bytes::copy_from_slice(&buf[4..]);
        prop_assert_eq!(FieldTable::decode(&body, 0).unwrap(), table);
    }

    #[test]
    fn a_stream_split_anywhere_decodes_the_same(
        methods in proptest::collection::vec(Method::arbitrary(), 1..6),
        body in proptest::collection::vec(any::<u8>(), 0..3000),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut out = WriteBuffer::new();
        for m in &methods {
            encode_method(out.buf(), 1, m);
        }
        let body = Bytes::from(body);
        let publish = Method::BasicPublish(BasicPublish::default());
        let header = ContentHeader::new(60, body.len() as u64, BasicProperties::default());
        // A small frame_max forces the body over several frames.
        encode_content(&mut out, 1, &publish, &header, &body, 4096);
        let bytes = out.to_bytes();
        let expected = decode_all(BytesMut::from(&bytes[..]));
        // Feed it in two pieces, cut at an arbitrary point.
        let at = cut.index(bytes.len() + 1);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in [&bytes[..at], &bytes[at..]] {
            buf.extend_from_slice(piece);
            while let Some(frame) = decode_frame(&mut buf, 0).unwrap() {
                frames.push(frame);
            }
        }
        prop_assert_eq!(&frames, &expected);
        let reassembled: Vec<u8> = frames
            .iter()
            .filter_map(|f| match f { Frame::Body(_, b) => Some(b.to_vec()), _ => None })
            .flatten()
            .collect();
        prop_assert_eq!(reassembled, body.to_vec());
    }
}

#[test]
fn consecutive_bits_pack_into_one_octet_least_significant_first() {
    let declare = QueueDeclare {
        queue: "q".into(),
        passive: true,
        durable: false,
        exclusive: true,
        auto_delete: false,
        nowait: true,
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    Method::from(declare).encode(&mut buf);
    // class, method, ticket, shortstr "q", then one octet of bits.
    let bits = buf[4 + 2 + 2];
    assert_eq!(bits, 0b0001_0101);
}

#[test]
fn frame_errors_carry_reply_code_501() {
    // Larger than frame_max.
    let mut buf = BytesMut::from(&[3u8, 0, 1, 0, 1, 0, 0][..]);
    assert_eq!(decode_frame(&mut buf, 4096).unwrap_err().code, 501);
    // Bad frame-end octet.
    let mut buf = BytesMut::new();
    encode_heartbeat(&mut buf);
    let last = buf.len() - 1;
    buf[last] = 0;
    assert_eq!(decode_frame(&mut buf, 0).unwrap_err().code, 501);
    // Unknown frame type.
    let mut buf = BytesMut::from(&[9u8, 0, 0, 0, 0, 0, 0, 0xCE][..]);
    assert_eq!(decode_frame(&mut buf, 0).unwrap_err().code, 501);
}

#[test]
fn unknown_methods_and_malformed_arguments_are_errors() {
    let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 4, 0, 99, 0, 1, 0xCE][..]);
    assert_eq!(decode_frame(&mut buf, 0).unwrap_err().code, 503);
    // queue.declare cut short inside its arguments.
    let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 6, 0, 50, 0, 10, 0, 0, 0xCE][..]);
    assert_eq!(decode_frame(&mut buf, 0).unwrap_err().code, 501);
}

#[test]
fn an_empty_body_frame_re_encodes_as_one_frame() {
    // Found by the fuzzer: a zero-length body frame is legal on the wire,
    // and encoding the decoded frame must give it back, not nothing.
    let frame = Frame::Body(4, Bytes::new());
    let mut out = WriteBuffer::new();
    encode_frame(&mut out, &frame);
    let bytes = out.to_bytes();
    assert_eq!(&bytes[..], &[3, 0, 4, 0, 0, 0, 0, 0xCE]);
    assert_eq!(decode_all(BytesMut::from(&bytes[..])), vec![frame]);
}

// ---------------------------------------------------------------------------
// Streaming: every split point, byte by byte, many frames at once.

/// A stream with every method, a content header with all 14 properties, a
/// body over several frames, an empty body frame and a heartbeat.
fn varied_stream() -> Bytes {
    let mut out = WriteBuffer::new();
    for (i, method) in Method::all_defaults().into_iter().enumerate() {
        encode_method(out.buf(), i as u16, &method);
    }
    let body = Bytes::from((0..300u32).map(|i| i as u8).collect::<Vec<u8>>());
    let header = ContentHeader::new(60, body.len() as u64, all_properties());
    let publish = Method::from(BasicPublish {
        exchange: "amq.topic".into(),
        routing_key: "a.b.c".into(),
        mandatory: true,
        ..Default::default()
    });
    // frame_max 64: the body goes out as six frames of at most 56 bytes.
    encode_content(&mut out, 3, &publish, &header, &body, 64);
    encode_frame(&mut out, &Frame::Body(3, Bytes::new()));
    encode_heartbeat(out.buf());
    out.to_bytes()
}

fn decode_in_pieces(pieces: &[&[u8]]) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        while let Some(frame) = decode_frame(&mut buf, 0).expect("valid frames decode") {
            frames.push(frame);
        }
    }
    assert!(buf.is_empty(), "no bytes left over");
    frames
}

#[test]
fn a_stream_split_at_every_byte_boundary_decodes_the_same() {
    let bytes = varied_stream();
    let expected = decode_all(BytesMut::from(&bytes[..]));
    assert_eq!(expected.len(), Method::all_defaults().len() + 1 + 1 + 6 + 1 + 1);
    for at in 0..=bytes.len() {
        assert_eq!(
            decode_in_pieces(&[&bytes[..at], &bytes[at..]]),
            expected,
            "stream cut at byte {at}"
        );
    }
}

#[test]
fn a_stream_fed_one_byte_at_a_time_decodes_the_same() {
    let bytes = varied_stream();
    let expected = decode_all(BytesMut::from(&bytes[..]));
    let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode_in_pieces(&pieces), expected);
}

#[test]
fn many_frames_in_one_buffer_come_out_one_by_one() {
    let mut buf = BytesMut::new();
    let mut expected = Vec::new();
    for tag in 0..10_000u64 {
        let ack = Method::from(BasicAck {
            delivery_tag: tag,
            multiple: tag % 3 == 0,
        });
        encode_method(&mut buf, (tag % 7) as u16, &ack);
        expected.push(Frame::Method((tag % 7) as u16, ack));
    }
    assert_eq!(decode_all(buf), expected);
}

#[test]
fn a_body_spanning_many_frames_reassembles() {
    let body = Bytes::from((0..1_000_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let header = ContentHeader::new(60, body.len() as u64, BasicProperties::default());
    let mut out = WriteBuffer::new();
    encode_content(
        &mut out,
        9,
        &BasicPublish::default().into(),
        &header,
        &body,
        FRAME_MIN_SIZE,
    );
    let mut buf = BytesMut::from(&out.to_bytes()[..]);
    let mut frames = Vec::new();
    // Decoding under the same frame_max accepts every frame.
    while let Some(frame) = decode_frame(&mut buf, FRAME_MIN_SIZE).unwrap() {
        frames.push(frame);
    }
    assert!(buf.is_empty());
    let bodies: Vec<&Bytes> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Body(9, b) => Some(b),
            _ => None,
        })
        .collect();
    let max_payload = FRAME_MIN_SIZE as usize - 8;
    assert_eq!(bodies.len(), body.len().div_ceil(max_payload));
    assert!(bodies.iter().all(|b| b.len() <= max_payload));
    let Frame::Header(9, decoded) = &frames[1] else {
        panic!("the header follows the method")
    };
    assert_eq!(decoded.body_size, body.len() as u64);
    let reassembled: Vec<u8> = bodies.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(reassembled, body.to_vec());
}

// ---------------------------------------------------------------------------
// Content headers: the 14 properties and their flag bits.

use warren_protocol::constants::FRAME_MIN_SIZE;

fn all_properties() -> BasicProperties {
    let mut headers = FieldTable::new();
    headers.insert("x-match", FieldValue::from("all"));
    BasicProperties {
        content_type: Some("application/json".into()),
        content_encoding: Some("gzip".into()),
        headers: Some(headers),
        delivery_mode: Some(2),
        priority: Some(5),
        correlation_id: Some("c-1".into()),
        reply_to: Some("replies".into()),
        expiration: Some("60000".into()),
        message_id: Some("m-1".into()),
        timestamp: Some(1_700_000_000),
        kind: Some("order".into()),
        user_id: Some("guest".into()),
        app_id: Some("shop".into()),
        cluster_id: Some("c".into()),
    }
}

/// Each property alone, with the flag bit the spec gives it (the first
/// property is the most significant bit of the flags word).
fn single_properties() -> Vec<(BasicProperties, u16)> {
    let all = all_properties();
    let none = BasicProperties::default();
    vec![
        (
            BasicProperties {
                content_type: all.content_type.clone(),
                ..none.clone()
            },
            1 << 15,
        ),
        (
            BasicProperties {
                content_encoding: all.content_encoding.clone(),
                ..none.clone()
            },
            1 << 14,
        ),
        (
            BasicProperties {
                headers: all.headers.clone(),
                ..none.clone()
            },
            1 << 13,
        ),
        (
            BasicProperties {
                delivery_mode: all.delivery_mode,
                ..none.clone()
            },
            1 << 12,
        ),
        (
            BasicProperties {
                priority: all.priority,
                ..none.clone()
            },
            1 << 11,
        ),
        (
            BasicProperties {
                correlation_id: all.correlation_id.clone(),
                ..none.clone()
            },
            1 << 10,
        ),
        (
            BasicProperties {
                reply_to: all.reply_to.clone(),
                ..none.clone()
            },
            1 << 9,
        ),
        (
            BasicProperties {
                expiration: all.expiration.clone(),
                ..none.clone()
            },
            1 << 8,
        ),
        (
            BasicProperties {
                message_id: all.message_id.clone(),
                ..none.clone()
            },
            1 << 7,
        ),
        (
            BasicProperties {
                timestamp: all.timestamp,
                ..none.clone()
            },
            1 << 6,
        ),
        (
            BasicProperties {
                kind: all.kind.clone(),
                ..none.clone()
            },
            1 << 5,
        ),
        (
            BasicProperties {
                user_id: all.user_id.clone(),
                ..none.clone()
            },
            1 << 4,
        ),
        (
            BasicProperties {
                app_id: all.app_id.clone(),
                ..none.clone()
            },
            1 << 3,
        ),
        (
            BasicProperties {
                cluster_id: all.cluster_id.clone(),
                ..none
            },
            1 << 2,
        ),
    ]
}

fn header_flags(properties: &BasicProperties) -> (u16, Frame) {
    let header = ContentHeader::new(60, 42, properties.clone());
    let mut buf = BytesMut::new();
    encode_header(&mut buf, 1, &header);
    // type, channel, size, class, weight, body size, then the flags.
    let flags = u16::from_be_bytes([buf[19], buf[20]]);
    (flags, decode_all(buf).remove(0))
}

#[test]
fn each_property_has_its_own_flag_bit_in_spec_order() {
    for (properties, bit) in single_properties() {
        let (flags, frame) = header_flags(&properties);
        assert_eq!(flags, bit, "{properties:?}");
        let Frame::Header(1, decoded) = frame else {
            panic!("a header")
        };
        assert_eq!(decoded.properties(), &properties);
    }
    let (flags, frame) = header_flags(&all_properties());
    assert_eq!(flags, 0xFFFC, "all 14 properties, no continuation");
    let Frame::Header(1, decoded) = frame else {
        panic!("a header")
    };
    assert_eq!(decoded.properties(), &all_properties());
}

#[test]
fn a_changed_header_re_encodes_from_its_values() {
    let mut buf = BytesMut::new();
    encode_header(&mut buf, 1, &ContentHeader::new(60, 1, all_properties()));
    let Frame::Header(_, mut header) = decode_all(buf).remove(0) else {
        panic!("a header")
    };
    header.properties_mut().priority = None;
    header.properties_mut().reply_to = Some("other".into());
    let mut again = BytesMut::new();
    encode_header(&mut again, 1, &header);
    let Frame::Header(_, decoded) = decode_all(again).remove(0) else {
        panic!("a header")
    };
    let expected = BasicProperties {
        priority: None,
        reply_to: Some("other".into()),
        ..all_properties()
    };
    assert_eq!(decoded.properties(), &expected);
}

// ---------------------------------------------------------------------------
// Field tables: every value type, nested deeply; floats bit for bit.

fn every_value_type() -> Vec<FieldValue> {
    use FieldValue as V;
    vec![
        V::Bool(true),
        V::I8(i8::MIN),
        V::U8(u8::MAX),
        V::I16(i16::MIN),
        V::U16(u16::MAX),
        V::I32(i32::MIN),
        V::U32(u32::MAX),
        V::I64(i64::MIN),
        V::U64(u64::MAX),
        V::F32(f32::MIN_POSITIVE),
        V::F64(f64::MAX),
        V::Decimal(3, 123_456),
        V::LongStr(Bytes::from_static("ünïcode".as_bytes())),
        V::ByteArray(Bytes::from_static(&[0, 1, 0xCE, 0xFF])),
        V::Array(vec![V::Void, V::I8(1)]),
        V::Timestamp(u64::MAX),
        V::Table(FieldTable::new()),
        V::Void,
    ]
}

#[test]
fn field_tables_nested_eight_levels_with_every_value_type_round_trip() {
    let mut table: FieldTable = every_value_type()
        .into_iter()
        .enumerate()
        .map(|(i, v)| (ShortStr::from(format!("{}-{i}", v.type_tag() as char)), v))
        .collect();
    for level in 0..8 {
        let mut outer = table.clone();
        // Alternate tables in arrays and arrays in tables.
        let nested = if level % 2 == 0 {
            FieldValue::Array(vec![FieldValue::Table(table), FieldValue::Array(every_value_type())])
        } else {
            FieldValue::Table(table)
        };
        outer.insert(format!("level-{level}"), nested);
        table = outer;
    }
    let mut buf = BytesMut::new();
    table.encode(&mut buf);
    let declare = Method::from(QueueDeclare {
        queue: "deep".into(),
        arguments: table.clone(),
        ..Default::default()
    });
    let mut frame = BytesMut::new();
    encode_method(&mut frame, 1, &declare);
    assert_eq!(decode_all(frame), vec![Frame::Method(1, declare)]);
    assert_eq!(FieldTable::decode(&buf.freeze().slice(4..), 0).unwrap(), table);
}

/// Equality that compares floats by their bits (NaN included).
fn same_bits(a: &FieldValue, b: &FieldValue) -> bool {
    match (a, b) {
        (FieldValue::F32(x), FieldValue::F32(y)) => x.to_bits() == y.to_bits(),
        (FieldValue::F64(x), FieldValue::F64(y)) => x.to_bits() == y.to_bits(),
        (FieldValue::Array(x), FieldValue::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_bits(x, y))
        }
        (FieldValue::Table(x), FieldValue::Table(y)) => same_table_bits(x, y),
        (x, y) => x == y,
    }
}

fn same_table_bits(a: &FieldTable, b: &FieldTable) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && same_bits(va, vb))
}

/// Any value, floats of any bit pattern (NaNs, infinities, subnormals),
/// nested up to five levels.
fn any_bits_value() -> impl Strategy<Value = FieldValue> {
    let leaf = prop_oneof![
        any::<u32>().prop_map(|b| FieldValue::F32(f32::from_bits(b))),
        any::<u64>().prop_map(|b| FieldValue::F64(f64::from_bits(b))),
        Just(FieldValue::F32(f32::NAN)),
        Just(FieldValue::F64(-f64::NAN)),
        warren_protocol::arbitrary::field_value(),
    ];
    leaf.prop_recursive(5, 64, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(FieldValue::Array),
            proptest::collection::vec((ShortStr::strategy(), inner), 0..5)
                .prop_map(|entries| FieldValue::Table(FieldTable(entries))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn field_tables_with_any_float_bits_round_trip(entries in proptest::collection::vec((ShortStr::strategy(), any_bits_value()), 0..6)) {
        let table = FieldTable(entries);
        let mut buf = BytesMut::new();
        table.encode(&mut buf);
        let decoded = FieldTable::decode(&buf.clone().freeze().slice(4..), 0).unwrap();
        prop_assert!(same_table_bits(&decoded, &table), "{:?} != {:?}", decoded, table);
        let mut again = BytesMut::new();
        decoded.encode(&mut again);
        prop_assert_eq!(again, buf);
    }

    #[test]
    fn content_headers_with_any_headers_table_round_trip(headers in warren_protocol::arbitrary::any_table(), properties in BasicProperties::strategy()) {
        // Properties from the strategy, headers of any shape (repeated keys,
        // any order, `L` values).
        let properties = BasicProperties { headers: Some(headers), ..properties };
        let mut buf = BytesMut::new();
        encode_header(&mut buf, 2, &ContentHeader::new(60, 0, properties.clone()));
        let Frame::Header(2, decoded) = decode_all(buf).remove(0) else { panic!("a header") };
        prop_assert_eq!(decoded.properties(), &properties);
    }
}

// ---------------------------------------------------------------------------
// Errors and their reply codes.

#[test]
fn frame_max_bounds_the_payload_and_is_checked_on_the_header_alone() {
    // As RabbitMQ's reader: a payload of up to frame_max is accepted (a
    // frame of frame_max + 8 bytes), since many clients fill it to there.
    let body = Frame::Body(1, Bytes::from(vec![0u8; 4096]));
    let mut out = WriteBuffer::new();
    encode_frame(&mut out, &body);
    let bytes = out.to_bytes();
    assert_eq!(bytes.len(), 4104);
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(decode_frame(&mut buf, 4096).unwrap(), Some(body));
    // One byte over: 501 as soon as the 7 header bytes are in.
    let mut buf = BytesMut::from(&bytes[..7]);
    let err = decode_frame(&mut buf, 4095).unwrap_err();
    assert_eq!(err.code, 501);
    assert!(err.text.contains("frame_too_large,4096,4087"), "{}", err.text);
}

#[test]
fn unknown_classes_and_methods_are_503_with_their_ids() {
    for (class, method) in [(99u16, 1u16), (60, 99), (10, 0), (0, 0), (30, 10)] {
        let mut payload = class.to_be_bytes().to_vec();
        payload.extend_from_slice(&method.to_be_bytes());
        let mut frame = vec![1u8, 0, 1];
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&payload);
        frame.push(0xCE);
        let mut buf = BytesMut::from(&frame[..]);
        let err = decode_frame(&mut buf, 0).unwrap_err();
        assert_eq!((err.code, err.class_id, err.method_id), (503, class, method));
        assert!(buf.is_empty(), "the bad frame is consumed");
    }
}

#[test]
fn malformed_arguments_are_501_and_headers_502() {
    // queue.declare cut inside its arguments: the error names the method.
    let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 7, 0, 50, 0, 10, 0, 0, 5, 0xCE][..]);
    let err = decode_frame(&mut buf, 0).unwrap_err();
    assert_eq!((err.code, err.class_id, err.method_id), (501, 50, 10));
    // A content header shorter than its fixed part.
    let mut buf = BytesMut::from(&[2u8, 0, 1, 0, 0, 0, 4, 0, 60, 0, 0, 0xCE][..]);
    assert_eq!(decode_frame(&mut buf, 0).unwrap_err().code, 502);
    // A content header with bytes after its properties.
    let mut header = BytesMut::new();
    encode_header(&mut header, 1, &ContentHeader::new(60, 0, BasicProperties::default()));
    let mut bytes = header.to_vec();
    bytes.insert(bytes.len() - 1, 0);
    bytes[6] += 1;
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(decode_frame(&mut buf, 0).unwrap_err().code, 502);
    // A shortstr that is not UTF-8 (basic.consume-ok's tag).
    let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 6, 0, 60, 0, 21, 1, 0xFF, 0xCE][..]);
    assert_eq!(decode_frame(&mut buf, 0).unwrap_err().code, 501);
    // An unknown field value type.
    let table = [0u8, 0, 0, 3, 1, b'k', b'Z'];
    let mut payload = vec![0u8, 50, 0, 10, 0, 0, 1, b'q', 0];
    payload.extend_from_slice(&table);
    let mut frame = vec![1u8, 0, 1];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame.push(0xCE);
    let mut buf = BytesMut::from(&frame[..]);
    assert_eq!(decode_frame(&mut buf, 0).unwrap_err().code, 502);
}

#[test]
fn a_heartbeat_keeps_its_channel() {
    // Found by the fuzzer: a heartbeat on a channel other than 0 (which the
    // broker must refuse) re-encoded on channel 0.
    let frame = Frame::Heartbeat(0xFFCE);
    let mut out = WriteBuffer::new();
    encode_frame(&mut out, &frame);
    let bytes = out.to_bytes();
    assert_eq!(&bytes[..], &[8, 0xFF, 0xCE, 0, 0, 0, 0, 0xCE]);
    assert_eq!(decode_all(BytesMut::from(&bytes[..])), vec![frame]);
}

// ---------------------------------------------------------------------------
// Bit packing: consecutive bits share an octet, first bit least significant.

/// The arguments of a method, after class and method ids.
fn arguments(method: impl Into<Method>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    method.into().encode(&mut buf);
    buf[4..].to_vec()
}

#[test]
fn each_bit_of_queue_declare_has_its_spec_position() {
    let base = QueueDeclare {
        queue: "q".into(),
        ..Default::default()
    };
    // ticket (2), shortstr "q" (2), then the bit octet, then the table.
    let cases = [
        (
            QueueDeclare {
                passive: true,
                ..base.clone()
            },
            0b0000_0001,
        ),
        (
            QueueDeclare {
                durable: true,
                ..base.clone()
            },
            0b0000_0010,
        ),
        (
            QueueDeclare {
                exclusive: true,
                ..base.clone()
            },
            0b0000_0100,
        ),
        (
            QueueDeclare {
                auto_delete: true,
                ..base.clone()
            },
            0b0000_1000,
        ),
        (
            QueueDeclare {
                nowait: true,
                ..base.clone()
            },
            0b0001_0000,
        ),
        (
            QueueDeclare {
                passive: true,
                durable: true,
                exclusive: true,
                auto_delete: true,
                nowait: true,
                ..base.clone()
            },
            0b0001_1111,
        ),
    ];
    for (declare, octet) in cases {
        let args = arguments(declare.clone());
        assert_eq!(args, [0, 0, 1, b'q', octet, 0, 0, 0, 0], "{declare:?}");
        // And the same bytes, written by hand, decode to those flags.
        let mut payload = vec![0u8, 50, 0, 10];
        payload.extend_from_slice(&args);
        assert_eq!(
            Method::decode(&Bytes::from(payload)).unwrap(),
            Method::QueueDeclare(declare)
        );
    }
}

#[test]
fn bits_of_other_methods_pack_the_same_way() {
    let s = ShortStr::from;
    // exchange.declare: passive, durable, auto-delete, internal, no-wait.
    let declare = ExchangeDeclare {
        exchange: s("e"),
        kind: s("t"),
        durable: true,
        internal: true,
        ..Default::default()
    };
    assert_eq!(arguments(declare)[6], 0b0000_1010);
    // basic.consume: no-local, no-ack, exclusive, no-wait.
    let consume = BasicConsume {
        no_ack: true,
        nowait: true,
        ..Default::default()
    };
    assert_eq!(arguments(consume)[4], 0b0000_1010);
    // queue.delete: if-unused, if-empty, no-wait.
    let delete = QueueDelete {
        if_empty: true,
        ..Default::default()
    };
    assert_eq!(arguments(delete)[3], 0b0000_0010);
    // basic.nack: delivery-tag, then multiple and requeue in one octet.
    let nack = BasicNack {
        delivery_tag: 1,
        multiple: false,
        requeue: true,
    };
    assert_eq!(arguments(nack), [0, 0, 0, 0, 0, 0, 0, 1, 0b10]);
    // basic.publish: mandatory, immediate.
    let publish = BasicPublish {
        immediate: true,
        ..Default::default()
    };
    assert_eq!(arguments(publish), [0, 0, 0, 0, 0b10]);
    // A bit followed by other fields takes a whole octet of its own:
    // basic.deliver's redelivered sits between a longlong and a shortstr.
    let deliver = BasicDeliver {
        consumer_tag: s("c"),
        delivery_tag: 2,
        redelivered: true,
        exchange: s("e"),
        routing_key: s("k"),
    };
    assert_eq!(
        arguments(deliver),
        [1, b'c', 0, 0, 0, 0, 0, 0, 0, 2, 1, 1, b'e', 1, b'k']
    );
    // Bits after a non-bit field start a new octet: connection.open's insist.
    let open = ConnectionOpen {
        virtual_host: s("/"),
        capabilities: s(""),
        insist: true,
    };
    assert_eq!(arguments(open), [1, b'/', 0, 1]);
}

#[test]
fn frames_stay_small() {
    // Frames are returned and moved by value; an inline property set once
    // made every frame 424 bytes and each move a large memcpy.
    assert!(std::mem::size_of::<Frame>() <= 144, "{}", std::mem::size_of::<Frame>());
}

#[test]
fn frame_errors_are_worded_as_rabbitmq_words_them() {
    let text = |bytes: &[u8], frame_max: u32| {
        let mut buf = BytesMut::from(bytes);
        decode_frame(&mut buf, frame_max).unwrap_err().to_string()
    };
    assert_eq!(
        text(&[1, 0, 1, 0, 0, 0, 5, 0, 20, 0, 10, 0, 0], 0),
        "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}"
    );
    assert_eq!(
        text(&[3, 0, 1, 0, 0, 0, 3, b'a', b'b', b'c', 7], 0),
        "FRAME_ERROR - type 3, all octets = <<\"abc\">>: {invalid_frame_end_marker,7}"
    );
    assert_eq!(
        text(&[9, 0, 0, 0, 0, 0, 0, 0xCE], 0),
        "FRAME_ERROR - type 9, all octets = <<>>: unknown_frame"
    );
    assert_eq!(
        text(&[3, 0, 1, 0, 3, 0x0D, 0x40], 131_072),
        "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,200000,131064}"
    );
}

#[test]
fn a_frame_error_text_does_not_grow_with_the_frame() {
    // A 128 KiB body frame with a bad end: the text shows the start of the
    // payload (more than a reply text can carry) and stops.
    let mut bytes = vec![3u8, 0, 1];
    bytes.extend_from_slice(&(131_064u32).to_be_bytes());
    bytes.extend(std::iter::repeat_n(0u8, 131_064));
    bytes.push(0);
    let mut buf = BytesMut::from(&bytes[..]);
    let err = decode_frame(&mut buf, 131_072).unwrap_err();
    assert_eq!(err.code, 501);
    assert!(err.text.len() > 255 && err.text.len() < 1024, "{}", err.text.len());
    assert!(err.text.starts_with("type 3, all octets = <<0,0,0,"));
    assert!(
        err.text.ends_with(",0...>>: {invalid_frame_end_marker,0}"),
        "{}",
        err.text
    );
}
