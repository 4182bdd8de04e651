//! A stream's log as segments: runs of consecutive offsets, each closed
//! once it holds `x-stream-max-segment-size-bytes`. Only a summary of
//! each is in memory (first offset, count, bytes, first and last append
//! time); the messages are in the store. Retention drops whole segments,
//! oldest first and never the one being written, as RabbitMQ's streams do,
//! and a consumer starting at a time starts at the segment holding it.

use std::collections::VecDeque;

use warren_store::Offset;

/// RabbitMQ's default segment size (500 MB).
pub(crate) const DEFAULT_SEGMENT_BYTES: u64 = 500_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub first: Offset,
    pub count: u64,
    pub bytes: u64,
    /// When its first and last messages were appended (ms since the epoch).
    pub first_ms: u64,
    pub last_ms: u64,
}

impl Segment {
    /// One past its last offset.
    pub(crate) fn end(&self) -> Offset {
        Offset(self.first.0 + self.count)
    }
}

/// What retention asks for.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Retention {
    /// Keep at most this many body bytes (`x-max-length-bytes`).
    pub max_bytes: Option<u64>,
    /// Keep messages at most this long, in ms (`x-max-age`).
    pub max_age_ms: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Segments {
    all: VecDeque<Segment>,
    bytes: u64,
    count: u64,
}

impl Segments {
    /// A message of `bytes` was appended at `offset` at `now_ms`; true if
    /// it began a new segment (the one before it is closed).
    pub(crate) fn append(&mut self, offset: Offset, bytes: u64, now_ms: u64, segment_bytes: u64) -> bool {
        let start_new = match self.all.back() {
            None => true,
            Some(last) => last.bytes >= segment_bytes || last.end() != offset,
        };
        if start_new {
            self.all.push_back(Segment {
                first: offset,
                count: 0,
                bytes: 0,
                first_ms: now_ms,
                last_ms: now_ms,
            });
        }
        if let Some(last) = self.all.back_mut() {
            last.count += 1;
            last.bytes += bytes;
            last.last_ms = now_ms;
        }
        self.bytes += bytes;
        self.count += 1;
        start_new
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The oldest offset kept (or `next` when empty).
    pub(crate) fn first(&self, next: Offset) -> Offset {
        self.all.front().map_or(next, |s| s.first)
    }

    /// Drops the oldest segments that retention no longer keeps, never
    /// the last; returns the offsets dropped (`from..to`), if any.
    pub(crate) fn enforce(&mut self, retention: Retention, now_ms: u64) -> Option<(Offset, Offset)> {
        let from = self.all.front()?.first;
        let mut to = from;
        while self.all.len() > 1 {
            let Some(oldest) = self.all.front().copied() else {
                break;
            };
            let too_big = retention.max_bytes.is_some_and(|max| self.bytes > max);
            let too_old = retention
                .max_age_ms
                .is_some_and(|age| now_ms.saturating_sub(oldest.last_ms) > age);
            if !(too_big || too_old) {
                break;
            }
            self.all.pop_front();
            self.bytes -= oldest.bytes;
            self.count -= oldest.count;
            to = oldest.end();
        }
        (to != from).then_some((from, to))
    }

    /// Where a consumer starting at `ms` starts: the first segment whose
    /// last message is at or after that time (`next` if none).
    pub(crate) fn offset_at(&self, ms: u64, next: Offset) -> Offset {
        self.all.iter().find(|s| s.last_ms >= ms).map_or(next, |s| s.first)
    }

    /// Forgets everything (the stream was emptied).
    pub(crate) fn clear(&mut self) {
        *self = Segments::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_drops_whole_old_segments_but_never_the_last() {
        let mut s = Segments::default();
        for i in 0..10u64 {
            s.append(Offset(i), 100, 1_000 + i, 300);
        }
        // Segments of 3 messages (300 bytes): [0..3) [3..6) [6..9) [9..10).
        assert_eq!((s.count(), s.bytes()), (10, 1_000));
        let dropped = s.enforce(
            Retention {
                max_bytes: Some(500),
                max_age_ms: None,
            },
            2_000,
        );
        assert_eq!(dropped, Some((Offset(0), Offset(6))));
        assert_eq!((s.first(Offset(10)), s.bytes()), (Offset(6), 400));
        let dropped = s.enforce(
            Retention {
                max_bytes: None,
                max_age_ms: Some(1),
            },
            1_000_000,
        );
        assert_eq!(dropped, Some((Offset(6), Offset(9))));
        assert_eq!(s.count(), 1, "the segment being written stays");
    }

    #[test]
    fn a_time_finds_its_segment() {
        let mut s = Segments::default();
        for i in 0..6u64 {
            s.append(Offset(i), 100, i * 1000, 200);
        }
        assert_eq!(s.offset_at(0, Offset(6)), Offset(0));
        assert_eq!(s.offset_at(2_500, Offset(6)), Offset(2));
        assert_eq!(s.offset_at(99_999, Offset(6)), Offset(6));
    }
}
