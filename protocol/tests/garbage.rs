//! Hostile input never panics, hangs or allocates by a length field: random
//! bytes, random payloads behind valid frame headers, every prefix of valid
//! frames, and corrupted length fields all end in "need more bytes" or a
//! typed error.
//!
//! A counting allocator wraps the system one and records, per thread, the
//! largest single allocation made while decoding, so "never allocates by an
//! absurd length" is measured, not assumed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use warren_protocol::arbitrary::Arbitrary;
use warren_protocol::*;

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn note(size: usize) {
    // `try_with`: the allocator may run while the thread is being torn down.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The largest single allocation `f` made on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(0));
    f();
    LARGEST.with(|l| l.get())
}

/// No single allocation while decoding may exceed this plus the input's own
/// size: the cap on what a partial frame reserves (128 KiB) and slack.
const ALLOCATION_SLACK: usize = 192 * 1024;

/// Decodes frames until an error or "need more bytes", as a connection would,
/// with and without a frame_max; returns how it ended.
fn feed(bytes: &[u8]) -> Vec<std::result::Result<Option<()>, u16>> {
    let mut outcomes = Vec::new();
    for frame_max in [0, 131_072] {
        let mut outcome = Ok(None);
        let largest = largest_allocation(|| {
            let mut buf = BytesMut::from(bytes);
            // Every frame takes at least 8 bytes, so this always ends.
            loop {
                match decode_frame(&mut buf, frame_max) {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(e) => {
                        assert!(
                            [501, 502, 503].contains(&e.code),
                            "unexpected reply code {}: {}",
                            e.code,
                            e.text
                        );
                        outcome = Err(e.code);
                        break;
                    }
                }
            }
        });
        assert!(
            largest <= bytes.len() + ALLOCATION_SLACK,
            "decoding {} bytes allocated {largest} bytes at once",
            bytes.len()
        );
        outcomes.push(outcome);
    }
    outcomes
}

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![kind];
    frame.extend_from_slice(&channel.to_be_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame.push(0xCE);
    frame
}

/// Bytes that look like field-table content: type letters, small lengths,
/// and now and then an absurd one.
fn table_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(b"tbBsuIilLfdDSxATFVU_".to_vec()),
            3 => 0u8..8,
            1 => Just(0xFFu8),
            2 => any::<u8>(),
        ],
        0..300,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        feed(&bytes);
    }

    #[test]
    fn random_method_payloads_never_panic(class in prop_oneof![any::<u16>(), proptest::sample::select(vec![10u16, 20, 40, 50, 60, 85, 90])],
                                          method in prop_oneof![any::<u16>(), 0u16..130],
                                          args in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut payload = Vec::new();
        payload.extend_from_slice(&class.to_be_bytes());
        payload.extend_from_slice(&method.to_be_bytes());
        payload.extend_from_slice(&args);
        feed(&frame(1, 1, &payload));
    }

    #[test]
    fn random_table_arguments_never_panic(table in table_like_bytes(), claimed in prop_oneof![Just(None), any::<u32>().prop_map(Some)]) {
        // queue.declare whose arguments table is junk, with its true length
        // or an arbitrary one.
        let mut payload = vec![0u8, 50, 0, 10, 0, 0, 1, b'q', 0];
        let len = claimed.unwrap_or(table.len() as u32);
        payload.extend_from_slice(&len.to_be_bytes());
        payload.extend_from_slice(&table);
        feed(&frame(1, 1, &payload));
        // And as a table on its own.
        largest_allocation(|| { let _ = FieldTable::decode(&Bytes::from(table.clone()), 0); });
    }

    #[test]
    fn random_header_payloads_never_panic(flags in any::<u16>(), rest in table_like_bytes()) {
        let mut payload = vec![0u8, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
        payload.extend_from_slice(&flags.to_be_bytes());
        payload.extend_from_slice(&rest);
        feed(&frame(2, 1, &payload));
    }

    #[test]
    fn corrupted_valid_frames_never_panic(method in Method::arbitrary(), flip in any::<proptest::sample::Index>(), value in any::<u8>()) {
        let mut buf = BytesMut::new();
        encode_method(&mut buf, 1, &method);
        let at = flip.index(buf.len());
        buf[at] = value;
        feed(&buf);
    }

    #[test]
    fn corrupted_headers_never_panic(properties in BasicProperties::strategy(), flip in any::<proptest::sample::Index>(), value in any::<u8>()) {
        let mut buf = BytesMut::new();
        encode_header(&mut buf, 1, &ContentHeader::new(60, 3, properties));
        let at = flip.index(buf.len());
        buf[at] = value;
        feed(&buf);
    }
}

/// Valid frames of every kind: every method with non-default arguments, a
/// header with all 14 properties and a nested headers table, body frames
/// and a heartbeat.
fn valid_frames() -> Vec<Vec<u8>> {
    let mut table = FieldTable::new();
    table.insert("s", FieldValue::from("text"));
    table.insert("a", FieldValue::Array(vec![FieldValue::I32(1), FieldValue::from("x")]));
    table.insert("x", FieldValue::ByteArray(Bytes::from_static(b"bytes")));
    let mut nested = table.clone();
    nested.insert("t", FieldValue::Table(table.clone()));
    let mut frames = Vec::new();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = Method::arbitrary();
    for method in Method::all_defaults() {
        let mut buf = BytesMut::new();
        encode_method(&mut buf, 3, &method);
        frames.push(buf.to_vec());
    }
    for _ in 0..100 {
        let method = strategy.new_tree(&mut runner).unwrap().current();
        let mut buf = BytesMut::new();
        encode_method(&mut buf, 3, &method);
        frames.push(buf.to_vec());
    }
    let mut declare = BytesMut::new();
    encode_method(
        &mut declare,
        1,
        &QueueDeclare {
            queue: "q".into(),
            arguments: nested.clone(),
            ..Default::default()
        }
        .into(),
    );
    frames.push(declare.to_vec());
    let properties = BasicProperties {
        content_type: Some("text/plain".into()),
        content_encoding: Some("utf-8".into()),
        headers: Some(nested),
        delivery_mode: Some(2),
        priority: Some(1),
        correlation_id: Some("c".into()),
        reply_to: Some("r".into()),
        expiration: Some("1000".into()),
        message_id: Some("m".into()),
        timestamp: Some(1),
        kind: Some("k".into()),
        user_id: Some("u".into()),
        app_id: Some("a".into()),
        cluster_id: Some("c".into()),
    };
    let mut header = BytesMut::new();
    encode_header(&mut header, 1, &ContentHeader::new(60, 5, properties));
    frames.push(header.to_vec());
    frames.push(frame(3, 1, b"hello"));
    frames.push(frame(3, 1, b""));
    frames.push(frame(8, 0, b""));
    frames
}

#[test]
fn every_prefix_of_valid_frames_waits_for_more() {
    for whole in valid_frames() {
        for cut in 0..whole.len() {
            let largest = largest_allocation(|| {
                let mut partial = BytesMut::from(&whole[..cut]);
                assert_eq!(
                    decode_frame(&mut partial, 0).unwrap(),
                    None,
                    "a partial frame needs more bytes"
                );
                assert_eq!(partial.len(), cut, "nothing is consumed from a partial frame");
            });
            assert!(largest <= whole.len() + ALLOCATION_SLACK);
        }
        let mut buf = BytesMut::from(&whole[..]);
        assert!(decode_frame(&mut buf, 0).unwrap().is_some(), "the whole frame decodes");
        assert!(buf.is_empty());
    }
}

#[test]
fn corrupted_length_fields_are_errors_or_waits_never_panics() {
    // Overwrite every 4-byte and every 1-byte window of every valid frame
    // with lengths that are absurd, off by one, or zero. Whatever was a
    // length there (frame size, shortstr, longstr, table, array) lies.
    let longs = [u32::MAX, 0x8000_0000, 0x7FFF_FFFF, 0x0001_0000, 1, 0];
    let shorts = [0xFFu8, 0x80, 0x01, 0x00];
    for whole in valid_frames() {
        for at in 0..whole.len() {
            if at + 4 <= whole.len() {
                let original = u32::from_be_bytes(whole[at..at + 4].try_into().unwrap());
                for value in longs
                    .into_iter()
                    .chain([original.wrapping_add(1), original.wrapping_sub(1)])
                {
                    let mut bytes = whole.clone();
                    bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
                    feed(&bytes);
                }
            }
            for value in shorts
                .into_iter()
                .chain([whole[at].wrapping_add(1), whole[at].wrapping_sub(1)])
            {
                let mut bytes = whole.clone();
                bytes[at] = value;
                feed(&bytes);
            }
        }
    }
}

#[test]
fn absurd_lengths_inside_a_small_frame_are_errors_not_allocations() {
    // A field table claiming 4 GiB inside a 20-byte method frame.
    let mut payload = vec![0u8, 50, 0, 10, 0, 0, 1, b'q', 0];
    payload.extend_from_slice(&u32::MAX.to_be_bytes());
    let bytes = frame(1, 1, &payload);
    let largest = largest_allocation(|| {
        let mut buf = BytesMut::from(&bytes[..]);
        // A length past the payload does not fit the method's layout:
        // RabbitMQ's 501 "cannot decode".
        let e = decode_frame(&mut buf, 0).unwrap_err();
        assert_eq!((e.code, e.kind), (501, ErrorKind::Arguments), "{e}");
    });
    assert!(largest < 1024, "allocated {largest} bytes");
    // The same for a long string, a nested table, an array and a byte array
    // inside a table, and for a headers table in a content header.
    for letter in [b'S', b'F', b'A', b'x'] {
        let mut table = vec![1u8, b'k', letter];
        table.extend_from_slice(&u32::MAX.to_be_bytes());
        let largest = largest_allocation(|| {
            assert_eq!(FieldTable::decode(&Bytes::from(table), 0).unwrap_err().code, 502);
        });
        assert!(largest < 1024, "{} allocated {largest} bytes", letter as char);
    }
    let mut header = vec![0u8, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0];
    header.extend_from_slice(&u32::MAX.to_be_bytes());
    let bytes = frame(2, 1, &header);
    let largest = largest_allocation(|| {
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(decode_frame(&mut buf, 0).unwrap_err().code, 502);
    });
    assert!(largest < 1024, "allocated {largest} bytes");
}

#[test]
fn a_frame_claiming_4_gib_reserves_a_bounded_amount() {
    // Only the 7-byte header of a frame that claims 4 GiB: with no
    // frame_max (as before tuning) the decoder waits for more bytes but
    // reserves at most 128 KiB; with one, it is a 501 at once.
    let head = [3u8, 0, 1, 0xFF, 0xFF, 0xFF, 0xF0];
    let largest = largest_allocation(|| {
        let mut buf = BytesMut::from(&head[..]);
        assert_eq!(decode_frame(&mut buf, 0).unwrap(), None);
        assert!(buf.capacity() <= 128 * 1024 + 7, "reserved {}", buf.capacity());
    });
    assert!(largest <= 128 * 1024 + 64, "allocated {largest} bytes");
    let mut buf = BytesMut::from(&head[..]);
    assert_eq!(decode_frame(&mut buf, 131_072).unwrap_err().code, 501);
}

#[test]
fn nesting_deeper_than_the_limit_is_an_error_not_a_stack_overflow() {
    // Tables in tables, arrays in arrays, and the two alternating, far past
    // the limit of 100 levels.
    for shape in 0..3 {
        let mut value: Vec<u8> = vec![b'V'];
        for level in 0..10_000 {
            let array = match shape {
                0 => false,
                1 => true,
                _ => level % 2 == 0,
            };
            let mut outer = if array { vec![b'A'] } else { vec![b'F'] };
            let inner_len = if array { value.len() } else { value.len() + 2 };
            outer.extend_from_slice(&(inner_len as u32).to_be_bytes());
            if !array {
                outer.extend_from_slice(&[1, b'k']);
            }
            outer.extend_from_slice(&value);
            value = outer;
        }
        let mut table = vec![1u8, b'k'];
        table.extend_from_slice(&value);
        let err = FieldTable::decode(&Bytes::from(table), 0).unwrap_err();
        assert_eq!(err.code, 502);
        assert!(err.text.contains("nested too deeply"), "{}", err.text);
    }
}

#[test]
fn a_table_of_more_values_than_the_limit_is_an_error() {
    // 16,384 values decode; one more, at the top or nested in an array,
    // is refused (a value can take one byte on the wire and 40-72 bytes
    // in memory).
    let tiny = |count: usize| {
        let mut table = Vec::new();
        for _ in 0..count {
            table.extend_from_slice(&[1, b'k', b'V']);
        }
        table
    };
    let decoded = FieldTable::decode(&Bytes::from(tiny(MAX_VALUES)), 0).unwrap();
    assert_eq!(decoded.value_count(), MAX_VALUES);
    let err = FieldTable::decode(&Bytes::from(tiny(MAX_VALUES + 1)), 0).unwrap_err();
    assert_eq!(err.code, 502);
    assert!(err.text.contains("more than 16384 values"), "{}", err.text);

    let mut nested = vec![1u8, b'a', b'A'];
    nested.extend_from_slice(&(MAX_VALUES as u32).to_be_bytes());
    nested.extend(std::iter::repeat_n(b'V', MAX_VALUES));
    let err = FieldTable::decode(&Bytes::from(nested), 0).unwrap_err();
    assert!(err.text.contains("more than 16384 values"), "{}", err.text);

    // A frame's worth of tiny values (200,000) stops at the limit.
    let err = FieldTable::decode(&Bytes::from(tiny(200_000)), 0).unwrap_err();
    assert!(err.text.contains("more than 16384 values"), "{}", err.text);
}

#[test]
fn the_allocation_counter_counts() {
    let largest = largest_allocation(|| {
        std::hint::black_box(vec![0u8; 1 << 20]);
    });
    assert!(largest >= 1 << 20, "counted {largest}");
}
