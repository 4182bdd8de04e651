//! The memory the broker uses and may use, measured: the process's
//! resident set (`VmRSS` in `/proc/self/status`), and the memory available
//! to it (the machine's, or its cgroup's limit when lower, v1 or v2), as
//! RabbitMQ's memory monitor sees them. Everything here reads files; where
//! they do not exist (not Linux) the answers are None.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The process's resident memory, in bytes.
pub(crate) fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&status, "VmRSS:")
}

/// The memory the process may use: the machine's total, or the limit of
/// its memory cgroup when there is a lower one.
pub(crate) fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total = kib_field(&meminfo, "MemTotal:")?;
    Some(cgroup_limit().map_or(total, |limit| limit.min(total)))
}

/// `Key:   1234 kB` in bytes.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The memory limit of the process's cgroup, if it has one.
fn cgroup_limit() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroups.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            // cgroup v2: one unified hierarchy.
            read_limit(&Path::new("/sys/fs/cgroup").join(path).join("memory.max"))
        } else if controllers.split(',').any(|c| c == "memory") {
            let dir: PathBuf = Path::new("/sys/fs/cgroup/memory").join(path);
            read_limit(&dir.join("memory.limit_in_bytes"))
        } else {
            None
        }
    })
}

/// A limit file's value; "max" and v1's huge "no limit" read as none.
fn read_limit(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let limit: u64 = text.trim().parse().ok()?;
    (limit < 1 << 60).then_some(limit)
}

/// How high memory may go before publishers are blocked: RabbitMQ's
/// `vm_memory_high_watermark`, relative or absolute.
/// In a TOML file: a float is a fraction, an integer a size in bytes, a
/// string either (`"0.6"`, `"512MiB"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WatermarkText", into = "WatermarkText")]
pub enum MemoryWatermark {
    /// A fraction of the memory available to the process (0 blocks every
    /// publisher).
    Relative(f64),
    /// Bytes.
    Absolute(u64),
}

impl Default for MemoryWatermark {
    /// RabbitMQ 4's default: 60% of the memory available.
    fn default() -> Self {
        MemoryWatermark::Relative(0.6)
    }
}

impl MemoryWatermark {
    /// Reads `0.6` (a fraction), `512MiB`, `1GB`, `2g`, `600000000`
    /// (bytes), with RabbitMQ's units: k/KiB, M/MiB, G/GiB (powers of 1024)
    /// and kB, MB, GB (powers of 1000).
    pub fn parse(text: &str) -> Result<MemoryWatermark, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let invalid = || format!("memory watermark '{text}': a fraction such as 0.6, or a size such as 512MiB");
        if unit.is_empty() && (number.contains('.') || number == "0" || number == "1") {
            let fraction: f64 = number.parse().map_err(|_| invalid())?;
            return if (0.0..=1.0).contains(&fraction) {
                Ok(MemoryWatermark::Relative(fraction))
            } else {
                Err(invalid())
            };
        }
        let count: u64 = number.parse().map_err(|_| invalid())?;
        let scale: u64 = match unit.trim() {
            "" | "B" => 1,
            "k" | "K" | "KiB" | "kiB" => 1 << 10,
            "M" | "m" | "MiB" => 1 << 20,
            "G" | "g" | "GiB" => 1 << 30,
            "kB" | "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            _ => return Err(invalid()),
        };
        count
            .checked_mul(scale)
            .map(MemoryWatermark::Absolute)
            .ok_or_else(invalid)
    }

    /// The watermark in bytes, given the memory available.
    pub fn bytes(self, available: u64) -> u64 {
        match self {
            MemoryWatermark::Relative(fraction) => (available as f64 * fraction) as u64,
            MemoryWatermark::Absolute(bytes) => bytes,
        }
    }
}

/// A watermark as a settings file writes it.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WatermarkText {
    Fraction(f64),
    Bytes(u64),
    Text(String),
}

impl TryFrom<WatermarkText> for MemoryWatermark {
    type Error = String;

    fn try_from(text: WatermarkText) -> Result<Self, String> {
        match text {
            WatermarkText::Fraction(f) => MemoryWatermark::parse(&f.to_string()),
            WatermarkText::Bytes(b) => Ok(MemoryWatermark::Absolute(b)),
            WatermarkText::Text(t) => MemoryWatermark::parse(&t),
        }
    }
}

impl From<MemoryWatermark> for WatermarkText {
    fn from(watermark: MemoryWatermark) -> Self {
        match watermark {
            MemoryWatermark::Relative(f) => WatermarkText::Fraction(f),
            MemoryWatermark::Absolute(b) => WatermarkText::Bytes(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_read_as_rabbitmq_reads_them() {
        assert_eq!(MemoryWatermark::parse("0.4"), Ok(MemoryWatermark::Relative(0.4)));
        assert_eq!(MemoryWatermark::parse("0"), Ok(MemoryWatermark::Relative(0.0)));
        assert_eq!(
            MemoryWatermark::parse("512MiB"),
            Ok(MemoryWatermark::Absolute(512 << 20))
        );
        assert_eq!(MemoryWatermark::parse("2G"), Ok(MemoryWatermark::Absolute(2 << 30)));
        assert_eq!(
            MemoryWatermark::parse("1GB"),
            Ok(MemoryWatermark::Absolute(1_000_000_000))
        );
        assert_eq!(
            MemoryWatermark::parse("600000000"),
            Ok(MemoryWatermark::Absolute(600_000_000))
        );
        for bad in ["1.5", "lots", "12XB", "-1", ""] {
            assert!(MemoryWatermark::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(MemoryWatermark::Relative(0.5).bytes(1000), 500);
    }

    #[test]
    fn this_process_has_resident_and_available_memory() {
        let resident = resident_bytes().expect("VmRSS");
        let available = available_bytes().expect("MemTotal");
        assert!(resident > 0 && resident < available, "{resident} of {available}");
    }
}
