//! A content header written with one more `headers` entry than it holds:
//! what a broker adds to each delivery of some queues (RabbitMQ's quorum
//! queues add `x-delivery-count`, streams `x-stream-offset`).
//!
//! The obvious way, cloning the header, inserting into its table and
//! encoding it, allocates and re-encodes every property for every
//! delivery. A header still holding the property list it was received
//! with is instead written as it came, with the entry spliced in at the
//! end of its `headers` table (or a one-entry table where it had none):
//! the same bytes, a copy instead of a rebuild.

use bytes::{BufMut, BytesMut};

use crate::field_table::{FieldTable, FieldValue};
use crate::properties::{self as flag, ContentHeader};
use crate::wire::put_short_str;

/// Where a received property list has its `headers` table.
struct Table {
    /// The list's flags word.
    flags: u16,
    /// Where the table's length prefix is, or would be.
    at: usize,
    /// The table's entries (without the prefix), empty if it has none.
    entries: std::ops::Range<usize>,
}

impl Table {
    /// Finds the table in a property list (flags included); None for a
    /// list this does not handle (continued flags, or cut short).
    fn find(list: &[u8]) -> Option<Table> {
        let flags = u16::from_be_bytes([*list.first()?, *list.get(1)?]);
        if flags & flag::CONTINUATION != 0 {
            return None;
        }
        let mut at = 2;
        // The two short strings in front of the table.
        for bit in [flag::CONTENT_TYPE, flag::CONTENT_ENCODING] {
            if flags & bit != 0 {
                at += 1 + usize::from(*list.get(at)?);
            }
        }
        let entries = if flags & flag::HEADERS != 0 {
            let len = u32::from_be_bytes(list.get(at..at + 4)?.try_into().ok()?) as usize;
            let entries = at + 4..at + 4 + len;
            list.get(entries.clone())?;
            entries
        } else {
            list.get(..at)?;
            at..at
        };
        Some(Table { flags, at, entries })
    }
}

impl ContentHeader {
    /// A copy with `key` set to `value` in its `headers` table (replacing
    /// an entry of that name where it stands, else added at the end).
    pub fn with_header(&self, key: &str, value: &FieldValue) -> ContentHeader {
        let mut header = self.clone();
        header
            .properties_mut()
            .headers
            .get_or_insert_with(FieldTable::new)
            .insert(key, value.clone());
        header
    }

    /// Appends the payload of a header frame whose `headers` table has
    /// `key` set to `value` besides what it holds: the bytes that
    /// inserting it (`FieldTable::insert`) and encoding would write.
    pub fn encode_with_header(&self, buf: &mut BytesMut, key: &str, value: &FieldValue) {
        let has_key = self.properties().headers.as_ref().is_some_and(|h| h.get(key).is_some());
        let found = match self.received_properties() {
            Some(list) if !has_key => Table::find(list).map(|table| (list, table)),
            _ => None,
        };
        let Some((list, table)) = found else {
            // Built here, changed, or the key is there already (it is
            // replaced in place): the slow way.
            self.with_header(key, value).encode(buf);
            return;
        };
        buf.put_u16(self.class_id);
        buf.put_u16(0);
        buf.put_u64(self.body_size);
        buf.put_u16(table.flags | flag::HEADERS);
        buf.put_slice(&list[2..table.at]);
        let len_at = buf.len();
        buf.put_u32(0);
        buf.put_slice(&list[table.entries.clone()]);
        put_short_str(buf, key.as_bytes());
        value.encode(buf);
        let len = (buf.len() - len_at - 4) as u32;
        buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        let rest = if table.flags & flag::HEADERS != 0 {
            table.entries.end
        } else {
            table.at
        };
        buf.put_slice(&list[rest..]);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::properties::BasicProperties;

    /// The slow way, for comparison.
    fn inserted(header: &ContentHeader, key: &str, value: &FieldValue) -> BytesMut {
        let mut header = header.clone();
        header
            .properties_mut()
            .headers
            .get_or_insert_with(FieldTable::new)
            .insert(key, value.clone());
        let mut buf = BytesMut::new();
        header.encode(&mut buf);
        buf
    }

    fn received(properties: BasicProperties) -> ContentHeader {
        let mut buf = BytesMut::new();
        ContentHeader::new(60, 1234, properties).encode(&mut buf);
        ContentHeader::decode(&buf.freeze()).unwrap()
    }

    fn property_sets() -> Vec<BasicProperties> {
        let table = |entries: &[(&str, FieldValue)]| {
            let mut t = FieldTable::new();
            for (k, v) in entries {
                t.insert(*k, v.clone());
            }
            t
        };
        let long = Bytes::from(vec![b'x'; 300]);
        vec![
            BasicProperties::default(),
            BasicProperties {
                delivery_mode: Some(2),
                ..Default::default()
            },
            BasicProperties {
                content_type: Some("text/plain".into()),
                content_encoding: Some("gzip".into()),
                delivery_mode: Some(2),
                priority: Some(3),
                correlation_id: Some("c-1".into()),
                message_id: Some("m".repeat(200).as_str().into()),
                timestamp: Some(1_700_000_000),
                app_id: Some("app".into()),
                ..Default::default()
            },
            BasicProperties {
                content_encoding: Some("e".into()),
                headers: Some(table(&[])),
                ..Default::default()
            },
            BasicProperties {
                content_type: Some("application/json".into()),
                headers: Some(table(&[
                    ("a", FieldValue::I32(7)),
                    ("long", FieldValue::LongStr(long)),
                    ("nested", FieldValue::Table(table(&[("b", FieldValue::Bool(true))]))),
                ])),
                reply_to: Some("amq.rabbitmq.reply-to".into()),
                cluster_id: Some("c".into()),
                ..Default::default()
            },
            // The key is there already: replaced where it stands.
            BasicProperties {
                headers: Some(table(&[
                    (
                        "x-stream-offset",
                        FieldValue::LongStr(Bytes::from_static(b"publisher's")),
                    ),
                    ("z", FieldValue::Void),
                ])),
                expiration: Some("60000".into()),
                ..Default::default()
            },
        ]
    }

    #[test]
    fn the_spliced_header_is_the_inserted_one() {
        for properties in property_sets() {
            for value in [
                FieldValue::I64(42),
                FieldValue::I64(-1),
                FieldValue::LongStr(Bytes::from_static(b"v")),
            ] {
                for header in [
                    received(properties.clone()),
                    ContentHeader::new(60, 1234, properties.clone()),
                ] {
                    let mut spliced = BytesMut::new();
                    header.encode_with_header(&mut spliced, "x-stream-offset", &value);
                    assert_eq!(spliced, inserted(&header, "x-stream-offset", &value), "{properties:?}");
                    // And it decodes to the properties with the entry.
                    let back = ContentHeader::decode(&spliced.freeze()).unwrap();
                    let headers = back.properties().headers.as_ref().unwrap();
                    assert_eq!(headers.get("x-stream-offset"), Some(&value));
                }
            }
        }
    }

    #[test]
    fn a_received_list_is_spliced_not_rebuilt() {
        // A received list's bytes are kept even where encoding the values
        // would write them otherwise: the splice keeps them too.
        let header = received(BasicProperties {
            content_type: Some("t".into()),
            delivery_mode: Some(1),
            ..Default::default()
        });
        assert!(header.received_properties().is_some());
        let mut spliced = BytesMut::new();
        header.encode_with_header(&mut spliced, "k", &FieldValue::U8(9));
        let list = &spliced[ContentHeader::FIXED_LEN..];
        assert_eq!(
            list[..2],
            (flag::CONTENT_TYPE | flag::HEADERS | flag::DELIVERY_MODE).to_be_bytes()
        );
        assert_eq!(&list[2..4], &[1, b't']);
        let tag = FieldValue::U8(9).type_tag();
        assert_eq!(&list[4..8], &4u32.to_be_bytes(), "k, its tag, 9");
        assert_eq!(&list[8..], &[1, b'k', tag, 9, 1]);
    }
}
