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
    assert_eq!(decode_frame(&mut buf, 0).unwrap_err().code, 502);
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
