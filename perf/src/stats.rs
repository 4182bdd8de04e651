//! Counters shared by producers and consumers, latency histograms, and the
//! per-second and final reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Default)]
pub struct Counters {
    pub published: AtomicU64,
    pub confirmed: AtomicU64,
    pub nacked: AtomicU64,
    pub consumed: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> [u64; 3] {
        [
            self.published.load(Ordering::Relaxed),
            self.confirmed.load(Ordering::Relaxed),
            self.consumed.load(Ordering::Relaxed),
        ]
    }
}

/// A latency histogram in microseconds (1 µs to 60 s, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Nanoseconds since the run began: the timestamp carried in each body.
pub fn nanos_since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub samples: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            p50_us: h.value_at_quantile(0.50),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
            samples: h.len(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub seconds: f64,
    pub published: u64,
    pub confirmed: u64,
    pub nacked: u64,
    pub consumed: u64,
    pub publish_rate: f64,
    pub confirm_rate: f64,
    pub consume_rate: f64,
    pub consumer_latency: Percentiles,
    pub confirm_latency: Percentiles,
    pub lost: u64,
    pub duplicates: u64,
}

impl Summary {
    pub fn print(&self) {
        println!(
            "total: {:.1}s, published {} ({:.0} msg/s), confirmed {} ({:.0} msg/s), nacked {}, consumed {} ({:.0} msg/s)",
            self.seconds,
            self.published,
            self.publish_rate,
            self.confirmed,
            self.confirm_rate,
            self.nacked,
            self.consumed,
            self.consume_rate
        );
        let l = &self.consumer_latency;
        println!(
            "consumer latency: p50 {} µs, p95 {} µs, p99 {} µs, max {} µs ({} samples)",
            l.p50_us, l.p95_us, l.p99_us, l.max_us, l.samples
        );
        let c = &self.confirm_latency;
        println!(
            "publish-to-confirm latency: p50 {} µs, p95 {} µs, p99 {} µs, max {} µs ({} samples)",
            c.p50_us, c.p95_us, c.p99_us, c.max_us, c.samples
        );
        println!("check: {} lost, {} duplicates", self.lost, self.duplicates);
    }
}
