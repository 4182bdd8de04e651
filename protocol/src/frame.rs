//! Frames: the envelope around every method, content header, body chunk and
//! heartbeat, and the streaming decoder and encoders for them.
//!
//! [`decode_frame`] takes bytes as they arrive from a socket: a frame split
//! across reads waits for its remainder, many frames in one read come out one
//! by one, and what a frame keeps of the read buffer (a body, a long
//! property list, a method's long fields) is a slice of it, not a copy;
//! the rest is decoded in place.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::constants::{frame_type, reply_code, FRAME_END, FRAME_OVERHEAD, PROTOCOL_HEADER};
use crate::error::{ErrorKind, ProtocolError, Result};
use crate::field_table::FieldValue;
use crate::methods::Method;
use crate::properties::ContentHeader;

/// One decoded frame.
///
/// Kept small (144 bytes, the largest method): frames are returned and moved
/// by value, so a content header keeps its 14 properties, and its copy of
/// a short property list, behind a box.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Method(u16, Method),
    Header(u16, ContentHeader),
    Body(u16, Bytes),
    Heartbeat(u16),
}

impl Frame {
    pub fn channel(&self) -> u16 {
        match *self {
            Frame::Method(c, _) | Frame::Header(c, _) | Frame::Body(c, _) | Frame::Heartbeat(c) => c,
        }
    }
}

const _: () = assert!(std::mem::size_of::<Frame>() == 144);

/// What the first eight bytes of a connection were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolHeader {
    /// `AMQP 0 0 9 1`.
    Amqp091,
    /// Anything else: the server answers with its own header and closes.
    Unsupported,
}

/// Checks the protocol header once eight bytes have arrived; `None` until then.
pub fn decode_protocol_header(buf: &mut BytesMut) -> Option<ProtocolHeader> {
    if buf.len() < PROTOCOL_HEADER.len() {
        // A peer that already sent something else need not be waited for.
        if !PROTOCOL_HEADER.starts_with(buf) {
            buf.clear();
            return Some(ProtocolHeader::Unsupported);
        }
        return None;
    }
    let ok = &buf[..8] == PROTOCOL_HEADER;
    buf.advance(8);
    Some(if ok {
        ProtocolHeader::Amqp091
    } else {
        ProtocolHeader::Unsupported
    })
}

/// Decodes one frame from the front of `buf`, or returns `None` if more bytes
/// are needed. `frame_max` is the negotiated maximum frame size (0 means no
/// limit). As RabbitMQ's reader does, it bounds the payload rather than the
/// whole frame: many clients fill a frame's payload to exactly frame_max,
/// so a frame of up to frame_max + 8 bytes is accepted.
///
/// Inlined (its error paths are out of line): returning the frame through a
/// call costs a copy of it, which was a fifth of the time spent decoding a
/// small publish.
#[inline]
pub fn decode_frame(buf: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>> {
    if buf.len() < 7 {
        return Ok(None);
    }
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    let total = size + FRAME_OVERHEAD;
    if frame_max != 0 && size > frame_max as usize {
        return Err(frame_too_large(kind, size, frame_max));
    }
    if buf.len() < total {
        // Make room for the rest of the frame, but never more than a bounded
        // amount on the word of an unchecked length (frame_max 0 = no limit).
        let missing = total - buf.len();
        buf.reserve(if frame_max == 0 {
            missing.min(MAX_UNCHECKED_RESERVE)
        } else {
            missing
        });
        return Ok(None);
    }
    if buf[total - 1] != FRAME_END {
        return Err(bad_frame_end(kind, &buf[7..total - 1], buf[total - 1]));
    }
    // A payload that is kept (a body, a property list, a method with long
    // fields) is split off without the 7 header bytes and the frame end, and
    // is the only shared reference made for it (each costs an atomic
    // increment and decrement); others are decoded in place. Either way the
    // frame is consumed before an error in its payload is returned.
    buf.advance(7);
    let decoded = match kind {
        frame_type::METHOD => {
            let shares = size >= 4
                && Method::shares_payload(
                    u16::from_be_bytes([buf[0], buf[1]]),
                    u16::from_be_bytes([buf[2], buf[3]]),
                );
            let method = if shares {
                let payload = buf.split_to(size).freeze();
                buf.advance(1);
                Method::decode(&payload)
            } else {
                // Decoded in place: nothing of it outlives the read buffer.
                let method = Method::decode_borrowed(&buf[..size]);
                buf.advance(size + 1);
                method
            };
            match method {
                Ok(method) => Frame::Method(channel, method),
                Err(e) => return Err(on_channel(e, channel)),
            }
        }
        frame_type::HEADER if size >= ContentHeader::FIXED_LEN => {
            // class-id, weight and body-size are read in place; the
            // property list is kept as the raw properties: copied if short,
            // else split off (see `ContentHeader::shares_properties`).
            let class_id = u16::from_be_bytes([buf[0], buf[1]]);
            let body_size = u64::from_be_bytes(buf[4..12].try_into().expect("8 bytes"));
            buf.advance(ContentHeader::FIXED_LEN);
            let len = size - ContentHeader::FIXED_LEN;
            let header = if ContentHeader::shares_properties(&buf[..len]) {
                let list = buf.split_to(len).freeze();
                buf.advance(1);
                ContentHeader::from_shared_properties(class_id, body_size, list)
            } else {
                let header = ContentHeader::from_borrowed_properties(class_id, body_size, &buf[..len]);
                buf.advance(len + 1);
                header
            };
            match header {
                Ok(header) => Frame::Header(channel, header),
                Err(e) => return Err(on_channel(e, channel)),
            }
        }
        frame_type::HEADER => return Err(truncated_header(buf, size)),
        frame_type::BODY => {
            let payload = buf.split_to(size).freeze();
            buf.advance(1);
            Frame::Body(channel, payload)
        }
        frame_type::HEARTBEAT => {
            buf.advance(size + 1);
            Frame::Heartbeat(channel)
        }
        other => return Err(unknown_frame(buf, other, size)),
    };
    Ok(Some(decoded))
}

// The error paths of `decode_frame`, kept out of its inlined body. Texts are
// RabbitMQ's: the frame type, its payload as Erlang prints a binary, and
// the reason.

/// Names the channel of the frame an error was found in.
#[cold]
fn on_channel(e: ProtocolError, channel: u16) -> ProtocolError {
    ProtocolError { channel, ..e }
}

/// A binary as Erlang's `~p` prints it in RabbitMQ's reply texts:
/// `<<"hello">>` when every byte is printable, else `<<0,60,...>>`.
pub fn erlang_binary_text(bytes: &[u8]) -> String {
    erlang_binary(bytes)
}

#[cold]
fn frame_too_large(kind: u8, size: usize, frame_max: u32) -> ProtocolError {
    // The payload is not read yet; the text sets the size against frame_max
    // less the frame's overhead, as RabbitMQ's does.
    ProtocolError::new(
        ErrorKind::FrameTooLarge,
        reply_code::FRAME_ERROR,
        format!(
            "type {kind}, all octets = <<>>: {{frame_too_large,{size},{}}}",
            (frame_max as usize).saturating_sub(FRAME_OVERHEAD)
        ),
    )
}

#[cold]
fn bad_frame_end(kind: u8, payload: &[u8], end: u8) -> ProtocolError {
    ProtocolError::frame(format!(
        "type {kind}, all octets = {}: {{invalid_frame_end_marker,{end}}}",
        erlang_binary(payload),
    ))
}

/// Consumes the frame (its payload starts `buf`) and reports it.
#[cold]
fn truncated_header(buf: &mut BytesMut, size: usize) -> ProtocolError {
    buf.advance(size + 1);
    ProtocolError::new(
        ErrorKind::ContentHeader,
        reply_code::SYNTAX_ERROR,
        "truncated content header",
    )
}

/// Consumes the frame (its payload starts `buf`) and reports it.
#[cold]
fn unknown_frame(buf: &mut BytesMut, kind: u8, size: usize) -> ProtocolError {
    let octets = erlang_binary(&buf[..size]);
    buf.advance(size + 1);
    ProtocolError::new(
        ErrorKind::Framing,
        reply_code::FRAME_ERROR,
        format!("type {kind}, all octets = {octets}: unknown_frame"),
    )
}

/// The most `decode_frame` reserves for a partial frame when no frame_max
/// bounds its length: a peer's length field alone must not size an allocation.
const MAX_UNCHECKED_RESERVE: usize = 128 * 1024;

/// Bytes as Erlang prints a binary in RabbitMQ's frame errors: `<<"text">>`
/// when every byte is printable, `<<1,2,3>>` otherwise.
///
/// Only the first [`SHOWN_OCTETS`] are written (then `...`): a reply text is
/// a shortstr, so nothing past its first 255 bytes is ever sent, and the
/// text must not grow with a frame the peer chose to make large.
fn erlang_binary(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let shown = &bytes[..bytes.len().min(SHOWN_OCTETS)];
    let printable = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| (0x20..0x7f).contains(b) && *b != b'"' && *b != b'\\');
    let mut out = String::with_capacity(8 + 4 * shown.len());
    if printable {
        out.push_str("<<\"");
        out.push_str(&String::from_utf8_lossy(shown));
    } else {
        out.push_str("<<");
        for (i, b) in shown.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{b}");
        }
    }
    if shown.len() < bytes.len() {
        out.push_str("...");
    }
    out.push_str(if printable { "\">>" } else { ">>" });
    out
}

/// How many payload octets a frame error shows.
const SHOWN_OCTETS: usize = 256;

/// Writes a frame around whatever `payload` appends.
fn put_frame(buf: &mut BytesMut, kind: u8, channel: u16, payload: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(kind);
    buf.put_u16(channel);
    let size_at = buf.len();
    buf.put_u32(0);
    payload(buf);
    let size = (buf.len() - size_at - 4) as u32;
    buf[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    buf.put_u8(FRAME_END);
}

pub fn encode_method(buf: &mut BytesMut, channel: u16, method: &Method) {
    put_frame(buf, frame_type::METHOD, channel, |b| method.encode(b));
}

pub fn encode_header(buf: &mut BytesMut, channel: u16, header: &ContentHeader) {
    put_frame(buf, frame_type::HEADER, channel, |b| header.encode(b));
}

/// A header frame whose `headers` table has `key` set to `value` besides
/// what `header` holds (see [`ContentHeader::encode_with_header`]).
pub fn encode_header_with(buf: &mut BytesMut, channel: u16, header: &ContentHeader, key: &str, value: &FieldValue) {
    put_frame(buf, frame_type::HEADER, channel, |b| {
        header.encode_with_header(b, key, value)
    });
}

pub fn encode_heartbeat(buf: &mut BytesMut) {
    buf.put_slice(&[frame_type::HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

/// Any one frame, as it was (a body frame stays one frame, even empty);
/// for tests and tools. The broker uses the specific encoders.
pub fn encode_frame(out: &mut WriteBuffer, frame: &Frame) {
    match frame {
        Frame::Method(c, m) => encode_method(out.buf(), *c, m),
        Frame::Header(c, h) => encode_header(out.buf(), *c, h),
        Frame::Body(c, b) => put_body_frame(out, *c, b),
        // On the channel it came on: only channel 0 is legal (the broker
        // checks), but a decoded frame must re-encode as it was.
        Frame::Heartbeat(c) => put_frame(out.buf(), frame_type::HEARTBEAT, *c, |_| {}),
    }
}

fn put_body_frame(out: &mut WriteBuffer, channel: u16, payload: &Bytes) {
    let buf = out.buf();
    buf.put_u8(frame_type::BODY);
    buf.put_u16(channel);
    buf.put_u32(payload.len() as u32);
    out.put_shared(payload);
    out.buf().put_u8(FRAME_END);
}

/// Writes a message body as body frames of at most `frame_max` bytes each,
/// sharing the body's memory for large chunks instead of copying it.
pub fn encode_body(out: &mut WriteBuffer, channel: u16, body: &Bytes, frame_max: u32) {
    let max_payload = if frame_max == 0 {
        usize::MAX
    } else {
        (frame_max as usize).saturating_sub(FRAME_OVERHEAD).max(1)
    };
    if body.len() <= max_payload {
        // One frame: the body as it is (a small one is copied without
        // taking a slice, whose reference count costs more).
        if !body.is_empty() {
            put_body_frame(out, channel, body);
        }
        return;
    }
    let mut offset = 0;
    while offset < body.len() {
        let len = (body.len() - offset).min(max_payload);
        put_body_frame(out, channel, &body.slice(offset..offset + len));
        offset += len;
    }
}

/// Encodes a method that carries content, its header and its body frames.
pub fn encode_content(
    out: &mut WriteBuffer,
    channel: u16,
    method: &Method,
    header: &ContentHeader,
    body: &Bytes,
    frame_max: u32,
) {
    encode_method(out.buf(), channel, method);
    encode_header(out.buf(), channel, header);
    encode_body(out, channel, body, frame_max);
}

/// Bytes waiting to be written to a socket, as a list of chunks.
///
/// Small writes are gathered in one growing buffer; large message bodies are
/// kept as shared references to the message, so fanning a body out to many
/// consumers never copies it. The socket side writes the chunks with one
/// vectored write.
///
/// The buffer never grows by reallocation when it can help it (growing a
/// `BytesMut` copies all it holds, and a batch of deliveries doubled it
/// several times, copying its bytes about once more): when the space left
/// is short, what it holds becomes a chunk and a new buffer starts, as
/// large as the last flush was (so a busy connection writes a batch in a
/// chunk or two, and an idle one keeps no spare capacity once flushed).
#[derive(Debug, Default)]
pub struct WriteBuffer {
    chunks: Vec<Bytes>,
    current: BytesMut,
    /// How many bytes the last `take_chunks` took.
    last_flush: usize,
}

impl WriteBuffer {
    /// Bodies at least this large are shared, smaller ones copied.
    pub const SHARE_THRESHOLD: usize = 2048;
    /// The space `buf` makes sure of: a method or header frame's usual
    /// size (a larger one grows the buffer, copying only this chunk).
    const FRAME_SPARE: usize = 2048;
    /// The smallest and largest new buffer.
    const MIN_CHUNK: usize = 4096;
    const MAX_CHUNK: usize = 256 * 1024;

    pub fn new() -> Self {
        Self::default()
    }

    /// The buffer small writes go to.
    pub fn buf(&mut self) -> &mut BytesMut {
        self.make_room(Self::FRAME_SPARE);
        &mut self.current
    }

    /// At least `need` bytes of room in `current`: if it has less, what it
    /// holds becomes a chunk and a new buffer starts.
    #[inline]
    fn make_room(&mut self, need: usize) {
        if self.current.capacity() - self.current.len() < need {
            self.seal();
            let size = self.last_flush.clamp(Self::MIN_CHUNK, Self::MAX_CHUNK).max(need);
            self.current = BytesMut::with_capacity(size);
        }
    }

    /// Appends bytes, sharing rather than copying them when they are large.
    pub fn put_shared(&mut self, bytes: &Bytes) {
        if bytes.len() < Self::SHARE_THRESHOLD {
            self.make_room(bytes.len());
            self.current.put_slice(bytes);
        } else {
            self.seal();
            self.chunks.push(bytes.clone());
        }
    }

    fn seal(&mut self) {
        if !self.current.is_empty() {
            self.chunks.push(self.current.split().freeze());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.current.is_empty()
    }

    /// Total bytes waiting.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum::<usize>() + self.current.len()
    }

    /// Takes everything written so far, in order.
    pub fn take_chunks(&mut self) -> Vec<Bytes> {
        self.seal();
        // The rest of the buffer goes with its last chunk: an idle
        // connection holds no spare capacity.
        self.current = BytesMut::new();
        let chunks = std::mem::take(&mut self.chunks);
        self.last_flush = chunks.iter().map(Bytes::len).sum();
        chunks
    }

    /// Everything written so far as one contiguous buffer (copies; for tests).
    pub fn to_bytes(&mut self) -> Bytes {
        let mut all = BytesMut::with_capacity(self.len());
        for chunk in self.take_chunks() {
            all.put_slice(&chunk);
        }
        all.freeze()
    }
}
