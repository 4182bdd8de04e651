//! Time-based queue features: message TTL (`x-message-ttl` and the
//! `expiration` property) and queue expiry (`x-expires`).
//!
//! Each queue that needs it gets one timer task, not one per message: it
//! sleeps until the soonest deadline (the expiry of a level's head, or the
//! moment the unused queue expires), acts, and sleeps again. It holds only
//! weak references, so it ends with the queue.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Notify;

use super::{Dead, DeathReason, LocalQueue, QueueState};
use crate::queue::{Queue, QueueOf};

impl LocalQueue {
    /// Starts the timer task if it is not running yet.
    pub(super) fn ensure_timer(&self) {
        if self.timer_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(run_timer(self.me.clone(), self.timer_wake.clone()));
    }

    /// Moves expired messages at the heads into `dead`.
    pub(super) fn expire_heads(&self, state: &mut QueueState, now: Instant, dead: &mut Dead) {
        let mut expired = Vec::new();
        loop {
            let before = expired.len();
            state.ready.take_expired_heads(now, &mut expired);
            // The window's expired heads may hide a paged tail behind them.
            self.refill_if_low(state);
            if expired.len() == before {
                break;
            }
        }
        dead.extend(expired.into_iter().map(|e| (e, DeathReason::Expired)));
    }

    /// Expires what is due; returns the next deadline, and whether the queue
    /// itself has expired and must be deleted.
    fn on_timer(&self, queue: &Arc<Queue>, now: Instant) -> (Option<Instant>, bool) {
        let mut dead = Dead::new();
        let mut state = self.state.lock();
        self.expire_heads(&mut state, now, &mut dead);
        let mut next = state.ready.next_expiry();
        let mut queue_expired = false;
        if let Some(expires) = queue.args().expires {
            if state.consumers.is_empty() {
                let at = state.last_used + Duration::from_millis(expires);
                if at <= now {
                    queue_expired = true;
                } else {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
        }
        self.unlock_and_dead_letter(queue, state, dead);
        (next, queue_expired)
    }
}

async fn run_timer(me: Weak<QueueOf<LocalQueue>>, wake: Arc<Notify>) {
    loop {
        let next = {
            let Some(typed) = me.upgrade() else {
                return;
            };
            let local = typed.backend();
            let queue: Arc<Queue> = typed.clone();
            if local.is_deleted() {
                return;
            }
            let (next, expired) = local.on_timer(&queue, Instant::now());
            if expired {
                if let Some(host) = local.host.upgrade() {
                    tracing::debug!(queue = %queue.name, "queue expired (x-expires)");
                    host.delete_expired(&queue);
                }
                return;
            }
            next
        };
        match next {
            Some(deadline) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}
