//! How many connections are open, against `--max-connections` (RabbitMQ's
//! `connection_max`): a connection takes a slot at connection.open and
//! gives it back when it ends, however it ends.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The broker's count of open connections and its limit.
#[derive(Debug)]
pub(crate) struct ConnectionSlots {
    open: AtomicU32,
    limit: Option<u32>,
}

/// One open connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct ConnectionSlot(Arc<ConnectionSlots>);

/// The limit that was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitReached(pub u32);

impl ConnectionSlots {
    pub(crate) fn new(limit: Option<u32>) -> Arc<ConnectionSlots> {
        Arc::new(ConnectionSlots {
            open: AtomicU32::new(0),
            limit,
        })
    }

    /// Takes a slot, unless `limit` connections are open already.
    pub(crate) fn take(self: &Arc<Self>) -> Result<ConnectionSlot, LimitReached> {
        let limit = self.limit.unwrap_or(u32::MAX);
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            })
            .map(|_| ConnectionSlot(self.clone()))
            .map_err(|_| LimitReached(limit))
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> u32 {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_at_the_limit_and_come_back_when_dropped() {
        let slots = ConnectionSlots::new(Some(2));
        let first = slots.take().unwrap();
        let _second = slots.take().unwrap();
        assert_eq!(slots.take().unwrap_err(), LimitReached(2));
        drop(first);
        assert_eq!(slots.open(), 1);
        assert!(slots.take().is_ok());
    }

    #[test]
    fn a_limit_of_zero_refuses_all_and_none_refuses_none() {
        assert_eq!(ConnectionSlots::new(Some(0)).take().unwrap_err(), LimitReached(0));
        let unlimited = ConnectionSlots::new(None);
        let held: Vec<_> = (0..1000).map(|_| unlimited.take().unwrap()).collect();
        assert_eq!(unlimited.open(), 1000);
        drop(held);
        assert_eq!(unlimited.open(), 0);
    }
}
