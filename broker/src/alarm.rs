//! The resource alarms, as RabbitMQ's: memory (the process's resident
//! memory at or above the high watermark) and disk (free space on the data
//! directory's disk below the limit). While one is raised, connections that
//! publish are blocked (the connection loop stops reading them); consumers
//! are served.
//!
//! A monitor thread measures both (the process's resident memory every
//! [`MEMORY_CHECK_INTERVAL`], free disk space every
//! [`DISK_CHECK_INTERVAL`]), so no file is read on the runtime's workers.
//! Between two measurements, connections count the bytes they read off
//! their sockets; once the last measurement plus twice those bytes (a body
//! may hold on to the read buffer around it) reaches the watermark, they
//! wake the monitor to measure at once. So measurements come closer
//! together as memory nears the watermark, and a fast publisher cannot
//! carry memory far past it between two of them; the alarm itself follows
//! measurements only.
//!
//! The same measurements tell non-durable queues when to page: once
//! resident memory reaches `--memory-paging-ratio` of the watermark
//! (RabbitMQ 3.x's `vm_memory_high_watermark_paging_ratio`), they keep
//! only a window of their messages in memory and the rest on disk
//! ([`MemoryPressure`]); while it lasts, the monitor also asks the broker,
//! at most once a second, to move what queues already held beyond their
//! window to disk (the relief hook; it runs on a thread of its own).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::memory::{self, MemoryWatermark};

/// How often resident memory is measured.
const MEMORY_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// The least time between two measurements, however often connections
/// wake the monitor.
const MEMORY_CHECK_MIN_GAP: Duration = Duration::from_millis(1);
/// The least time between two runs of the relief hook.
const RELIEF_INTERVAL: Duration = Duration::from_secs(1);
/// How often, at most, freed memory is returned to the system while
/// queues page (every check while the alarm is raised).
const PAGING_RELEASE_INTERVAL: Duration = Duration::from_millis(10);
/// How often free disk space is measured.
const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The memory alarm clears once resident memory is below this share of
/// the watermark, so it does not flap at the edge.
const MEMORY_CLEAR_RATIO: f64 = 0.9;

/// What a byte read is assumed to cost in memory until the next
/// measurement: the byte, and as much again of the read buffer a message
/// body keeps alive around it.
const INFLOW_COST: u64 = 2;

/// Which alarms are raised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Raised {
    pub memory: bool,
    pub disk: bool,
}

impl Raised {
    pub(crate) fn any(self) -> bool {
        self.memory || self.disk
    }

    /// The reason connection.blocked gives, in RabbitMQ's words.
    pub(crate) fn reason(self) -> &'static str {
        match (self.memory, self.disk) {
            (true, true) => "low on memory & disk",
            (true, false) => "low on memory",
            _ => "low on disk",
        }
    }
}

/// Whether memory is high enough that non-durable queues page: set at the
/// paging ratio of the watermark, cleared below 90% of that.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryPressure(Arc<AtomicBool>);

impl MemoryPressure {
    /// Memory is high: queues that page only under pressure page.
    pub(crate) fn is_high(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, high: bool) -> bool {
        self.0.swap(high, Ordering::Relaxed) != high
    }
}

/// What the alarms are measured against.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub memory_high_watermark: MemoryWatermark,
    /// The share of the watermark at which non-durable queues page.
    pub memory_paging_ratio: f64,
    pub disk_free_limit: u64,
    pub data_dir: PathBuf,
    /// Returns freed memory to the operating system (see
    /// `BrokerConfig::release_memory`).
    pub release_memory: Option<fn()>,
}

/// The alarms' state, shared by the monitor and every connection.
pub(crate) struct Alarms {
    raised: watch::Sender<Raised>,
    /// The memory watermark, in bytes.
    watermark: u64,
    /// Resident memory at the last measurement.
    resident: AtomicU64,
    /// Set while resident memory is at or above `paging_at`.
    pressure: MemoryPressure,
    /// The paging ratio of the watermark, in bytes.
    paging_at: u64,
    /// Bytes read from sockets since the last measurement.
    inflow: AtomicU64,
    limits: Limits,
    /// The monitor thread, woken when memory may have reached the watermark.
    monitor: OnceLock<Thread>,
    /// What frees memory under pressure (the broker pages queues out).
    relief: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// The relief hook is running.
    relieving: AtomicBool,
    /// When freed memory was last returned while paging.
    last_release: parking_lot::Mutex<Option<Instant>>,
}

impl Alarms {
    /// Measures memory and disk once, and starts the monitor thread,
    /// which ends when the returned `Alarms` is dropped.
    pub(crate) fn start(limits: Limits) -> Arc<Alarms> {
        let available = memory::available_bytes().unwrap_or(u64::MAX);
        let watermark = limits.memory_high_watermark.bytes(available);
        tracing::info!(
            "memory high watermark set to {} MiB ({watermark} bytes) of {} MiB available",
            watermark >> 20,
            available >> 20
        );
        let (raised, _) = watch::channel(Raised::default());
        let paging_at = (watermark as f64 * limits.memory_paging_ratio.clamp(0.0, 1.0)) as u64;
        let alarms = Arc::new(Alarms {
            raised,
            watermark,
            resident: AtomicU64::new(0),
            pressure: MemoryPressure::default(),
            paging_at,
            relief: OnceLock::new(),
            relieving: AtomicBool::new(false),
            last_release: parking_lot::Mutex::new(None),
            inflow: AtomicU64::new(0),
            limits,
            monitor: OnceLock::new(),
        });
        alarms.check_memory();
        alarms.check_disk();
        let weak = Arc::downgrade(&alarms);
        let spawned = std::thread::Builder::new()
            .name("warren-alarms".into())
            .spawn(move || monitor(weak));
        match spawned {
            Ok(handle) => {
                let _ = alarms.monitor.set(handle.thread().clone());
            }
            Err(e) => tracing::error!("cannot start the resource monitor thread: {e}; memory and disk are not watched"),
        }
        alarms
    }

    /// Sets what the monitor calls, on a thread of its own, while memory is
    /// at or above the paging ratio.
    pub(crate) fn set_relief(&self, relief: Box<dyn Fn() + Send + Sync>) {
        let _ = self.relief.set(relief);
    }

    /// Runs the relief hook on a thread of its own unless it is running.
    fn relieve(self: &Arc<Self>) {
        if self.relief.get().is_none() || self.relieving.swap(true, Ordering::AcqRel) {
            return;
        }
        let alarms = Arc::downgrade(self);
        let spawned = std::thread::Builder::new().name("warren-relief".into()).spawn(move || {
            if let Some(alarms) = alarms.upgrade() {
                if let Some(relief) = alarms.relief.get() {
                    relief();
                }
                alarms.relieving.store(false, Ordering::Release);
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a thread to page queues out: {e}");
            self.relieving.store(false, Ordering::Release);
        }
    }

    /// The memory watermark, in bytes.
    pub(crate) fn watermark(&self) -> u64 {
        self.watermark
    }

    /// Resident memory at the last measurement.
    pub(crate) fn resident(&self) -> u64 {
        self.resident.load(Ordering::Relaxed)
    }

    /// Which alarms are raised now.
    pub(crate) fn raised(&self) -> Raised {
        *self.raised.borrow()
    }

    /// Whether non-durable queues should page now.
    pub(crate) fn pressure(&self) -> MemoryPressure {
        self.pressure.clone()
    }

    /// Watches which alarms are raised.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Raised> {
        self.raised.subscribe()
    }

    /// Counts bytes a connection read; wakes the monitor to measure if
    /// they may have taken memory to the watermark.
    pub(crate) fn note_inflow(&self, bytes: usize) {
        let inflow = self.inflow.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        let estimate = self
            .resident
            .load(Ordering::Relaxed)
            .saturating_add(inflow.saturating_mul(INFLOW_COST));
        if estimate >= self.watermark && !self.raised.borrow().memory {
            // Publishers stop at once on the estimate, not only once the
            // monitor thread (which a busy machine may run late) has
            // measured: it measures now and clears the alarm if memory is
            // in fact below the clearing level.
            self.set_memory(true, estimate);
            if let Some(monitor) = self.monitor.get() {
                monitor.unpark();
            }
        }
    }

    /// Measures resident memory; raises the alarm at the watermark, clears
    /// it below [`MEMORY_CLEAR_RATIO`] of it.
    fn check_memory(&self) {
        // Freed memory goes back to the system while memory is high (the
        // alarm raised, or queues paging; a walk of the allocator's heaps,
        // at most every 10 ms): then what is resident is what is held, and
        // the alarm can clear. Throughput matters less than memory then.
        let paging_release_due = self.pressure.is_high() && {
            let mut last = self.last_release.lock();
            let due = last.is_none_or(|at| at.elapsed() >= PAGING_RELEASE_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if self.raised.borrow().memory || paging_release_due {
            if let Some(release) = self.limits.release_memory {
                release();
            }
        }
        let Some(resident) = memory::resident_bytes() else {
            return;
        };
        self.resident.store(resident, Ordering::Relaxed);
        self.inflow.store(0, Ordering::Relaxed);
        let paging = at_level(self.pressure.is_high(), resident, self.paging_at);
        if self.pressure.set(paging) && paging {
            tracing::info!(
                "memory at {} MiB, {} MiB or more: non-durable queues keep only a window of their messages in memory",
                resident >> 20,
                self.paging_at >> 20
            );
        }
        let raise = at_level(self.raised.borrow().memory, resident, self.watermark);
        self.set_memory(raise, resident);
    }

    fn set_memory(&self, raise: bool, used: u64) {
        let changed = self
            .raised
            .send_if_modified(|r| std::mem::replace(&mut r.memory, raise) != raise);
        if !changed {
            return;
        }
        if raise {
            tracing::warn!(
                "memory resource limit alarm set on node warren: {} MiB used, the high watermark is {} MiB; \
                 publishers are blocked until memory is released",
                used >> 20,
                self.watermark >> 20
            );
        } else {
            tracing::info!(
                "memory resource limit alarm cleared on node warren: {} MiB used, the high watermark is {} MiB",
                used >> 20,
                self.watermark >> 20
            );
        }
    }

    /// Measures free space on the data directory's disk; raises or clears
    /// the disk alarm.
    fn check_disk(&self) {
        let limit = self.limits.disk_free_limit;
        let free = match fs4::available_space(&self.limits.data_dir) {
            Ok(free) => free,
            Err(e) => {
                tracing::warn!("cannot read free disk space on {}: {e}", self.limits.data_dir.display());
                return;
            }
        };
        let raise = free < limit;
        let changed = self
            .raised
            .send_if_modified(|r| std::mem::replace(&mut r.disk, raise) != raise);
        if changed && raise {
            tracing::warn!(
                "disk resource limit alarm set on node warren: free disk space {free} bytes is below the limit \
                 of {limit} bytes; publishers are blocked"
            );
        } else if changed {
            tracing::info!("disk resource limit alarm cleared on node warren: {free} bytes free");
        }
    }
}

/// Whether a level that was `on` is on after measuring `resident`: it goes
/// on at `level` or above, and off only below [`MEMORY_CLEAR_RATIO`] of
/// it, so it does not flap at the edge.
fn at_level(on: bool, resident: u64, level: u64) -> bool {
    if on {
        resident as f64 >= level as f64 * MEMORY_CLEAR_RATIO
    } else {
        resident >= level
    }
}

/// The monitor thread's loop: measures until the alarms are dropped.
fn monitor(alarms: Weak<Alarms>) {
    let mut last_disk_check = Instant::now();
    let mut last_memory_check = Instant::now();
    let mut last_relief: Option<Instant> = None;
    let mut pressed = false;
    loop {
        // Near the watermark memory moves fastest relative to what is
        // left: measured five times as often then.
        let interval = if pressed {
            MEMORY_CHECK_INTERVAL / 5
        } else {
            MEMORY_CHECK_INTERVAL
        };
        std::thread::park_timeout(interval);
        // Woken early: not more often than the least gap.
        if let Some(wait) = MEMORY_CHECK_MIN_GAP.checked_sub(last_memory_check.elapsed()) {
            std::thread::sleep(wait);
        }
        let Some(alarms) = alarms.upgrade() else {
            return;
        };
        last_memory_check = Instant::now();
        alarms.check_memory();
        pressed = alarms.pressure.is_high();
        if alarms.pressure.is_high() && last_relief.is_none_or(|at| at.elapsed() >= RELIEF_INTERVAL) {
            last_relief = Some(Instant::now());
            alarms.relieve();
        }
        if last_disk_check.elapsed() >= DISK_CHECK_INTERVAL {
            last_disk_check = Instant::now();
            alarms.check_disk();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_rabbitmqs() {
        let raised = |memory, disk| Raised { memory, disk };
        assert_eq!(raised(true, false).reason(), "low on memory");
        assert_eq!(raised(false, true).reason(), "low on disk");
        assert_eq!(raised(true, true).reason(), "low on memory & disk");
        assert!(!raised(false, false).any());
    }

    fn limits(watermark: MemoryWatermark) -> Limits {
        Limits {
            memory_high_watermark: watermark,
            memory_paging_ratio: 0.5,
            disk_free_limit: 0,
            data_dir: std::env::temp_dir(),
            release_memory: None,
        }
    }

    #[test]
    fn a_watermark_of_zero_raises_the_memory_alarm_at_start() {
        let alarms = Alarms::start(limits(MemoryWatermark::Relative(0.0)));
        assert!(alarms.subscribe().borrow().memory);
        assert!(alarms.pressure().is_high(), "and queues page");
    }

    #[test]
    fn queues_page_from_the_paging_ratio_of_the_watermark() {
        let resident = memory::resident_bytes().expect("VmRSS");
        // The process is past half of twice its size, not past half of
        // ten times it.
        let alarms = Alarms::start(limits(MemoryWatermark::Absolute(resident * 2 - resident / 4)));
        assert!(alarms.pressure().is_high());
        assert!(!alarms.subscribe().borrow().memory);
        let alarms = Alarms::start(limits(MemoryWatermark::Absolute(resident * 10)));
        assert!(!alarms.pressure().is_high());
    }

    #[test]
    fn bytes_read_near_the_watermark_bring_a_measurement_at_once() {
        let resident = memory::resident_bytes().expect("VmRSS");
        let alarms = Alarms::start(limits(MemoryWatermark::Absolute(resident + (256 << 20))));
        assert!(!alarms.subscribe().borrow().memory);
        // Far from the watermark: no early measurement.
        alarms.check_memory();
        alarms.note_inflow(1 << 20);
        assert_eq!(alarms.inflow.load(Ordering::Relaxed), 1 << 20);
        // Twice what was read reaches the watermark: the monitor measures
        // now (which starts the count again), not in 50 ms, and finds
        // memory below it.
        alarms.note_inflow(130 << 20);
        let woken = Instant::now();
        while alarms.inflow.load(Ordering::Relaxed) != 0 {
            assert!(woken.elapsed() < Duration::from_secs(5), "the monitor never measured");
            std::thread::yield_now();
        }
        assert!(!alarms.subscribe().borrow().memory);
    }
}
