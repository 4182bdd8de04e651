//! Feeds arbitrary bytes to the frame decoder, as a socket would, and checks
//! that whatever decodes re-encodes, decodes again, and re-encodes to the
//! same bytes (bytes, not values: a NaN float is never equal to itself).
//!
//! `cd protocol/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run decode_frames`

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_protocol::{decode_frame, encode_frame, Frame, WriteBuffer};

fn encode(frame: &Frame) -> bytes::Bytes {
    let mut out = WriteBuffer::new();
    encode_frame(&mut out, frame);
    out.to_bytes()
}

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    for _ in 0..64 {
        match decode_frame(&mut buf, 131_072) {
            Ok(Some(frame)) => {
                let first = encode(&frame);
                let mut again = BytesMut::from(&first[..]);
                let decoded = decode_frame(&mut again, 0)
                    .expect("what we encode decodes")
                    .expect("a whole frame");
                assert_eq!(encode(&decoded), first);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
