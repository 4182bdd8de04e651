//! The wall clock as Warren writes it down: milliseconds since the Unix
//! epoch (0 should the clock read before it).

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
