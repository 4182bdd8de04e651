//! A full index file's summary: how many entries it holds, their body
//! bytes, and which message each offset refers to, as runs of consecutive
//! offsets holding consecutive message ids (a queue fed by one publisher is
//! one run a file). Written beside the file (`NNNNNNNNNN.sum`) once every
//! offset of the file has been written and synced, so that opening the
//! store reads a few dozen bytes instead of the file's 1 MiB of slots (a
//! restart with 100 M messages in one queue read 6.4 GB of slots).
//!
//! A summary is only true while its file is unchanged: the first change to
//! a summarised file (an ack, a purge, a delivery count) removes the
//! summary, and the directory is synced, before the change is written
//! (`QueueIndexes::sync`). Files holding transient entries (which a
//! restart clears) or written out of order get none. The file is
//! `[magic][entries u64][bytes u64]`, then per run `[first offset u64]
//! [first message id u64][count u32]`, then a crc32 of everything before
//! it; one that does not check is ignored and its index file read instead.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::records::EntryRecord;

const MAGIC: &[u8; 8] = b"WRNISM\x00\x01";
/// A file whose entries need more runs than this is not worth summarising.
const MAX_RUNS: usize = 1024;

/// Offsets `offset..offset + count` hold messages `id..id + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub offset: u64,
    pub id: u64,
    pub count: u32,
}

/// What a summary says of its file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub count: u64,
    pub bytes: u64,
    pub runs: Vec<Run>,
}

impl Summary {
    /// Adds an entry written after every other of the file. False when the
    /// file cannot be summarised (a transient entry, one out of order, too
    /// many runs).
    pub(crate) fn add(&mut self, offset: u64, entry: &EntryRecord) -> bool {
        if entry.transient {
            return false;
        }
        self.count += 1;
        self.bytes += entry.body_size;
        if let Some(last) = self.runs.last_mut() {
            let end = last.offset + u64::from(last.count);
            if offset < end {
                return false;
            }
            if offset == end && entry.message.0 == last.id + u64::from(last.count) && last.count < u32::MAX {
                last.count += 1;
                return true;
            }
        }
        self.runs.push(Run {
            offset,
            id: entry.message.0,
            count: 1,
        });
        self.runs.len() <= MAX_RUNS
    }
}

pub(super) fn path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:010}.sum"))
}

pub(super) fn write(dir: &Path, number: u64, summary: &Summary) -> io::Result<()> {
    let mut out = Vec::with_capacity(28 + summary.runs.len() * 20);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&summary.count.to_be_bytes());
    out.extend_from_slice(&summary.bytes.to_be_bytes());
    for run in &summary.runs {
        out.extend_from_slice(&run.offset.to_be_bytes());
        out.extend_from_slice(&run.id.to_be_bytes());
        out.extend_from_slice(&run.count.to_be_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    fs::write(path(dir, number), out)
}

/// The summary of index file `number` holding offsets `first..end`, if it
/// has one that checks and whose runs lie in that range and add up.
pub(super) fn read(dir: &Path, number: u64, first: u64, end: u64) -> Option<Summary> {
    let bytes = fs::read(path(dir, number)).ok()?;
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_be_bytes() != crc || body.get(..8)? != MAGIC {
        return None;
    }
    let u64_at = |at: usize| Some(u64::from_be_bytes(body.get(at..at + 8)?.try_into().ok()?));
    let (count, bytes_total) = (u64_at(8)?, u64_at(16)?);
    let mut runs = Vec::new();
    let mut at = 24;
    let mut counted = 0;
    let mut next = first;
    while at < body.len() {
        let run = Run {
            offset: u64_at(at)?,
            id: u64_at(at + 8)?,
            count: u32::from_be_bytes(body.get(at + 16..at + 20)?.try_into().ok()?),
        };
        let run_end = run.offset.checked_add(u64::from(run.count))?;
        if run.offset < next || run_end > end || run.id.checked_add(u64::from(run.count)).is_none() {
            return None;
        }
        next = run_end;
        counted += u64::from(run.count);
        runs.push(run);
        at += 20;
    }
    (counted == count).then_some(Summary {
        count,
        bytes: bytes_total,
        runs,
    })
}

/// Removes index file `number`'s summary, if it has one.
pub(super) fn remove(dir: &Path, number: u64) -> io::Result<()> {
    match fs::remove_file(path(dir, number)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MessageId;

    fn entry(id: u64, transient: bool) -> EntryRecord {
        EntryRecord {
            message: MessageId(id),
            delivery_count: 0,
            body_size: 10,
            expires_at_ms: 0,
            transient,
            priority: Some(0),
        }
    }

    #[test]
    fn consecutive_offsets_and_ids_make_one_run_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut summary = Summary::default();
        for (offset, id) in [(0, 100), (1, 101), (2, 102), (5, 103), (6, 200)] {
            assert!(summary.add(offset, &entry(id, false)));
        }
        assert_eq!(summary.runs.len(), 3);
        assert_eq!((summary.count, summary.bytes), (5, 50));
        write(dir.path(), 0, &summary).unwrap();
        assert_eq!(read(dir.path(), 0, 0, 16_384), Some(summary.clone()));
        assert_eq!(read(dir.path(), 0, 0, 6), None, "runs past the file's end");
        assert_eq!(read(dir.path(), 1, 16_384, 32_768), None, "no summary");
        let file = path(dir.path(), 0);
        let mut bytes = fs::read(&file).unwrap();
        bytes[30] ^= 1;
        fs::write(&file, &bytes).unwrap();
        assert_eq!(read(dir.path(), 0, 0, 16_384), None, "a flipped bit");
    }

    #[test]
    fn transient_or_out_of_order_entries_spoil_a_summary() {
        let mut summary = Summary::default();
        assert!(!summary.add(0, &entry(1, true)));
        let mut summary = Summary::default();
        assert!(summary.add(5, &entry(1, false)));
        assert!(!summary.add(4, &entry(2, false)));
    }
}
