//! The Raft settings every group of a cluster runs with: one heartbeat and
//! election timing for the metadata group and the queue groups alike, so
//! every group notices a dead leader as soon as the others.

use std::sync::Arc;

use openraft::{Config, SnapshotPolicy};

/// How a group's log is kept: a snapshot every `every` entries, and
/// `keep` entries left behind one (for a follower a little behind).
pub(crate) struct LogKeeping {
    pub every: u64,
    pub keep: u64,
}

/// A group's settings: `name` for its logs, its log kept as `log` says, at
/// most `max_payload` entries a message.
pub(crate) fn raft_config(name: &str, log: LogKeeping, max_payload: u64) -> Result<Arc<Config>, String> {
    Config {
        cluster_name: name.into(),
        // A follower that knew a leader stands for election once the
        // leader's lease (openraft: the longest election timeout) and an
        // election timeout have passed without a heartbeat: 0.9-1.2 s
        // (with 500-1000 ms, 1.5-2 s: a dead queue leader's publishers
        // waited up to 2 s for the next confirm).
        heartbeat_interval: 100,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(log.every),
        max_in_snapshot_log_to_keep: log.keep,
        max_payload_entries: max_payload,
        // A chunk is one request body: well below the port's limit, and
        // given time to cross and be written (openraft's 200 ms default
        // never let a snapshot of a few MiB through).
        snapshot_max_chunk_size: 4 << 20,
        install_snapshot_timeout: 10_000,
        ..Default::default()
    }
    .validate()
    .map(Arc::new)
    .map_err(|e| e.to_string())
}
