//! Field tables and field arrays: the typed maps in method arguments and in
//! the `headers` property.
//!
//! Value types follow RabbitMQ's errata of the 0-9-1 spec, not the spec's
//! original table: `t b B s u I i l L f d D S x A T F V`. Parsing uses nom;
//! nesting is bounded so a hostile frame cannot exhaust the stack.

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::{be_f32, be_f64, be_i16, be_i32, be_i64, be_i8, be_u16, be_u32, be_u64, be_u8};
use nom::IResult;

use crate::error::{ProtocolError, Result};
use crate::types::ShortStr;
use crate::wire::put_short_str;

/// How deeply tables and arrays may nest inside each other.
pub const MAX_NESTING: usize = 100;
/// The most values one field table may hold, nested ones included. A value
/// can take one byte on the wire and 40-72 in memory, so without a bound a
/// client could make every header frame it sends cost 40 times its size;
/// this caps a decoded table at about a megabyte.
pub const MAX_VALUES: usize = 16_384;

/// One typed value in a field table or array.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `t`
    Bool(bool),
    /// `b`
    I8(i8),
    /// `B`
    U8(u8),
    /// `s`
    I16(i16),
    /// `u`
    U16(u16),
    /// `I`
    I32(i32),
    /// `i`
    U32(u32),
    /// `l`
    I64(i64),
    /// `L`
    U64(u64),
    /// `f`
    F32(f32),
    /// `d`
    F64(f64),
    /// `D`: scale (decimal places) and unscaled value.
    Decimal(u8, u32),
    /// `S`
    LongStr(Bytes),
    /// `x`
    ByteArray(Bytes),
    /// `A`
    Array(Vec<FieldValue>),
    /// `T`: seconds since the epoch.
    Timestamp(u64),
    /// `F`
    Table(FieldTable),
    /// `V`
    Void,
}

impl FieldValue {
    /// The type octet on the wire.
    pub fn type_tag(&self) -> u8 {
        match self {
            FieldValue::Bool(_) => b't',
            FieldValue::I8(_) => b'b',
            FieldValue::U8(_) => b'B',
            FieldValue::I16(_) => b's',
            FieldValue::U16(_) => b'u',
            FieldValue::I32(_) => b'I',
            FieldValue::U32(_) => b'i',
            FieldValue::I64(_) => b'l',
            FieldValue::U64(_) => b'L',
            FieldValue::F32(_) => b'f',
            FieldValue::F64(_) => b'd',
            FieldValue::Decimal(..) => b'D',
            FieldValue::LongStr(_) => b'S',
            FieldValue::ByteArray(_) => b'x',
            FieldValue::Array(_) => b'A',
            FieldValue::Timestamp(_) => b'T',
            FieldValue::Table(_) => b'F',
            FieldValue::Void => b'V',
        }
    }

    /// The value as a signed integer, if it is of any integer type.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            FieldValue::I8(v) => Some(v.into()),
            FieldValue::U8(v) => Some(v.into()),
            FieldValue::I16(v) => Some(v.into()),
            FieldValue::U16(v) => Some(v.into()),
            FieldValue::I32(v) => Some(v.into()),
            FieldValue::U32(v) => Some(v.into()),
            FieldValue::I64(v) => Some(v),
            FieldValue::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as text, if it is a long string of UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::LongStr(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            FieldValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_table(&self) -> Option<&FieldTable> {
        match self {
            FieldValue::Table(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[FieldValue]> {
        match self {
            FieldValue::Array(a) => Some(a),
            _ => None,
        }
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(self.type_tag());
        match self {
            FieldValue::Bool(v) => buf.put_u8(u8::from(*v)),
            FieldValue::I8(v) => buf.put_i8(*v),
            FieldValue::U8(v) => buf.put_u8(*v),
            FieldValue::I16(v) => buf.put_i16(*v),
            FieldValue::U16(v) => buf.put_u16(*v),
            FieldValue::I32(v) => buf.put_i32(*v),
            FieldValue::U32(v) => buf.put_u32(*v),
            FieldValue::I64(v) => buf.put_i64(*v),
            FieldValue::U64(v) => buf.put_u64(*v),
            FieldValue::F32(v) => buf.put_f32(*v),
            FieldValue::F64(v) => buf.put_f64(*v),
            FieldValue::Decimal(scale, v) => {
                buf.put_u8(*scale);
                buf.put_u32(*v);
            }
            FieldValue::LongStr(b) | FieldValue::ByteArray(b) => {
                buf.put_u32(b.len() as u32);
                buf.put_slice(b);
            }
            FieldValue::Array(values) => {
                let at = reserve_len(buf);
                for v in values {
                    v.encode(buf);
                }
                fill_len(buf, at);
            }
            FieldValue::Timestamp(v) => buf.put_u64(*v),
            FieldValue::Table(t) => t.encode(buf),
            FieldValue::Void => {}
        }
    }
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> Self {
        FieldValue::LongStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for FieldValue {
    fn from(s: String) -> Self {
        FieldValue::LongStr(Bytes::from(s))
    }
}

impl From<bool> for FieldValue {
    fn from(b: bool) -> Self {
        FieldValue::Bool(b)
    }
}

impl From<FieldTable> for FieldValue {
    fn from(t: FieldTable) -> Self {
        FieldValue::Table(t)
    }
}

/// A field table: named values, in the order they were sent.
///
/// Kept as a vector: tables on the wire are small, lookups are rare outside
/// declarations, and order is preserved for faithful re-encoding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldTable(pub Vec<(ShortStr, FieldValue)>);

impl FieldTable {
    pub fn new() -> Self {
        FieldTable(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.0.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    }

    /// Sets `key`, replacing an existing value of that name.
    pub fn insert(&mut self, key: impl Into<ShortStr>, value: FieldValue) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<FieldValue> {
        let index = self.0.iter().position(|(k, _)| k.as_str() == key)?;
        Some(self.0.remove(index).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ShortStr, &FieldValue)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends the table with its 32-bit length prefix.
    pub fn encode(&self, buf: &mut BytesMut) {
        let at = reserve_len(buf);
        for (key, value) in &self.0 {
            put_short_str(buf, key.as_bytes());
            value.encode(buf);
        }
        fill_len(buf, at);
    }

    /// Parses the body of a table (without its length prefix). A table
    /// holds at most [`MAX_VALUES`] values, nested ones included.
    pub fn decode(body: &Bytes, depth: usize) -> Result<FieldTable> {
        let mut budget = MAX_VALUES;
        decode_table(body, depth, &mut budget)
    }

    /// How many values it holds, nested ones included.
    pub fn value_count(&self) -> usize {
        self.0.iter().map(|(_, value)| 1 + value.nested_count()).sum()
    }
}

impl FieldValue {
    /// Values nested inside this one (a table's or an array's).
    fn nested_count(&self) -> usize {
        match self {
            FieldValue::Table(table) => table.value_count(),
            FieldValue::Array(values) => values.iter().map(|v| 1 + v.nested_count()).sum(),
            _ => 0,
        }
    }
}

/// Takes one value from a table's budget: decoding stops with an error
/// once a table holds more than [`MAX_VALUES`].
fn spend(budget: &mut usize) -> Result<()> {
    *budget = budget
        .checked_sub(1)
        .ok_or_else(|| ProtocolError::field_table(format!("field table of more than {MAX_VALUES} values")))?;
    Ok(())
}

fn decode_table(body: &Bytes, depth: usize, budget: &mut usize) -> Result<FieldTable> {
    if depth > MAX_NESTING {
        return Err(ProtocolError::field_table("field tables nested too deeply"));
    }
    let mut entries = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let (key, after_key) = parse_key(body, pos)?;
        spend(budget)?;
        let (value, after_value) = decode_value(body, after_key, depth, budget)?;
        entries.push((key, value));
        pos = after_value;
    }
    Ok(FieldTable(entries))
}

impl FromIterator<(ShortStr, FieldValue)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (ShortStr, FieldValue)>>(iter: I) -> Self {
        FieldTable(iter.into_iter().collect())
    }
}

fn reserve_len(buf: &mut BytesMut) -> usize {
    let at = buf.len();
    buf.put_u32(0);
    at
}

fn fill_len(buf: &mut BytesMut, at: usize) {
    let len = (buf.len() - at - 4) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn malformed(what: &str) -> ProtocolError {
    ProtocolError::field_table(format!("malformed field table: {what}"))
}

/// Runs a nom parser at `pos` in `buf`, returning the value and the new position.
fn at<'a, T>(
    buf: &'a [u8],
    pos: usize,
    what: &str,
    parser: impl FnOnce(&'a [u8]) -> IResult<&'a [u8], T>,
) -> Result<(T, usize)> {
    let input = buf.get(pos..).ok_or_else(|| malformed(what))?;
    match parser(input) {
        Ok((rest, v)) => Ok((v, buf.len() - rest.len())),
        Err(_) => Err(malformed(what)),
    }
}

fn parse_key(body: &Bytes, pos: usize) -> Result<(ShortStr, usize)> {
    let (len, start) = at(body, pos, "truncated key", be_u8)?;
    let end = start + len as usize;
    if end > body.len() {
        return Err(malformed("truncated key"));
    }
    let key = ShortStr::from_utf8(&body[start..end]).ok_or_else(|| malformed("key is not UTF-8"))?;
    Ok((key, end))
}

/// A length-prefixed byte run at `pos`, as a slice of the shared buffer.
fn sized_slice(body: &Bytes, pos: usize, what: &str) -> Result<(Bytes, usize)> {
    let (len, start) = at(body, pos, what, be_u32)?;
    let end = start
        .checked_add(len as usize)
        .filter(|&e| e <= body.len())
        .ok_or_else(|| malformed(what))?;
    Ok((body.slice(start..end), end))
}

fn decode_value(body: &Bytes, pos: usize, depth: usize, budget: &mut usize) -> Result<(FieldValue, usize)> {
    let (tag, pos) = at(body, pos, "missing value type", be_u8)?;
    let b: &[u8] = body;
    Ok(match tag {
        b't' => at(b, pos, "bool", be_u8).map(|(v, p)| (FieldValue::Bool(v != 0), p))?,
        b'b' => at(b, pos, "int8", be_i8).map(|(v, p)| (FieldValue::I8(v), p))?,
        b'B' => at(b, pos, "uint8", be_u8).map(|(v, p)| (FieldValue::U8(v), p))?,
        b's' => at(b, pos, "int16", be_i16).map(|(v, p)| (FieldValue::I16(v), p))?,
        b'u' => at(b, pos, "uint16", be_u16).map(|(v, p)| (FieldValue::U16(v), p))?,
        b'I' => at(b, pos, "int32", be_i32).map(|(v, p)| (FieldValue::I32(v), p))?,
        b'i' => at(b, pos, "uint32", be_u32).map(|(v, p)| (FieldValue::U32(v), p))?,
        b'l' => at(b, pos, "int64", be_i64).map(|(v, p)| (FieldValue::I64(v), p))?,
        b'L' => at(b, pos, "uint64", be_u64).map(|(v, p)| (FieldValue::U64(v), p))?,
        b'f' => at(b, pos, "float", be_f32).map(|(v, p)| (FieldValue::F32(v), p))?,
        b'd' => at(b, pos, "double", be_f64).map(|(v, p)| (FieldValue::F64(v), p))?,
        b'D' => {
            let (scale, p) = at(b, pos, "decimal", be_u8)?;
            let (v, p) = at(b, p, "decimal", be_u32)?;
            (FieldValue::Decimal(scale, v), p)
        }
        b'T' => at(b, pos, "timestamp", be_u64).map(|(v, p)| (FieldValue::Timestamp(v), p))?,
        b'S' => sized_slice(body, pos, "long string").map(|(v, p)| (FieldValue::LongStr(v), p))?,
        b'x' => sized_slice(body, pos, "byte array").map(|(v, p)| (FieldValue::ByteArray(v), p))?,
        b'F' => {
            let (inner, p) = sized_slice(body, pos, "nested table")?;
            (FieldValue::Table(decode_table(&inner, depth + 1, budget)?), p)
        }
        b'A' => {
            let (inner, p) = sized_slice(body, pos, "array")?;
            (FieldValue::Array(decode_array(&inner, depth + 1, budget)?), p)
        }
        b'V' => (FieldValue::Void, pos),
        other => {
            return Err(ProtocolError::field_table(format!(
                "unknown field table value type {:?}",
                other as char
            )))
        }
    })
}

fn decode_array(body: &Bytes, depth: usize, budget: &mut usize) -> Result<Vec<FieldValue>> {
    if depth > MAX_NESTING {
        return Err(ProtocolError::field_table("field arrays nested too deeply"));
    }
    let mut values = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        spend(budget)?;
        let (value, next) = decode_value(body, pos, depth, budget)?;
        values.push(value);
        pos = next;
    }
    Ok(values)
}
