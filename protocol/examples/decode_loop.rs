//! The decode half of `benches/codec.rs` without criterion, for profilers
//! and for timing on a shared machine.
//!
//! `decode_loop <warren|amq> <body size> <iterations>` decodes a
//! basic.publish, its content header and its body `iterations` times,
//! exactly as the benchmark does (copy the wire bytes into a reused read
//! buffer, decode every frame).
//! Criterion's figures swing by a third when the other core is busy; two
//! things stay useful then:
//!
//! - instruction counts, which do not depend on load: run with 0 and with N
//!   iterations under `valgrind --tool=callgrind` and divide the difference
//!   by N (they miss what atomics and stalls cost, which perf shows);
//! - the best of several runs of each codec, alternating between them, so a
//!   burst of load cannot favour one side.

use amq_protocol::frame::parse_frame;
use bytes::BytesMut;
use std::hint::black_box;
use warren_protocol::*;

#[path = "../benches/common/mod.rs"]
mod common;
use common::publish_frames;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: decode_loop <warren|amq> <body size> <iterations>";
    let (Some(codec), Some(size), Some(iterations)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let size: usize = size.parse().expect(usage);
    let iterations: usize = iterations.parse().expect(usage);
    let bytes = publish_frames(size);
    match codec.as_str() {
        "warren" => {
            let mut read_buf = BytesMut::with_capacity(256 * 1024);
            for _ in 0..iterations {
                read_buf.extend_from_slice(&bytes);
                while let Some(frame) = decode_frame(&mut read_buf, 0).unwrap() {
                    black_box(frame);
                }
            }
        }
        "amq" => {
            let mut amq_buf: Vec<u8> = Vec::with_capacity(256 * 1024);
            for _ in 0..iterations {
                amq_buf.clear();
                amq_buf.extend_from_slice(&bytes);
                let mut input: &[u8] = &amq_buf;
                while !input.is_empty() {
                    let (rest, frame) = parse_frame(input).unwrap();
                    black_box(frame);
                    input = rest;
                }
            }
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
