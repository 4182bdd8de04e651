//! Feeds arbitrary bytes to the frame decoder, as a socket would, and checks:
//!
//! - it never panics (errors and "need more bytes" are fine);
//! - every frame that decodes re-encodes, decodes again to an equal frame,
//!   and re-encodes to the same bytes (values are compared unless they hold
//!   a NaN float, which is never equal to itself; bytes always are);
//! - the same bytes cut in two at an arbitrary point give the same frames
//!   and the same final outcome as when they arrive at once.
//!
//! `cd protocol/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run decode_frames`

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use warren_protocol::{decode_frame, encode_frame, Frame, WriteBuffer};

const FRAME_MAX: u32 = 131_072;

fn encode(frame: &Frame) -> Bytes {
    let mut out = WriteBuffer::new();
    encode_frame(&mut out, frame);
    out.to_bytes()
}

/// What decoding produced: each frame re-encoded, and how it ended
/// (`None` = waiting for more bytes, `Some(code)` = error).
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Bytes>,
    error: Option<u16>,
}

fn decode_pieces(pieces: &[&[u8]]) -> Outcome {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decode_frame(&mut buf, FRAME_MAX) {
                Ok(Some(frame)) => frames.push(check_round_trip(&frame)),
                Ok(None) => break,
                Err(e) => {
                    return Outcome {
                        frames,
                        error: Some(e.code),
                    }
                }
            }
        }
    }
    Outcome { frames, error: None }
}

#[allow(clippy::eq_op)]
fn check_round_trip(frame: &Frame) -> Bytes {
    let first = encode(frame);
    let mut again = BytesMut::from(&first[..]);
    let decoded = decode_frame(&mut again, 0)
        .expect("what we encode decodes")
        .expect("a whole frame");
    assert!(again.is_empty(), "one frame re-encodes as one frame");
    if frame == frame {
        // No NaN inside: the values must match exactly.
        assert_eq!(&decoded, frame);
    }
    assert_eq!(encode(&decoded), first);
    first
}

fuzz_target!(|data: &[u8]| {
    let whole = decode_pieces(&[data]);
    if let Some((&cut, _)) = data.split_first() {
        let at = usize::from(cut) * data.len() / 256;
        let split = decode_pieces(&[&data[..at], &data[at..]]);
        assert_eq!(split, whole, "cutting the input at {at} changed the result");
    }
});
