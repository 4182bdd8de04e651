//! Consumer lag: how long the oldest ready message has waited in a queue,
//! and how long its oldest unacknowledged delivery has waited for its ack.
//!
//! Neither costs a timestamp per message. A queue notes the time its
//! offsets reach ([`ArrivalClock`]), at most once per [`RESOLUTION`], so
//! the age of any ready message is known from its offset to within that
//! resolution (and a bounded number of marks is kept, coarsened when a
//! queue holds a very old backlog). Deliveries awaiting acks are timed by
//! the channels that hold them, which already walk them for the consumer
//! timeout; each reports its oldest per queue ([`UnackedAges`]).

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use warren_store::Offset;

/// How far apart in time two arrival marks are at least.
const RESOLUTION: Duration = Duration::from_millis(100);
/// The most marks a queue keeps; past it every other one is dropped.
const MAX_MARKS: usize = 1024;

/// Times at which a queue's offsets were reached: `(offset, when)`, both
/// increasing. A message at offset `o` arrived no earlier than the last
/// mark at or below `o`.
#[derive(Debug, Default)]
pub(crate) struct ArrivalClock {
    marks: VecDeque<(Offset, Instant)>,
}

impl ArrivalClock {
    /// A message was enqueued at `offset` (called under the queue's lock,
    /// with the `now` the publish already read).
    pub(crate) fn arrived(&mut self, offset: Offset, now: Instant) {
        if let Some(&(_, last)) = self.marks.back() {
            if now.saturating_duration_since(last) < RESOLUTION {
                return;
            }
        }
        if self.marks.len() >= MAX_MARKS {
            self.coarsen();
        }
        self.marks.push_back((offset, now));
    }

    /// Keeps every other mark (the first always).
    fn coarsen(&mut self) {
        let mut index = 0;
        self.marks.retain(|_| {
            index += 1;
            index % 2 == 1
        });
    }

    /// How long the message at `head` (the oldest ready one) has waited;
    /// marks below it are forgotten. None if the queue has no mark for it
    /// (e.g. it was recovered from disk at start).
    pub(crate) fn age_of(&mut self, head: Offset, now: Instant) -> Option<Duration> {
        while self.marks.len() >= 2 && self.marks[1].0 <= head {
            self.marks.pop_front();
        }
        let &(offset, at) = self.marks.front()?;
        (offset <= head).then(|| now.saturating_duration_since(at))
    }
}

/// Per queue, the oldest unacknowledged delivery each channel holds from
/// it, as the channels last reported.
#[derive(Debug, Default)]
pub(crate) struct UnackedAges {
    reports: Mutex<Vec<(ReporterId, std::time::Instant)>>,
}

/// Names the channel a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReporterId(pub u64);

impl ReporterId {
    /// A new id, never handed out before.
    pub(crate) fn next() -> ReporterId {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ReporterId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl UnackedAges {
    /// `reporter`'s oldest delivery from this queue was made at `at`.
    pub(crate) fn report(&self, reporter: ReporterId, at: std::time::Instant) {
        let mut reports = self.reports.lock();
        match reports.iter_mut().find(|(id, _)| *id == reporter) {
            Some(report) => report.1 = at,
            None => reports.push((reporter, at)),
        }
    }

    /// `reporter` holds no delivery from this queue any more.
    pub(crate) fn clear(&self, reporter: ReporterId) {
        self.reports.lock().retain(|(id, _)| *id != reporter);
    }

    /// How long the oldest reported delivery has waited.
    pub(crate) fn oldest(&self, now: std::time::Instant) -> Option<Duration> {
        let reports = self.reports.lock();
        let oldest = reports.iter().map(|(_, at)| *at).min()?;
        Some(now.saturating_duration_since(oldest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_is_that_of_the_last_mark_at_or_below_the_head() {
        let start = Instant::now();
        let mut clock = ArrivalClock::default();
        clock.arrived(Offset(0), start);
        clock.arrived(Offset(5), start + Duration::from_millis(50)); // within the resolution
        clock.arrived(Offset(10), start + Duration::from_secs(1));
        let now = start + Duration::from_secs(3);
        assert_eq!(clock.age_of(Offset(3), now), Some(Duration::from_secs(3)));
        assert_eq!(clock.age_of(Offset(12), now), Some(Duration::from_secs(2)));
        // The first mark is gone now that the head passed the second.
        assert_eq!(clock.marks.len(), 1);
    }

    #[test]
    fn marks_stay_bounded_and_never_make_a_message_younger() {
        let start = Instant::now();
        let mut clock = ArrivalClock::default();
        for i in 0..10_000u64 {
            clock.arrived(Offset(i), start + Duration::from_secs(i));
        }
        assert!(clock.marks.len() <= MAX_MARKS);
        let now = start + Duration::from_secs(20_000);
        let age = clock.age_of(Offset(7_777), now).unwrap();
        assert!(age >= Duration::from_secs(20_000 - 7_777), "{age:?}");
    }

    #[test]
    fn the_oldest_report_wins_and_cleared_ones_are_gone() {
        let start = std::time::Instant::now();
        let ages = UnackedAges::default();
        let (a, b) = (ReporterId::next(), ReporterId::next());
        ages.report(a, start + Duration::from_secs(2));
        ages.report(b, start);
        let now = start + Duration::from_secs(5);
        assert_eq!(ages.oldest(now), Some(Duration::from_secs(5)));
        ages.clear(b);
        assert_eq!(ages.oldest(now), Some(Duration::from_secs(3)));
        ages.clear(a);
        assert_eq!(ages.oldest(now), None);
    }
}
