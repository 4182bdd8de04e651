//! A consumer's frames read for load: the three parts of a delivery
//! (basic.deliver, its content header, its body) are picked out of the read
//! buffer with only the fields the consumer uses (the delivery tag, the
//! body size, the body), and anything else is decoded in full. Decoding
//! every delivery's method and properties in full, and moving the decoded
//! frames about, was a third of the consumer's time at a million
//! deliveries a second, time the broker under test then did not get.

use std::io;

use bytes::{Buf, Bytes};
use warren_protocol::*;

use crate::client::FrameReader;

/// basic.deliver's class and method ids.
const BASIC_DELIVER: [u8; 4] = [0, 60, 0, 60];
/// A frame's type, channel and size.
const FRAME_HEADER: usize = 7;

/// One frame as the consumer sees it.
pub enum Part {
    /// basic.deliver, with its delivery tag.
    Deliver(u64),
    /// A content header, with its body size.
    Header(u64),
    Body(Bytes),
    /// Any other frame, decoded in full.
    Other(Frame),
}

impl FrameReader {
    /// The next part already read from the socket, without waiting.
    pub fn buffered_part(&mut self) -> io::Result<Option<Part>> {
        let Some(part) = self.peek_part() else {
            return Ok(self.buffered()?.map(Part::Other));
        };
        Ok(Some(part))
    }

    /// The next part, reading from the socket as needed.
    pub async fn next_part(&mut self) -> io::Result<Part> {
        loop {
            if let Some(part) = self.buffered_part()? {
                return Ok(part);
            }
            self.read_more().await?;
        }
    }

    /// A whole delivery part at the front of the buffer, taken out of it;
    /// `None` for anything else (another frame, a frame not all read yet,
    /// or one that does not parse: the full decoder says what is wrong).
    fn peek_part(&mut self) -> Option<Part> {
        let buf = self.buffer();
        let kind = *buf.first()?;
        let size = u32::from_be_bytes(buf.get(3..FRAME_HEADER)?.try_into().ok()?) as usize;
        let end = FRAME_HEADER + size;
        if *buf.get(end)? != FRAME_END {
            return None;
        }
        let payload = &buf[FRAME_HEADER..end];
        let part = match kind {
            frame_type::METHOD if payload.get(..4)? == BASIC_DELIVER => {
                // consumer-tag (short string), then the delivery tag.
                let tag_at = 5 + usize::from(*payload.get(4)?);
                Part::Deliver(u64::from_be_bytes(payload.get(tag_at..tag_at + 8)?.try_into().ok()?))
            }
            // class id, weight, then the body size.
            frame_type::HEADER => Part::Header(u64::from_be_bytes(payload.get(4..12)?.try_into().ok()?)),
            frame_type::BODY => {
                let buf = self.buffer_mut();
                buf.advance(FRAME_HEADER);
                let body = buf.split_to(size).freeze();
                buf.advance(1);
                return Some(Part::Body(body));
            }
            _ => return None,
        };
        self.buffer_mut().advance(end + 1);
        Some(part)
    }
}
