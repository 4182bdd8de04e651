//! The process's file descriptors and threads, from /proc.

/// What /proc says of this process (zeros where it says nothing).
pub(crate) struct Figures {
    pub open_fds: u64,
    pub max_fds: u64,
    pub threads: u64,
}

pub(crate) fn figures() -> Figures {
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Threads:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    Figures {
        open_fds,
        max_fds,
        threads,
    }
}
