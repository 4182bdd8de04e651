//! Assembling a published message from its method, header and body frames.
//!
//! A body that arrives in one frame is kept as that frame's bytes (no copy);
//! one split over several frames is gathered into a single buffer sized from
//! the header, after the size has been checked against the limits: the
//! broker's largest message, and what one connection's unfinished messages
//! may announce together (so that no client holds more than its share of
//! memory in messages it never finishes, over however many channels).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use warren_protocol::{BasicPublish, ContentHeader};

use super::{Channel, ConnCtx};
use crate::error::{AmqpError, AmqpResult};

/// Messages that may cost this much or more count towards their
/// connection's unfinished bytes. Smaller ones are spared the counting
/// (atomic operations on every message): a connection's unfinished small
/// messages hold less than this each, so at most `channel_max` times it
/// together (128 MiB with RabbitMQ's 2,047).
const COUNTED_FROM: u64 = 64 * 1024;

/// What a decoded header value may take in memory per byte it took on the
/// wire, at most (a one-byte array value decodes to 40 bytes).
const HEADER_EXPANSION: u64 = 40;

/// What an unfinished message may hold once its body has come: the body it
/// announces and its header decoded; None below [`COUNTED_FROM`].
fn counted_cost(header: &ContentHeader) -> Option<u64> {
    let properties = header.received_properties_len() as u64 * HEADER_EXPANSION;
    let cost = header.body_size.saturating_add(properties);
    (cost >= COUNTED_FROM).then_some(cost)
}

/// The most reserved for a body before its bytes arrive.
const PREALLOCATE_AT_MOST: usize = 4 * 1024 * 1024;

pub(crate) struct PendingContent {
    pub publish: BasicPublish,
    pub header: Option<ContentHeader>,
    body: Body,
    /// Its announced size, counted in its connection's unfinished bytes
    /// until it is done with (finished, refused, or its channel gone).
    _counted: Option<Unfinished>,
}

/// Body bytes announced by a connection's unfinished messages.
#[derive(Debug, Default, Clone)]
pub(crate) struct UnfinishedBytes(Arc<AtomicU64>);

/// One message's share of them, given back when it is dropped.
struct Unfinished {
    total: UnfinishedBytes,
    bytes: u64,
}

impl UnfinishedBytes {
    /// Counts `bytes` more if that keeps the total within `limit`; else
    /// the total they would make.
    fn take(&self, bytes: u64, limit: u64) -> Result<Unfinished, u64> {
        let before = self.0.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > limit {
            self.0.fetch_sub(bytes, Ordering::Relaxed);
            return Err(before.saturating_add(bytes));
        }
        Ok(Unfinished {
            total: self.clone(),
            bytes,
        })
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        self.total.0.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

enum Body {
    Empty,
    Single(Bytes),
    Gathering(BytesMut),
    /// Larger than the broker accepts: counted and dropped as it arrives,
    /// refused once complete (as RabbitMQ refuses it: after the body).
    TooLarge(usize),
    /// Would take the connection's unfinished messages over their limit
    /// (to the total given): dropped and refused the same way.
    OverShare {
        received: usize,
        total: u64,
    },
}

impl PendingContent {
    pub(super) fn new(publish: BasicPublish) -> Self {
        PendingContent {
            publish,
            header: None,
            body: Body::Empty,
            _counted: None,
        }
    }

    /// RabbitMQ's text for a frame that is not the content it waits for.
    pub(super) fn expectation(&self) -> &'static str {
        if self.header.is_some() {
            "expected content body, got non content body frame instead"
        } else {
            "expected content header for class 60, got non content header frame instead"
        }
    }

    fn received(&self) -> usize {
        match &self.body {
            Body::Empty => 0,
            Body::Single(b) => b.len(),
            Body::Gathering(b) => b.len(),
            Body::TooLarge(received) | Body::OverShare { received, .. } => *received,
        }
    }

    fn append(&mut self, chunk: Bytes, expected: usize) {
        self.body = match std::mem::replace(&mut self.body, Body::Empty) {
            Body::Empty => Body::Single(chunk),
            Body::Single(first) => {
                // Sized from the header, but not beyond what a client can
                // claim without sending it: a large body grows as it comes.
                let mut all = BytesMut::with_capacity(expected.min(PREALLOCATE_AT_MOST));
                all.put_slice(&first);
                all.put_slice(&chunk);
                Body::Gathering(all)
            }
            Body::Gathering(mut all) => {
                all.put_slice(&chunk);
                Body::Gathering(all)
            }
            Body::TooLarge(received) => Body::TooLarge(received + chunk.len()),
            Body::OverShare { received, total } => Body::OverShare {
                received: received + chunk.len(),
                total,
            },
        };
    }

    fn take_body(&mut self) -> Bytes {
        match std::mem::replace(&mut self.body, Body::Empty) {
            Body::Empty | Body::TooLarge(_) | Body::OverShare { .. } => Bytes::new(),
            Body::Single(b) => b,
            Body::Gathering(b) => b.freeze(),
        }
    }
}

impl Channel {
    pub(super) fn content_header(&mut self, ctx: &mut ConnCtx, header: ContentHeader) -> AmqpResult<()> {
        let Some(pending) = self.content.as_mut() else {
            return Err(AmqpError::unexpected_frame(
                "expected method frame, got non method frame instead",
            ));
        };
        if pending.header.is_some() {
            return Err(AmqpError::unexpected_frame(
                "expected content body, got non content body frame instead",
            ));
        }
        if header.class_id != 60 {
            return Err(AmqpError::frame_error(format!(
                "content header for class {} does not match basic.publish",
                header.class_id
            )));
        }
        if header.body_size > ctx.broker.config.max_message_size as u64 {
            pending.body = Body::TooLarge(0);
        } else if let Some(cost) = counted_cost(&header) {
            match ctx.unfinished.take(cost, ctx.unfinished_limit) {
                Ok(counted) => pending._counted = Some(counted),
                Err(total) => pending.body = Body::OverShare { received: 0, total },
            }
        }
        let empty = header.body_size == 0;
        pending.header = Some(header);
        if empty {
            return self.finish_content(ctx);
        }
        Ok(())
    }

    pub(super) fn content_body(&mut self, ctx: &mut ConnCtx, chunk: Bytes) -> AmqpResult<()> {
        let Some(pending) = self.content.as_mut() else {
            return Err(AmqpError::unexpected_frame(
                "expected method frame, got non method frame instead",
            ));
        };
        let Some(header) = &pending.header else {
            return Err(AmqpError::unexpected_frame(
                "expected content header for class 60, got non content header frame instead",
            ));
        };
        let expected = header.body_size as usize;
        if pending.received() + chunk.len() > expected {
            // RabbitMQ does not complain about a body frame longer than the
            // header announced: it keeps waiting for the rest of the body,
            // and whatever frame comes next is the unexpected one.
            return Ok(());
        }
        pending.append(chunk, expected);
        if pending.received() == expected {
            return self.finish_content(ctx);
        }
        Ok(())
    }

    fn finish_content(&mut self, ctx: &mut ConnCtx) -> AmqpResult<()> {
        let Some(mut pending) = self.content.take() else {
            return Ok(());
        };
        if let Body::TooLarge(size) = pending.body {
            return Err(AmqpError::precondition_failed(format!(
                "message size {size} is larger than configured max size {}",
                ctx.broker.config.max_message_size
            ))
            .on_method((60, 40)));
        }
        if let Body::OverShare { received, total } = pending.body {
            return Err(AmqpError::precondition_failed(format!(
                "message size {received} would take this connection's unfinished messages to {total} bytes, \
                 more than its limit of {}",
                ctx.unfinished_limit
            ))
            .on_method((60, 40)));
        }
        let body = pending.take_body();
        let Some(header) = pending.header else {
            return Ok(());
        };
        self.publish_complete(ctx, pending.publish, header, body)
            .map_err(|e| e.on_method((60, 40)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_bytes_are_counted_across_messages_and_given_back() {
        let total = UnfinishedBytes::default();
        let first = total.take(600, 1000).expect("within the limit");
        assert_eq!(total.take(500, 1000).err(), Some(1100), "two together go over");
        let second = total.take(400, 1000).expect("exactly at the limit");
        drop(first);
        let third = total.take(600, 1000).expect("the first gave its bytes back");
        drop((second, third));
        assert_eq!(total.0.load(Ordering::Relaxed), 0);
    }
}
