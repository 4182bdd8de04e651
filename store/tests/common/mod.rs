//! Records the store tests build again and again, and a look at the files
//! a store leaves.

use std::path::{Path, PathBuf};

use warren_store::{EntryRecord, MessageId, QueueId, QueueRecord};

/// The files in `dir` whose names end in `.{extension}`, sorted (none if
/// `dir` is gone).
#[allow(dead_code)] // not every test file looks at files
pub fn files_ending(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    files.sort();
    files
}

/// The definition of durable queue `q{id}` in vhost `/`.
pub fn queue(id: u64) -> QueueRecord {
    QueueRecord {
        vhost: "/".into(),
        name: format!("q{id}"),
        id: QueueId(id),
        auto_delete: false,
        arguments: vec![],
    }
}

/// An index entry for a persistent message with no TTL.
pub fn entry(message: MessageId, body_size: u64) -> EntryRecord {
    EntryRecord {
        message,
        delivery_count: 0,
        body_size,
        expires_at_ms: 0,
        transient: false,
        priority: Some(0),
    }
}
