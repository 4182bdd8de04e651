//! A cross-check against the amq-protocol crate (the codec lapin uses):
//! what this codec encodes, amq-protocol parses, and amq-protocol's own
//! encoding of what it parsed is byte-for-byte the same; and what
//! amq-protocol encodes, this codec decodes and encodes back identically.
//! Byte equality of canonical encodings means both sides read the same
//! values, for every method, content header and field table.
//!
//! Known differences, excluded here: amq-protocol does not keep reserved
//! arguments (tickets, connection.open's capabilities and insist,
//! channel.open's out-of-band, basic.qos's prefetch_size and the like) and
//! always writes them empty; amq-protocol keeps field tables in a
//! BTreeMap (it re-orders keys; we keep the sender's order), and it reads an
//! `L` value as signed and writes it as `l` (we keep `L` as unsigned 64-bit).

use amq_protocol::frame::{gen_frame, parse_frame, AMQPFrame, WriteContext};
use bytes::BytesMut;
use proptest::prelude::*;
use warren_protocol::arbitrary::Arbitrary;
use warren_protocol::*;

fn amq_parse(bytes: &[u8]) -> AMQPFrame {
    let (rest, frame) = parse_frame(bytes).expect("amq-protocol parses our frame");
    assert!(rest.is_empty(), "amq-protocol used the whole frame");
    frame
}

fn amq_encode(frame: &AMQPFrame) -> Vec<u8> {
    let ctx = gen_frame(frame)(WriteContext::from(Vec::new())).expect("amq-protocol encodes");
    ctx.write
}

fn ours_then_theirs(ours: &[u8]) {
    let theirs = amq_encode(&amq_parse(ours));
    assert_eq!(theirs, ours, "amq-protocol re-encoded our frame differently");
    // And the other way round: their bytes decode here to the same frame.
    let mut buf = BytesMut::from(&theirs[..]);
    let decoded = decode_frame(&mut buf, 0).unwrap().expect("a whole frame");
    let mut again = WriteBuffer::new();
    encode_frame(&mut again, &decoded);
    assert_eq!(&again.to_bytes()[..], ours);
}

#[test]
fn every_method_with_default_arguments() {
    for method in Method::all_defaults() {
        let mut buf = BytesMut::new();
        encode_method(&mut buf, 1, &method);
        ours_then_theirs(&buf);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn any_method(method in Method::arbitrary()) {
        let mut buf = BytesMut::new();
        encode_method(&mut buf, 3, &clear_reserved(method));
        ours_then_theirs(&buf);
    }

    #[test]
    fn any_content_header(properties in BasicProperties::strategy(), size in any::<u64>()) {
        let mut buf = BytesMut::new();
        encode_header(&mut buf, 2, &ContentHeader::new(60, size, properties));
        ours_then_theirs(&buf);
    }

    #[test]
    fn any_body_frame(body in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut out = WriteBuffer::new();
        encode_body(&mut out, 5, &bytes::Bytes::from(body), 0);
        let bytes = out.to_bytes();
        if !bytes.is_empty() {
            ours_then_theirs(&bytes);
        }
    }
}

/// Resets the reserved arguments amq-protocol does not keep.
fn clear_reserved(method: Method) -> Method {
    use Method::*;
    match method {
        ConnectionOpen(m) => ConnectionOpen(warren_protocol::ConnectionOpen {
            virtual_host: m.virtual_host,
            ..Default::default()
        }),
        ConnectionOpenOk(_) => ConnectionOpenOk(Default::default()),
        ChannelOpen(_) => ChannelOpen(Default::default()),
        ChannelOpenOk(_) => ChannelOpenOk(Default::default()),
        BasicGetEmpty(_) => BasicGetEmpty(Default::default()),
        ExchangeDeclare(m) => ExchangeDeclare(warren_protocol::ExchangeDeclare { ticket: 0, ..m }),
        ExchangeDelete(m) => ExchangeDelete(warren_protocol::ExchangeDelete { ticket: 0, ..m }),
        ExchangeBind(m) => ExchangeBind(warren_protocol::ExchangeBind { ticket: 0, ..m }),
        ExchangeUnbind(m) => ExchangeUnbind(warren_protocol::ExchangeUnbind { ticket: 0, ..m }),
        QueueDeclare(m) => QueueDeclare(warren_protocol::QueueDeclare { ticket: 0, ..m }),
        QueueBind(m) => QueueBind(warren_protocol::QueueBind { ticket: 0, ..m }),
        QueuePurge(m) => QueuePurge(warren_protocol::QueuePurge { ticket: 0, ..m }),
        QueueDelete(m) => QueueDelete(warren_protocol::QueueDelete { ticket: 0, ..m }),
        QueueUnbind(m) => QueueUnbind(warren_protocol::QueueUnbind { ticket: 0, ..m }),
        BasicConsume(m) => BasicConsume(warren_protocol::BasicConsume { ticket: 0, ..m }),
        BasicPublish(m) => BasicPublish(warren_protocol::BasicPublish { ticket: 0, ..m }),
        BasicGet(m) => BasicGet(warren_protocol::BasicGet { ticket: 0, ..m }),
        // RabbitMQ does not implement prefetch_size; amq-protocol drops it.
        BasicQos(m) => BasicQos(warren_protocol::BasicQos { prefetch_size: 0, ..m }),
        other => other,
    }
}
