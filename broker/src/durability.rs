//! Group commit: many writes, one fsync, then the confirms.
//!
//! Every write to the store belongs to an epoch. A flusher thread closes the
//! current epoch, syncs the store, and announces the epoch as durable; a
//! publisher confirm waits for the epoch its message was written in. Under
//! load the flusher syncs back to back and each sync covers every publish
//! that arrived meanwhile, so confirms cost one fsync per batch, not per
//! message. Writes made without a waiting confirm (acks, transient work)
//! reach disk within [`IDLE_SYNC_INTERVAL`]. Between syncs, about once a
//! second, the flusher also lets the store compact its message files.
//!
//! The flusher is also the only thread that writes message bodies: the
//! store keeps appends in memory, and once [`WRITE_BEHIND_AT`] bytes wait
//! the flusher is woken to write them (without an fsync). Publishers never
//! touch the disk; if the disk falls [`UNWRITTEN_MAX`] behind them, they
//! wait for it (the broker's back-pressure on a disk slower than its
//! publishers).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;
use warren_store::{Offset, QueueId, Store};

/// Longest time a write waits for disk when nobody asked for a sync.
pub(crate) const IDLE_SYNC_INTERVAL: Duration = Duration::from_millis(200);

/// Shortest time between two syncs: a sync requested sooner waits the rest,
/// so that under load each sync covers a batch of publishes instead of a
/// handful (a sync costs CPU in the store, not just disk time).
pub(crate) const MIN_SYNC_SPACING: Duration = Duration::from_millis(2);

/// Bytes appended and not written that wake the flusher to write them.
pub(crate) const WRITE_BEHIND_AT: u64 = 1024 * 1024;
/// Bytes appended and not written past which publishers wait for the disk.
pub(crate) const UNWRITTEN_MAX: u64 = 64 * 1024 * 1024;

/// How often the flusher looks for disk space to give back.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one round of maintenance may take.
const MAINTENANCE_BUDGET: Duration = Duration::from_millis(20);

/// What the flusher announces after each sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Synced {
    /// Every epoch up to this one is on disk.
    pub durable: u64,
    /// The latest epoch whose sync failed: writes of it and before may be
    /// lost (after a failed fsync the kernel may drop the pages it could not
    /// write), so publishes waiting on such an epoch are nacked, never acked.
    pub failed: u64,
}

impl Synced {
    /// Whether a publish written in `epoch` may be acked now: Some(true) to
    /// ack, Some(false) to nack, None to keep waiting. (Epoch 0: nothing was
    /// written, it only waits its turn.)
    pub(crate) fn verdict(&self, epoch: u64) -> Option<bool> {
        if epoch != 0 && epoch <= self.failed {
            Some(false)
        } else if epoch <= self.durable {
            Some(true)
        } else {
            None
        }
    }
}

/// What the flusher was asked for since it last looked.
#[derive(Debug, Default)]
struct Requests {
    /// A confirm waits: sync soon.
    sync: bool,
    /// Appends wait to be written.
    write: bool,
}

pub(crate) struct Durability {
    store: Arc<dyn Store>,
    /// The epoch writes made now belong to.
    write_epoch: AtomicU64,
    /// Which epochs are known to be on disk, and which may not be.
    durable: watch::Sender<Synced>,
    requests: Mutex<Requests>,
    wake: Condvar,
    /// Notified after the flusher wrote: publishers waiting for the disk
    /// look again.
    drained: Condvar,
    /// Set when something was written since the last sync.
    dirty: AtomicBool,
    stopping: AtomicBool,
    /// Per durable queue: every offset below this was delivered at least once.
    delivered_marks: DashMap<QueueId, Offset>,
    /// Set after a sync failed: publishes needing disk are refused.
    failed: AtomicBool,
    /// How far appends may run ahead of the disk: [`UNWRITTEN_MAX`], or
    /// less with a small memory watermark (`limit_unwritten`).
    unwritten_max: AtomicU64,
}

impl Durability {
    /// Wraps a store and starts its flusher thread.
    pub(crate) fn start(store: Arc<dyn Store>) -> Arc<Durability> {
        let (durable, _) = watch::channel(Synced::default());
        let durability = Arc::new(Durability {
            store,
            write_epoch: AtomicU64::new(1),
            durable,
            requests: Mutex::new(Requests::default()),
            wake: Condvar::new(),
            drained: Condvar::new(),
            dirty: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            delivered_marks: DashMap::new(),
            failed: AtomicBool::new(false),
            unwritten_max: AtomicU64::new(UNWRITTEN_MAX),
        });
        let flusher = durability.clone();
        std::thread::Builder::new()
            .name("warren-flusher".into())
            .spawn(move || flusher.run())
            .expect("spawn flusher thread");
        durability
    }

    pub(crate) fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The store, for messages that keep a reference to their stored body.
    pub(crate) fn shared_store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Notes that the store was written to; returns the epoch to wait for.
    pub(crate) fn wrote(&self) -> u64 {
        self.dirty.store(true, Ordering::Release);
        self.write_epoch.load(Ordering::SeqCst)
    }

    /// Asks for a sync soon (a confirm is waiting on it).
    pub(crate) fn request_sync(&self) {
        let mut requests = self.requests.lock();
        if !requests.sync {
            requests.sync = true;
            self.wake.notify_one();
        }
    }

    /// Called before appending to the store: wakes the flusher when enough
    /// waits to be written, and waits for it when the disk has fallen
    /// [`UNWRITTEN_MAX`] behind (on a runtime thread, telling the runtime
    /// it blocks).
    pub(crate) fn throttle(&self) {
        let unwritten = self.store.unwritten_bytes();
        if unwritten < WRITE_BEHIND_AT {
            return;
        }
        self.nudge();
        let max = self.unwritten_max.load(Ordering::Relaxed);
        if unwritten < max {
            return;
        }
        crate::blocking::run(|| {
            let mut requests = self.requests.lock();
            while self.store.unwritten_bytes() >= max && !self.stopping.load(Ordering::Acquire) {
                requests.write = true;
                self.wake.notify_one();
                self.drained.wait_for(&mut requests, Duration::from_millis(100));
            }
        });
    }

    /// Wakes the flusher to write what waits once enough does, without
    /// waiting for it (for appends that must not wait: [`Self::throttle`]
    /// waits when the disk falls far behind).
    pub(crate) fn nudge(&self) {
        if self.store.unwritten_bytes() < WRITE_BEHIND_AT {
            return;
        }
        let mut requests = self.requests.lock();
        if !requests.write {
            requests.write = true;
            self.wake.notify_one();
        }
    }

    /// Lets appends run at most `bytes` ahead of the disk (never below the
    /// write-behind threshold), so what waits for the disk stays a small
    /// share of a small memory watermark.
    pub(crate) fn limit_unwritten(&self, bytes: u64) {
        let max = bytes.clamp(WRITE_BEHIND_AT * 2, UNWRITTEN_MAX);
        self.unwritten_max.store(max, Ordering::Relaxed);
    }

    /// Watches what is durable.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Synced> {
        self.durable.subscribe()
    }

    pub(crate) fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Records a delivery from a durable queue (see `Store::save_delivered_mark`).
    pub(crate) fn mark_delivered(&self, queue: QueueId, offset: Offset) {
        let mut mark = self.delivered_marks.entry(queue).or_default();
        if *mark <= offset {
            *mark = offset.next();
            // The mark reaches disk with the next sync, even if nothing else
            // is written meanwhile.
            self.dirty.store(true, Ordering::Release);
        }
    }

    pub(crate) fn forget_queue(&self, queue: QueueId) {
        self.delivered_marks.remove(&queue);
    }

    /// Syncs once more and stops the flusher (at shutdown).
    pub(crate) fn stop(&self) {
        self.sync_now();
        self.stopping.store(true, Ordering::Release);
        let _guard = self.requests.lock();
        self.wake.notify_one();
        self.drained.notify_all();
    }

    fn run(self: Arc<Self>) {
        let mut last_sync = std::time::Instant::now();
        let mut last_maintenance = std::time::Instant::now();
        while !self.stopping.load(Ordering::Acquire) {
            if last_maintenance.elapsed() >= MAINTENANCE_INTERVAL {
                last_maintenance = std::time::Instant::now();
                self.maintain();
            }
            let since = last_sync.elapsed();
            if since < MIN_SYNC_SPACING {
                std::thread::sleep(MIN_SYNC_SPACING - since);
            }
            let requests = {
                let mut requests = self.requests.lock();
                if !requests.sync && !requests.write {
                    let wait = IDLE_SYNC_INTERVAL.saturating_sub(last_sync.elapsed());
                    self.wake.wait_for(&mut requests, wait.max(MIN_SYNC_SPACING));
                }
                std::mem::take(&mut *requests)
            };
            let sync_due = requests.sync || last_sync.elapsed() >= IDLE_SYNC_INTERVAL;
            if sync_due && self.dirty.load(Ordering::Acquire) {
                last_sync = std::time::Instant::now();
                self.sync_now();
            } else if sync_due && !requests.write {
                // Nothing to sync: the next look is an idle interval away.
                last_sync = std::time::Instant::now();
            } else if requests.write {
                if let Err(e) = self.store.write_behind() {
                    tracing::error!("writing messages to disk failed: {e}");
                }
            }
            let _guard = self.requests.lock();
            self.drained.notify_all();
        }
    }

    /// Gives disk space back (compaction), for at most a few milliseconds
    /// so confirms waiting for the next sync are not held up long.
    fn maintain(&self) {
        let started = std::time::Instant::now();
        while started.elapsed() < MAINTENANCE_BUDGET {
            match self.store.maintain() {
                Ok(0) => break,
                Ok(moved) => {
                    tracing::debug!(moved, "compacted a message segment");
                    // The emptied segment goes at the next sync.
                    self.dirty.store(true, Ordering::Release);
                }
                Err(e) => {
                    tracing::error!("store maintenance failed: {e}");
                    break;
                }
            }
        }
    }

    /// Closes the current epoch and makes it durable.
    fn sync_now(&self) {
        self.dirty.store(false, Ordering::Release);
        let epoch = self.write_epoch.fetch_add(1, Ordering::SeqCst);
        for mark in self.delivered_marks.iter() {
            if let Err(e) = self.store.save_delivered_mark(*mark.key(), *mark.value()) {
                tracing::error!("saving delivery marks failed: {e}");
            }
        }
        let started = std::time::Instant::now();
        let synced = self.store.sync();
        tracing::trace!(epoch, "store sync took {:?}", started.elapsed());
        match synced {
            Ok(()) => {
                self.failed.store(false, Ordering::Release);
                self.durable.send_modify(|synced| synced.durable = epoch);
            }
            Err(e) => {
                tracing::error!("sync to disk failed: {e}; publishes that need disk are refused");
                self.failed.store(true, Ordering::Release);
                self.durable.send_modify(|synced| synced.failed = epoch);
                self.dirty.store(true, Ordering::Release);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
