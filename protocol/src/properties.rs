//! The content header frame and the 14 basic properties.
//!
//! A decoded header keeps the raw bytes of its property list beside the
//! parsed values, so a broker that forwards a message unchanged writes those
//! bytes back as they came, without re-encoding. Changing a property through
//! [`ContentHeader::properties_mut`] drops the raw bytes, and the next encode
//! builds them afresh.

use bytes::{BufMut, Bytes, BytesMut};

use crate::constants::reply_code;
use crate::error::{ErrorKind, ProtocolError, Result};
use crate::field_table::FieldTable;
use crate::types::ShortStr;
use crate::wire::{Reader, Writer};

/// The properties of class `basic`, each optional.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BasicProperties {
    pub content_type: Option<ShortStr>,
    pub content_encoding: Option<ShortStr>,
    pub headers: Option<FieldTable>,
    /// 1 transient, 2 persistent.
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    pub correlation_id: Option<ShortStr>,
    pub reply_to: Option<ShortStr>,
    /// Per-message TTL in milliseconds, as a decimal string.
    pub expiration: Option<ShortStr>,
    pub message_id: Option<ShortStr>,
    pub timestamp: Option<u64>,
    /// The `type` property.
    pub kind: Option<ShortStr>,
    pub user_id: Option<ShortStr>,
    pub app_id: Option<ShortStr>,
    pub cluster_id: Option<ShortStr>,
}

// Property flag bits, most significant first, in wire order.
pub(crate) const CONTENT_TYPE: u16 = 1 << 15;
pub(crate) const CONTENT_ENCODING: u16 = 1 << 14;
pub(crate) const HEADERS: u16 = 1 << 13;
pub(crate) const DELIVERY_MODE: u16 = 1 << 12;
pub(crate) const PRIORITY: u16 = 1 << 11;
pub(crate) const CORRELATION_ID: u16 = 1 << 10;
pub(crate) const REPLY_TO: u16 = 1 << 9;
pub(crate) const EXPIRATION: u16 = 1 << 8;
pub(crate) const MESSAGE_ID: u16 = 1 << 7;
pub(crate) const TIMESTAMP: u16 = 1 << 6;
pub(crate) const TYPE: u16 = 1 << 5;
pub(crate) const USER_ID: u16 = 1 << 4;
pub(crate) const APP_ID: u16 = 1 << 3;
pub(crate) const CLUSTER_ID: u16 = 1 << 2;
/// Set when another flags word follows.
pub(crate) const CONTINUATION: u16 = 1;

impl BasicProperties {
    pub fn is_persistent(&self) -> bool {
        self.delivery_mode == Some(2)
    }

    fn flags(&self) -> u16 {
        let mut flags = 0;
        let mut set = |present: bool, bit: u16| {
            if present {
                flags |= bit
            }
        };
        set(self.content_type.is_some(), CONTENT_TYPE);
        set(self.content_encoding.is_some(), CONTENT_ENCODING);
        set(self.headers.is_some(), HEADERS);
        set(self.delivery_mode.is_some(), DELIVERY_MODE);
        set(self.priority.is_some(), PRIORITY);
        set(self.correlation_id.is_some(), CORRELATION_ID);
        set(self.reply_to.is_some(), REPLY_TO);
        set(self.expiration.is_some(), EXPIRATION);
        set(self.message_id.is_some(), MESSAGE_ID);
        set(self.timestamp.is_some(), TIMESTAMP);
        set(self.kind.is_some(), TYPE);
        set(self.user_id.is_some(), USER_ID);
        set(self.app_id.is_some(), APP_ID);
        set(self.cluster_id.is_some(), CLUSTER_ID);
        flags
    }

    /// Appends the flags word and the present properties.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16(self.flags());
        let mut w = Writer::new(buf);
        let short = |w: &mut Writer<'_>, v: &Option<ShortStr>| {
            if let Some(s) = v {
                w.short_str(s)
            }
        };
        short(&mut w, &self.content_type);
        short(&mut w, &self.content_encoding);
        if let Some(h) = &self.headers {
            w.table(h);
        }
        if let Some(v) = self.delivery_mode {
            w.u8(v);
        }
        if let Some(v) = self.priority {
            w.u8(v);
        }
        short(&mut w, &self.correlation_id);
        short(&mut w, &self.reply_to);
        short(&mut w, &self.expiration);
        short(&mut w, &self.message_id);
        if let Some(v) = self.timestamp {
            w.u64(v);
        }
        short(&mut w, &self.kind);
        short(&mut w, &self.user_id);
        short(&mut w, &self.app_id);
        short(&mut w, &self.cluster_id);
    }

    /// Parses a flags word (and any continuation words) and the properties.
    pub fn decode(r: &mut Reader<'_>) -> Result<BasicProperties> {
        let mut properties = BasicProperties::default();
        properties.decode_into(r)?;
        Ok(properties)
    }

    /// Like `decode`, writing into `self` (all `None`) so a boxed set is
    /// filled in place rather than built on the stack and copied.
    fn decode_into(&mut self, r: &mut Reader<'_>) -> Result<()> {
        let flags = r.u16()?;
        let mut more = flags & CONTINUATION != 0;
        while more {
            // Basic has only 14 properties: further flag words carry nothing,
            // but a peer may still send them, so read past them.
            let extra = r.u16()?;
            if extra & !CONTINUATION != 0 {
                return Err(ProtocolError::new(
                    ErrorKind::ContentHeader,
                    reply_code::SYNTAX_ERROR,
                    "unknown basic property flags set",
                ));
            }
            more = extra & CONTINUATION != 0;
        }
        if flags & 0b10 != 0 {
            return Err(ProtocolError::new(
                ErrorKind::ContentHeader,
                reply_code::SYNTAX_ERROR,
                "unknown basic property flag set",
            ));
        }
        // Only the properties present are visited, in wire order (highest
        // bit first): a typical publish sets two or three of the fourteen,
        // and testing all fourteen was most of the time spent here.
        let mut present = flags & !CONTINUATION;
        while present != 0 {
            let bit = 1 << (15 - present.leading_zeros());
            present &= !bit;
            match bit {
                CONTENT_TYPE => self.content_type = Some(r.short_str()?),
                CONTENT_ENCODING => self.content_encoding = Some(r.short_str()?),
                HEADERS => self.headers = Some(r.table()?),
                DELIVERY_MODE => self.delivery_mode = Some(r.u8()?),
                PRIORITY => self.priority = Some(r.u8()?),
                CORRELATION_ID => self.correlation_id = Some(r.short_str()?),
                REPLY_TO => self.reply_to = Some(r.short_str()?),
                EXPIRATION => self.expiration = Some(r.short_str()?),
                MESSAGE_ID => self.message_id = Some(r.short_str()?),
                TIMESTAMP => self.timestamp = Some(r.u64()?),
                TYPE => self.kind = Some(r.short_str()?),
                USER_ID => self.user_id = Some(r.short_str()?),
                APP_ID => self.app_id = Some(r.short_str()?),
                CLUSTER_ID => self.cluster_id = Some(r.short_str()?),
                // Bit 1 was rejected above and bit 0 masked off.
                _ => {}
            }
        }
        Ok(())
    }
}

/// A content header frame's payload: class, body size and properties.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentHeader {
    pub class_id: u16,
    pub body_size: u64,
    /// Boxed so that a header, and every `Frame`, stays small: frames are
    /// moved by value from the decoder to their handler, and an inline
    /// 368-byte property set made every one of those moves a large memcpy.
    data: Box<HeaderData>,
}

/// The boxed part of a [`ContentHeader`].
#[derive(Debug, Clone, PartialEq, Default)]
struct HeaderData {
    properties: BasicProperties,
    /// The property list exactly as received (flags included), while it
    /// still matches `properties`.
    raw: RawProperties,
}

/// The received bytes of a property list.
///
/// A short list without `headers` (most are: a content type, a delivery
/// mode, an id) is copied into the header's box, which costs less than the
/// atomic increment and decrement of a shared slice of the read buffer (the
/// box is allocated anyway). A longer list, or one with a `headers` table,
/// stays a shared slice.
#[derive(Clone, Default)]
enum RawProperties {
    #[default]
    None,
    Inline {
        len: u8,
        bytes: [u8; RAW_INLINE_CAP],
    },
    Shared(Bytes),
}

/// The longest property list kept inline.
const RAW_INLINE_CAP: usize = 100;

impl RawProperties {
    fn as_slice(&self) -> Option<&[u8]> {
        match self {
            RawProperties::None => None,
            RawProperties::Inline { len, bytes } => Some(&bytes[..usize::from(*len)]),
            RawProperties::Shared(b) => Some(b),
        }
    }
}

/// Compares the bytes, however they are held.
impl PartialEq for RawProperties {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for RawProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

impl ContentHeader {
    pub fn new(class_id: u16, body_size: u64, properties: BasicProperties) -> Self {
        ContentHeader {
            class_id,
            body_size,
            data: Box::new(HeaderData {
                properties,
                raw: RawProperties::None,
            }),
        }
    }

    pub fn properties(&self) -> &BasicProperties {
        &self.data.properties
    }

    /// The length of the property list as it was received (0 for a header
    /// built or changed here).
    pub fn received_properties_len(&self) -> usize {
        self.data.raw.as_slice().map_or(0, <[u8]>::len)
    }

    /// The property list (flags included) as it was received, while it
    /// still matches the properties.
    pub(crate) fn received_properties(&self) -> Option<&[u8]> {
        self.data.raw.as_slice()
    }

    /// Mutable access; the header is re-encoded from the values afterwards.
    pub fn properties_mut(&mut self) -> &mut BasicProperties {
        self.data.raw = RawProperties::None;
        &mut self.data.properties
    }

    /// Bytes before the property list: class-id, weight and body-size.
    pub(crate) const FIXED_LEN: usize = 12;

    /// Decodes the payload of a header frame.
    pub fn decode(payload: &Bytes) -> Result<ContentHeader> {
        Self::decode_within(payload, 0..payload.len())
    }

    /// Decodes a header payload that is the `within` part of a larger
    /// buffer (a stored message), taking a shared slice of it only when
    /// the property list is kept shared: a short list is copied, and
    /// costs the buffer no reference count traffic.
    pub fn decode_within(buffer: &Bytes, within: std::ops::Range<usize>) -> Result<ContentHeader> {
        let end = within.end.min(buffer.len());
        let start = within.start.min(end);
        let payload = &buffer[start..end];
        let mut r = Reader::borrowed(payload);
        let class_id = r.u16()?;
        let _weight = r.u16()?;
        let body_size = r.u64()?;
        let list = &payload[r.position()..];
        if Self::shares_properties(list) {
            Self::from_shared_properties(class_id, body_size, buffer.slice(start + r.position()..end))
        } else {
            Self::from_borrowed_properties(class_id, body_size, list)
        }
    }

    /// Whether a property list (flags included) is kept as a shared slice
    /// of the buffer it came in: when it is too long to copy into the
    /// header, or has a `headers` table (whose long strings are slices of
    /// that buffer, as before). Otherwise it is decoded from borrowed bytes
    /// and copied (see [`RawProperties`]).
    #[inline]
    pub(crate) fn shares_properties(list: &[u8]) -> bool {
        list.len() > RAW_INLINE_CAP || list.first().is_some_and(|flags| flags & (HEADERS >> 8) as u8 != 0)
    }

    /// Parses a short property list without `headers`, copying its bytes.
    #[inline]
    pub(crate) fn from_borrowed_properties(class_id: u16, body_size: u64, list: &[u8]) -> Result<ContentHeader> {
        let mut data = Self::parse_properties(Reader::borrowed(list))?;
        // Copied straight into the box: a copy into a local array, moved
        // into the box afterwards, stalled reloading what memcpy had just
        // stored (perf: 14% of the whole decode on that one load).
        data.raw = RawProperties::Inline {
            len: list.len() as u8,
            bytes: [0; RAW_INLINE_CAP],
        };
        if let RawProperties::Inline { bytes, .. } = &mut data.raw {
            bytes[..list.len()].copy_from_slice(list);
        }
        Ok(ContentHeader {
            class_id,
            body_size,
            data,
        })
    }

    /// Parses a property list, keeping it as the shared slice it is.
    pub(crate) fn from_shared_properties(class_id: u16, body_size: u64, list: Bytes) -> Result<ContentHeader> {
        let mut data = Self::parse_properties(Reader::new(&list))?;
        data.raw = RawProperties::Shared(list);
        Ok(ContentHeader {
            class_id,
            body_size,
            data,
        })
    }

    /// The properties of a whole property list (flags included), parsed
    /// into a new box (its raw list not set yet).
    #[inline]
    fn parse_properties(mut r: Reader<'_>) -> Result<Box<HeaderData>> {
        let mut data = Box::<HeaderData>::default();
        data.properties.decode_into(&mut r)?;
        if r.remaining() != 0 {
            return Err(ProtocolError::new(
                ErrorKind::ContentHeader,
                reply_code::SYNTAX_ERROR,
                "content header has trailing bytes",
            ));
        }
        Ok(data)
    }

    /// Appends the payload of a header frame.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16(self.class_id);
        buf.put_u16(0);
        buf.put_u64(self.body_size);
        match self.data.raw.as_slice() {
            Some(raw) => buf.put_slice(raw),
            None => self.data.properties.encode(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_table::FieldValue;
    use crate::frame::{decode_frame, encode_header, Frame};

    fn header_frame(properties: &BasicProperties, trailing: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        encode_header(&mut buf, 1, &ContentHeader::new(60, 5, properties.clone()));
        if !trailing.is_empty() {
            // Grow the payload: size field, then the bytes before the frame end.
            let end = buf.len() - 1;
            let size = u32::from_be_bytes(buf[3..7].try_into().unwrap()) + trailing.len() as u32;
            buf[3..7].copy_from_slice(&size.to_be_bytes());
            let mut grown = BytesMut::from(&buf[..end]);
            grown.extend_from_slice(trailing);
            grown.extend_from_slice(&buf[end..]);
            buf = grown;
        }
        buf
    }

    /// Property lists on both sides of the inline limit, with and without a
    /// `headers` table, decode to their values and re-encode unchanged; a
    /// trailing byte is a 502 either way.
    #[test]
    fn inline_and_shared_property_lists() {
        for with_headers in [false, true] {
            // flags (2) + content type (1 + len) + delivery mode (1)
            for list_len in RAW_INLINE_CAP - 3..=RAW_INLINE_CAP + 3 {
                let mut properties = BasicProperties {
                    delivery_mode: Some(2),
                    ..Default::default()
                };
                let mut fixed = 4;
                if with_headers {
                    let mut table = FieldTable::new();
                    table.insert("k", FieldValue::LongStr(Bytes::from_static(b"v")));
                    properties.headers = Some(table);
                    fixed += 4 + 1 + 1 + 1 + 4 + 1;
                }
                properties.content_type = Some("c".repeat(list_len - fixed).as_str().into());
                let mut buf = header_frame(&properties, &[]);
                let wire = buf.clone().freeze();
                let Some(Frame::Header(1, header)) = decode_frame(&mut buf, 0).unwrap() else {
                    panic!("not a header");
                };
                assert_eq!(header.properties(), &properties, "list of {list_len}");
                let shared = matches!(header.data.raw, RawProperties::Shared(_));
                assert_eq!(shared, with_headers || list_len > RAW_INLINE_CAP, "list of {list_len}");
                let mut again = BytesMut::new();
                encode_header(&mut again, 1, &header);
                assert_eq!(again, wire);
                assert_eq!(ContentHeader::decode(&wire.slice(7..wire.len() - 1)).unwrap(), header);

                let mut bad = header_frame(&properties, &[0]);
                let error = decode_frame(&mut bad, 0).unwrap_err();
                assert_eq!(error.code, 502, "list of {list_len}");
                assert!(bad.is_empty(), "the bad frame is consumed");
            }
        }
    }
}
