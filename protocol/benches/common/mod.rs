//! The frames the codec benchmark and `examples/decode_loop.rs` both decode:
//! basic.publish + a content header with two properties + a body of `size`
//! bytes, as one buffer.

use bytes::Bytes;
use warren_protocol::*;

pub fn publish_frames(size: usize) -> Bytes {
    let mut out = WriteBuffer::new();
    let method = Method::BasicPublish(BasicPublish {
        exchange: "amq.direct".into(),
        routing_key: "orders.created".into(),
        ..Default::default()
    });
    let properties = BasicProperties {
        content_type: Some("application/json".into()),
        delivery_mode: Some(2),
        ..Default::default()
    };
    let header = ContentHeader::new(60, size as u64, properties);
    encode_content(&mut out, 1, &method, &header, &Bytes::from(vec![7u8; size]), 131_072);
    out.to_bytes()
}
