//! What a queue has accepted from publishers but not yet taken in: the
//! bytes of publishes a replicated queue proposed and its group has not
//! committed, or a remote queue forwarded and its home has not stored.
//! Past a limit, a publisher waits (its connection stops reading, as a
//! classic queue's publishers wait for a disk that fell behind): without
//! confirms, a publisher could otherwise hand a queue messages far faster
//! than a majority commits them, and what waits grows without bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Bytes a queue may have waiting before its publishers wait: a few of
/// the group's 4 MiB entries, enough to keep it busy.
pub(crate) const BACKLOG_LIMIT: usize = 16 << 20;

#[derive(Debug)]
pub(crate) struct Backlog {
    bytes: AtomicUsize,
    limit: usize,
    lock: Mutex<()>,
    drained: Condvar,
}

/// One publish's share of a backlog: counted until dropped.
#[derive(Debug)]
pub(crate) struct Share {
    backlog: Arc<Backlog>,
    bytes: usize,
}

impl Drop for Share {
    fn drop(&mut self) {
        let before = self.backlog.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        if before > self.backlog.limit && before - self.bytes <= self.backlog.limit {
            let _held = self.backlog.lock.lock();
            self.backlog.drained.notify_all();
        }
    }
}

impl Backlog {
    pub(crate) fn new(limit: usize) -> Arc<Backlog> {
        Arc::new(Backlog {
            bytes: AtomicUsize::new(0),
            limit,
            lock: Mutex::new(()),
            drained: Condvar::new(),
        })
    }

    /// Counts `bytes` until the share is dropped.
    pub(crate) fn add(self: &Arc<Self>, bytes: usize) -> Share {
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
        Share {
            backlog: self.clone(),
            bytes,
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// Waits while the backlog is past its limit, unless `gone()` (the
    /// queue was deleted). On a runtime thread the runtime is told first.
    pub(crate) fn wait_below_limit(&self, gone: impl Fn() -> bool) {
        if self.bytes() <= self.limit {
            return;
        }
        crate::blocking::run(|| {
            let mut held = self.lock.lock();
            while self.bytes() > self.limit && !gone() {
                // Bounded: a share dropped between the check and the wait
                // is seen at the next look.
                self.drained.wait_for(&mut held, Duration::from_millis(50));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publisher_waits_until_the_backlog_drains_below_its_limit() {
        let backlog = Backlog::new(100);
        let first = backlog.add(80);
        let second = backlog.add(80);
        assert_eq!(backlog.bytes(), 160);
        let waiter = {
            let backlog = backlog.clone();
            std::thread::spawn(move || backlog.wait_below_limit(|| false))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!waiter.is_finished(), "went on past the limit");
        drop(first);
        waiter.join().expect("the waiter");
        assert_eq!(backlog.bytes(), 80);
        drop(second);
        assert_eq!(backlog.bytes(), 0);
        // A gone queue's publisher does not wait.
        let _big = backlog.add(500);
        backlog.wait_below_limit(|| true);
    }
}
