//! The content header frame and the 14 basic properties.
//!
//! A decoded header keeps the raw bytes of its property list beside the
//! parsed values, so a broker that forwards a message unchanged writes those
//! bytes back as they came, without re-encoding. Changing a property through
//! [`ContentHeader::properties_mut`] drops the raw bytes, and the next encode
//! builds them afresh.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{ProtocolError, Result};
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
const CONTENT_TYPE: u16 = 1 << 15;
const CONTENT_ENCODING: u16 = 1 << 14;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const PRIORITY: u16 = 1 << 11;
const CORRELATION_ID: u16 = 1 << 10;
const REPLY_TO: u16 = 1 << 9;
const EXPIRATION: u16 = 1 << 8;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
const TYPE: u16 = 1 << 5;
const USER_ID: u16 = 1 << 4;
const APP_ID: u16 = 1 << 3;
const CLUSTER_ID: u16 = 1 << 2;
/// Set when another flags word follows.
const CONTINUATION: u16 = 1;

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
                return Err(ProtocolError::syntax("unknown basic property flags set"));
            }
            more = extra & CONTINUATION != 0;
        }
        if flags & 0b10 != 0 {
            return Err(ProtocolError::syntax("unknown basic property flag set"));
        }
        let has = |bit: u16| flags & bit != 0;
        let short = |r: &mut Reader<'_>, bit: u16, slot: &mut Option<ShortStr>| -> Result<()> {
            if has(bit) {
                *slot = Some(r.short_str()?);
            }
            Ok(())
        };
        short(r, CONTENT_TYPE, &mut self.content_type)?;
        short(r, CONTENT_ENCODING, &mut self.content_encoding)?;
        if has(HEADERS) {
            self.headers = Some(r.table()?);
        }
        if has(DELIVERY_MODE) {
            self.delivery_mode = Some(r.u8()?);
        }
        if has(PRIORITY) {
            self.priority = Some(r.u8()?);
        }
        short(r, CORRELATION_ID, &mut self.correlation_id)?;
        short(r, REPLY_TO, &mut self.reply_to)?;
        short(r, EXPIRATION, &mut self.expiration)?;
        short(r, MESSAGE_ID, &mut self.message_id)?;
        if has(TIMESTAMP) {
            self.timestamp = Some(r.u64()?);
        }
        short(r, TYPE, &mut self.kind)?;
        short(r, USER_ID, &mut self.user_id)?;
        short(r, APP_ID, &mut self.app_id)?;
        short(r, CLUSTER_ID, &mut self.cluster_id)
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
    properties: Box<BasicProperties>,
    /// The property list exactly as received (flags included), while it
    /// still matches `properties`.
    raw_properties: Option<Bytes>,
}

impl ContentHeader {
    pub fn new(class_id: u16, body_size: u64, properties: BasicProperties) -> Self {
        ContentHeader {
            class_id,
            body_size,
            properties: Box::new(properties),
            raw_properties: None,
        }
    }

    pub fn properties(&self) -> &BasicProperties {
        &self.properties
    }

    /// Mutable access; the header is re-encoded from the values afterwards.
    pub fn properties_mut(&mut self) -> &mut BasicProperties {
        self.raw_properties = None;
        &mut self.properties
    }

    /// Bytes before the property list: class-id, weight and body-size.
    pub(crate) const FIXED_LEN: usize = 12;

    /// Decodes the payload of a header frame.
    pub fn decode(payload: &Bytes) -> Result<ContentHeader> {
        let mut r = Reader::new(payload);
        let class_id = r.u16()?;
        let _weight = r.u16()?;
        let body_size = r.u64()?;
        Self::from_raw_properties(class_id, body_size, payload.slice(r.position()..))
    }

    /// Parses a property list (flags included), keeping its bytes.
    #[inline]
    pub(crate) fn from_raw_properties(class_id: u16, body_size: u64, raw: Bytes) -> Result<ContentHeader> {
        let mut r = Reader::new(&raw);
        let mut properties = Box::<BasicProperties>::default();
        properties.decode_into(&mut r)?;
        if r.remaining() != 0 {
            return Err(ProtocolError::syntax("content header has trailing bytes"));
        }
        Ok(ContentHeader {
            class_id,
            body_size,
            properties,
            raw_properties: Some(raw),
        })
    }

    /// Appends the payload of a header frame.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16(self.class_id);
        buf.put_u16(0);
        buf.put_u64(self.body_size);
        match &self.raw_properties {
            Some(raw) => buf.put_slice(raw),
            None => self.properties.encode(buf),
        }
    }
}
