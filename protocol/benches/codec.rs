//! Decode and encode of the publish path (basic.publish + content header +
//! body) at 16 B, 1 KiB and 64 KiB, with warren-protocol and, in the same
//! groups, with amq-protocol's parser and generator.
//!
//! `cargo bench -p warren-protocol --bench codec -- --warm-up-time 1 --measurement-time 3`
//! (figures in protocol/README.md).

use amq_protocol::frame::{gen_frame, parse_frame, AMQPContentHeader, AMQPFrame, WriteContext};
use amq_protocol::protocol::{basic, AMQPClass, BasicProperties as AmqProperties};
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
// std's black_box, not criterion 0.5's: criterion's (its stable fallback) is
// a volatile read of the whole value, which copied each 144-byte `Frame`
// two bytes at a time and cost more than some of the decoding measured.
// std's only makes the value opaque to the optimizer. Both codecs use it.
use std::hint::black_box;
use warren_protocol::*;

mod common;
use common::publish_frames;

fn amq_frames(size: usize) -> Vec<AMQPFrame> {
    let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "amq.direct".into(),
        routing_key: "orders.created".into(),
        mandatory: false,
        immediate: false,
    }));
    let properties = AmqProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2);
    let header = AMQPContentHeader {
        class_id: 60,
        body_size: size as u64,
        properties,
    };
    let mut frames = vec![AMQPFrame::Method(1, publish), AMQPFrame::Header(1, header)];
    for chunk in vec![7u8; size].chunks(131_064) {
        frames.push(AMQPFrame::Body(1, chunk.to_vec()));
    }
    frames
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode publish+header+body");
    for size in [16usize, 1024, 65536] {
        let bytes = publish_frames(size);
        group.throughput(Throughput::Elements(1));
        // Both sides copy the wire bytes into a reused read buffer (what a
        // socket read does in a broker), then decode every frame from it.
        let mut read_buf = BytesMut::with_capacity(256 * 1024);
        group.bench_with_input(BenchmarkId::new("warren-protocol", size), &bytes, |b, bytes| {
            b.iter(|| {
                read_buf.extend_from_slice(bytes);
                while let Some(frame) = decode_frame(&mut read_buf, 0).unwrap() {
                    black_box(frame);
                }
            })
        });
        let mut amq_buf: Vec<u8> = Vec::with_capacity(256 * 1024);
        group.bench_with_input(BenchmarkId::new("amq-protocol", size), &bytes, |b, bytes| {
            b.iter(|| {
                amq_buf.clear();
                amq_buf.extend_from_slice(bytes);
                let mut input: &[u8] = &amq_buf;
                while !input.is_empty() {
                    let (rest, frame) = parse_frame(input).unwrap();
                    black_box(frame);
                    input = rest;
                }
            })
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode publish+header+body");
    for size in [16usize, 1024, 65536] {
        group.throughput(Throughput::Elements(1));
        let method = Method::BasicPublish(BasicPublish {
            exchange: "amq.direct".into(),
            routing_key: "orders.created".into(),
            ..Default::default()
        });
        let header = ContentHeader::new(
            60,
            size as u64,
            BasicProperties {
                content_type: Some("application/json".into()),
                delivery_mode: Some(2),
                ..Default::default()
            },
        );
        let body = Bytes::from(vec![7u8; size]);
        let mut out = WriteBuffer::new();
        group.bench_function(BenchmarkId::new("warren-protocol", size), |b| {
            b.iter(|| {
                encode_content(&mut out, 1, &method, &header, &body, 131_072);
                black_box(out.take_chunks());
            })
        });
        let frames = amq_frames(size);
        let mut buffer = Vec::with_capacity(size + 1024);
        group.bench_function(BenchmarkId::new("amq-protocol", size), |b| {
            b.iter(|| {
                buffer.clear();
                let mut ctx = WriteContext::from(std::mem::take(&mut buffer));
                for frame in &frames {
                    ctx = gen_frame(frame)(ctx).unwrap();
                }
                buffer = ctx.write;
                black_box(&buffer);
            })
        });
    }
    group.finish();
}

criterion_group!(codec, decode, encode);
criterion_main!(codec);
