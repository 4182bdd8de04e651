//! A publish a replicated queue has proposed and not yet committed: the
//! channel holds its confirm until the ticket is settled, and the queue
//! settles it when the group answers (ack once a majority has it, nack if
//! the group could not commit it). The connection waiting on it is woken
//! through the `Notify` it registered.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

const PENDING: u8 = 0;
const COMMITTED: u8 = 1;
const FAILED: u8 = 2;

#[derive(Debug, Default)]
pub(crate) struct Ticket {
    state: AtomicU8,
    waiter: Mutex<Option<Arc<Notify>>>,
}

impl Ticket {
    pub(crate) fn new() -> Arc<Ticket> {
        Arc::new(Ticket::default())
    }

    /// Some(true) once committed, Some(false) if it failed, None meanwhile.
    pub(crate) fn outcome(&self) -> Option<bool> {
        match self.state.load(Ordering::Acquire) {
            PENDING => None,
            state => Some(state == COMMITTED),
        }
    }

    /// Settles the ticket and wakes whoever waits on it.
    pub(crate) fn settle(&self, committed: bool) {
        self.state
            .store(if committed { COMMITTED } else { FAILED }, Ordering::Release);
        if let Some(waiter) = self.waiter.lock().take() {
            waiter.notify_one();
        }
    }

    /// Wakes `waiter` when the ticket is settled (at once if it is).
    pub(crate) fn wake(&self, waiter: &Arc<Notify>) {
        *self.waiter.lock() = Some(waiter.clone());
        if self.outcome().is_some() {
            waiter.notify_one();
        }
    }
}
