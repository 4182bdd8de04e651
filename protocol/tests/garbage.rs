//! Hostile input never panics, hangs or allocates by a length field: random
//! bytes, every prefix of valid frames, and corrupted lengths all end in
//! "need more bytes" or a typed error.

use bytes::BytesMut;
use proptest::prelude::*;
use warren_protocol::*;

fn feed(bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    for _ in 0..1000 {
        match decode_frame(&mut buf, 131_072) {
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        feed(&bytes);
    }

    #[test]
    fn random_method_payloads_never_panic(class in any::<u16>(), method in any::<u16>(),
                                          args in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut payload = Vec::new();
        payload.extend_from_slice(&class.to_be_bytes());
        payload.extend_from_slice(&method.to_be_bytes());
        payload.extend_from_slice(&args);
        let mut frame = vec![1u8, 0, 1];
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&payload);
        frame.push(0xCE);
        feed(&frame);
    }

    #[test]
    fn corrupted_valid_frames_never_panic(method in Method::arbitrary(), flip in any::<proptest::sample::Index>(), value in any::<u8>()) {
        let mut buf = BytesMut::new();
        encode_method(&mut buf, 1, &method);
        let at = flip.index(buf.len());
        buf[at] = value;
        feed(&buf);
    }
}

#[test]
fn every_prefix_of_valid_frames_waits_for_more() {
    let mut out = WriteBuffer::new();
    for method in Method::all_defaults() {
        encode_method(out.buf(), 3, &method);
    }
    let bytes = out.to_bytes();
    let mut frame_start = 0;
    let mut buf = BytesMut::from(&bytes[..]);
    while let Some(_frame) = decode_frame(&mut buf, 0).unwrap() {
        let frame_end = bytes.len() - buf.len();
        for cut in frame_start..frame_end {
            let mut partial = BytesMut::from(&bytes[frame_start..cut]);
            assert_eq!(
                decode_frame(&mut partial, 0).unwrap(),
                None,
                "a partial frame needs more bytes"
            );
        }
        frame_start = frame_end;
    }
}

#[test]
fn absurd_lengths_inside_a_small_frame_are_errors_not_allocations() {
    // A field table claiming 4 GiB inside a 20-byte method frame.
    let mut payload = vec![0u8, 50, 0, 10, 0, 0, 1, b'q', 0];
    payload.extend_from_slice(&u32::MAX.to_be_bytes());
    let mut frame = vec![1u8, 0, 1];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame.push(0xCE);
    let mut buf = BytesMut::from(&frame[..]);
    assert_eq!(decode_frame(&mut buf, 0).unwrap_err().code, 502);
    // Tables nested deeper than the limit.
    let mut table = Vec::new();
    for _ in 0..200 {
        let mut outer = vec![1u8, b'k', b'F'];
        outer.extend_from_slice(&(table.len() as u32).to_be_bytes());
        outer.extend_from_slice(&table);
        table = outer;
    }
    let body = bytes::Bytes::from(table);
    assert!(FieldTable::decode(&body, 0).is_err());
}
