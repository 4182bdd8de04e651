//! Reading and writing the primitive argument types of AMQP methods:
//! octet, short, long, longlong, bit, shortstr, longstr and table.
//!
//! The [`Reader`] parses with nom over a payload. Short strings are copied
//! out (see [`ShortStr`]); long strings, byte fields and tables come out as
//! zero-copy slices when the payload is a shared [`Bytes`], and are copied
//! from a borrowed payload (the decoder only borrows the payloads of methods
//! that have no such fields, see `Method::shares_payload`). Consecutive `bit` arguments
//! share one octet, as the spec requires; both sides track that packing here
//! so method definitions stay a plain list of typed fields.

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};
use nom::IResult;

use crate::error::{ErrorKind, ProtocolError, Result};
use crate::field_table::FieldTable;
use crate::types::ShortStr;

/// A cursor over a method or header payload.
pub struct Reader<'a> {
    buf: &'a [u8],
    /// The shared buffer `buf` is, if any: long fields are sliced from it.
    shared: Option<&'a Bytes>,
    pos: usize,
    /// The octet holding the current run of bits, and how many are used.
    bits: u8,
    bits_used: u8,
    /// Short strings that are not UTF-8 are taken with replacement
    /// characters instead of refused (content-bearing methods, which
    /// RabbitMQ does not check).
    lossy_utf8: bool,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a Bytes) -> Self {
        Reader {
            buf,
            shared: Some(buf),
            pos: 0,
            bits: 0,
            bits_used: 8,
            lossy_utf8: false,
        }
    }

    /// A reader over borrowed bytes: long fields are copied out of them.
    pub fn borrowed(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            shared: None,
            pos: 0,
            bits: 0,
            bits_used: 8,
            lossy_utf8: false,
        }
    }

    /// Takes short strings that are not UTF-8 with replacement characters.
    pub fn accept_invalid_utf8(&mut self) {
        self.lossy_utf8 = true;
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// Runs a nom parser on the unread bytes and advances past what it used.
    #[inline]
    fn parse<T>(&mut self, what: &str, parser: impl FnOnce(&'a [u8]) -> IResult<&'a [u8], T>) -> Result<T> {
        let input: &'a [u8] = &self.buf[self.pos..];
        match parser(input) {
            Ok((rest, value)) => {
                self.pos = self.buf.len() - rest.len();
                self.bits_used = 8;
                Ok(value)
            }
            Err(_) => Err(malformed(what)),
        }
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8> {
        self.parse("octet", be_u8)
    }

    #[inline]
    pub fn u16(&mut self) -> Result<u16> {
        self.parse("short", be_u16)
    }

    #[inline]
    pub fn u32(&mut self) -> Result<u32> {
        self.parse("long", be_u32)
    }

    #[inline]
    pub fn u64(&mut self) -> Result<u64> {
        self.parse("longlong", be_u64)
    }

    #[inline]
    pub fn bit(&mut self) -> Result<bool> {
        if self.bits_used == 8 {
            self.bits = self.u8()?;
            self.bits_used = 0;
        }
        let value = self.bits & (1 << self.bits_used) != 0;
        self.bits_used += 1;
        Ok(value)
    }

    /// The next `len` bytes, borrowed.
    #[inline]
    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8]> {
        if self.remaining() < len {
            return Err(truncated(what));
        }
        let buf: &'a [u8] = self.buf;
        let taken = &buf[self.pos..self.pos + len];
        self.pos += len;
        self.bits_used = 8;
        Ok(taken)
    }

    /// `len` bytes as a slice of the shared buffer (a copy if borrowed).
    pub fn bytes(&mut self, len: usize, what: &str) -> Result<Bytes> {
        let start = self.pos;
        let taken = self.take(len, what)?;
        Ok(match self.shared {
            Some(shared) => shared.slice(start..start + len),
            None => Bytes::copy_from_slice(taken),
        })
    }

    /// A shortstr, copied out (no reference to the buffer is kept).
    /// Always inlined so the string is built where it is stored (see
    /// `ShortStr::from_utf8`).
    #[inline(always)]
    pub fn short_str(&mut self) -> Result<ShortStr> {
        let len = self.u8()? as usize;
        let bytes = self.take(len, "short string")?;
        match ShortStr::from_utf8(bytes) {
            Some(s) => Ok(s),
            None => self.invalid_utf8(bytes),
        }
    }

    #[cold]
    fn invalid_utf8(&self, bytes: &[u8]) -> Result<ShortStr> {
        if self.lossy_utf8 {
            return Ok(ShortStr::from(String::from_utf8_lossy(bytes).as_ref()));
        }
        Err(ProtocolError::new(
            ErrorKind::Utf8,
            crate::constants::reply_code::FRAME_ERROR,
            "Malformed UTF-8 in shortstr",
        ))
    }

    pub fn long_str(&mut self) -> Result<Bytes> {
        let len = self.u32()? as usize;
        self.bytes(len, "long string")
    }

    pub fn table(&mut self) -> Result<FieldTable> {
        let len = self.u32()? as usize;
        let bytes = self.bytes(len, "field table")?;
        FieldTable::decode(&bytes, 0)
    }
}

// The error paths of the reader, out of line: the reads themselves are
// inlined into the method and property decoders (returned through memory,
// each `Result` was a store and a reload the caller stalled on; perf put
// 8% of method decoding on each bit read of basic.publish).

#[cold]
fn malformed(what: &str) -> ProtocolError {
    ProtocolError::arguments(format!("truncated or malformed {what}"))
}

#[cold]
fn truncated(what: &str) -> ProtocolError {
    ProtocolError::arguments(format!("truncated {what}"))
}

/// Appends method arguments to a buffer, packing consecutive bits.
pub struct Writer<'a> {
    buf: &'a mut BytesMut,
    /// Index of the octet collecting the current run of bits, and bits used.
    bit_octet: usize,
    bits_used: u8,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut BytesMut) -> Self {
        Writer {
            buf,
            bit_octet: 0,
            bits_used: 8,
        }
    }

    fn end_bits(&mut self) {
        self.bits_used = 8;
    }

    pub fn u8(&mut self, v: u8) {
        self.end_bits();
        self.buf.put_u8(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.end_bits();
        self.buf.put_u16(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.end_bits();
        self.buf.put_u32(v);
    }

    pub fn u64(&mut self, v: u64) {
        self.end_bits();
        self.buf.put_u64(v);
    }

    pub fn bit(&mut self, v: bool) {
        if self.bits_used == 8 {
            self.bit_octet = self.buf.len();
            self.buf.put_u8(0);
            self.bits_used = 0;
        }
        if v {
            self.buf[self.bit_octet] |= 1 << self.bits_used;
        }
        self.bits_used += 1;
    }

    pub fn short_str(&mut self, s: &ShortStr) {
        self.end_bits();
        put_short_str(self.buf, s.as_bytes());
    }

    pub fn long_str(&mut self, s: &[u8]) {
        self.end_bits();
        self.buf.put_u32(s.len() as u32);
        self.buf.put_slice(s);
    }

    pub fn table(&mut self, t: &FieldTable) {
        self.end_bits();
        t.encode(self.buf);
    }
}

/// Writes a shortstr, cutting it at 255 bytes so the frame stays valid.
pub(crate) fn put_short_str(buf: &mut BytesMut, s: &[u8]) {
    let len = s.len().min(ShortStr::MAX_LEN);
    buf.put_u8(len as u8);
    buf.put_slice(&s[..len]);
}

/// A type that can be a method argument.
pub trait Field: Sized {
    /// Whether a decoded value keeps a slice of the payload (long strings
    /// and tables): such methods are decoded from a shared payload.
    const SHARES_PAYLOAD: bool = false;
    fn read(r: &mut Reader<'_>) -> Result<Self>;
    fn write(&self, w: &mut Writer<'_>);
}

impl Field for u8 {
    #[inline]
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.u8()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.u8(*self)
    }
}

impl Field for u16 {
    #[inline]
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.u16()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.u16(*self)
    }
}

impl Field for u32 {
    #[inline]
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.u32()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(*self)
    }
}

impl Field for u64 {
    #[inline]
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.u64()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.u64(*self)
    }
}

impl Field for bool {
    #[inline]
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.bit()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.bit(*self)
    }
}

impl Field for ShortStr {
    #[inline(always)]
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.short_str()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.short_str(self)
    }
}

impl Field for Bytes {
    const SHARES_PAYLOAD: bool = true;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.long_str()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.long_str(self)
    }
}

impl Field for FieldTable {
    const SHARES_PAYLOAD: bool = true;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.table()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.table(self)
    }
}
