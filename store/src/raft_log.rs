//! A Raft group's log on disk: entries in append-only segment files, fsynced
//! before an append returns, and the group's small hard state (its vote, the
//! committed and purged log ids) in files replaced atomically.
//!
//! The log knows entries only as an index and opaque bytes: the cluster layer
//! encodes its Raft entries. Every record is framed as
//! `[u32 length][u32 crc32][u64 index][payload]` so that recovery finds the
//! end of what was written completely and cuts a torn tail off. A segment is
//! named after the index of its first entry; purging the log up to an index
//! deletes the segments that hold nothing at or above it, so disk space comes
//! back as soon as a snapshot covers the entries. The entries the log still
//! holds stay in memory too (Raft reads recent entries to replicate them, and
//! the cluster purges behind its snapshots), so a read never touches the disk.
//!
//! Every method may block on the disk: callers run them off the async
//! runtime (the cluster layer uses a blocking thread).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::{StoreError, StoreResult};

/// The position of an entry in a Raft log (Raft's log index, from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogIndex(pub u64);

/// Size past which a new segment file is started.
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
const HEADER: usize = 16;
/// A record larger than this is treated as corruption on recovery.
const MAX_RECORD: u32 = 256 * 1024 * 1024;

/// An entry as the log holds it.
struct Held {
    index: LogIndex,
    payload: Vec<u8>,
    /// Which segment (its first index) and where in it the record starts.
    segment: u64,
    position: u64,
}

/// One Raft group's log and hard state in a directory of its own.
pub struct RaftLog {
    dir: PathBuf,
    entries: VecDeque<Held>,
    /// Segments by first index, oldest first, with their sizes.
    segments: Vec<(u64, u64)>,
    writer: Option<BufWriter<File>>,
}

impl RaftLog {
    /// Opens (or creates) the log in `dir`, reading every segment back and
    /// cutting off a record that was not written completely.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        fs::create_dir_all(dir)?;
        let mut firsts = Vec::new();
        for item in fs::read_dir(dir)? {
            let name = item?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(first) = name.strip_suffix(".log").and_then(|n| n.strip_prefix("seg-")) {
                if let Ok(first) = first.parse::<u64>() {
                    firsts.push(first);
                }
            }
        }
        firsts.sort_unstable();
        let mut log = Self {
            dir: dir.to_path_buf(),
            entries: VecDeque::new(),
            segments: Vec::new(),
            writer: None,
        };
        let mut broken = false;
        for first in firsts {
            let path = log.segment_path(first);
            if broken {
                // Anything after a torn record was never acknowledged.
                fs::remove_file(&path)?;
                continue;
            }
            let (size, torn) = log.read_segment(first)?;
            if torn {
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(size)?;
                file.sync_all()?;
                broken = true;
            }
            if size == 0 {
                fs::remove_file(&path)?;
            } else {
                log.segments.push((first, size));
            }
        }
        Ok(log)
    }

    fn segment_path(&self, first: u64) -> PathBuf {
        self.dir.join(format!("seg-{first:020}.log"))
    }

    /// Reads one segment's records into memory; returns the length of its
    /// valid part and whether anything after it was torn.
    fn read_segment(&mut self, first: u64) -> StoreResult<(u64, bool)> {
        let mut bytes = Vec::new();
        File::open(self.segment_path(first))?.read_to_end(&mut bytes)?;
        let mut at = 0usize;
        while at < bytes.len() {
            let Some(header) = bytes.get(at..at + HEADER) else {
                return Ok((at as u64, true));
            };
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let mut raw_index = [0u8; 8];
            raw_index.copy_from_slice(&header[8..16]);
            let index = u64::from_le_bytes(raw_index);
            if len > MAX_RECORD {
                return Ok((at as u64, true));
            }
            let Some(payload) = bytes.get(at + HEADER..at + HEADER + len as usize) else {
                return Ok((at as u64, true));
            };
            if checksum(index, payload) != crc {
                return Ok((at as u64, true));
            }
            if let Some(last) = self.entries.back() {
                if index != last.index.0 + 1 {
                    return Err(StoreError::Corrupt(format!(
                        "raft log {}: entry {index} follows {}",
                        self.dir.display(),
                        last.index.0
                    )));
                }
            }
            self.entries.push_back(Held {
                index: LogIndex(index),
                payload: payload.to_vec(),
                segment: first,
                position: at as u64,
            });
            at += HEADER + len as usize;
        }
        Ok((at as u64, false))
    }

    /// The first entry the log holds, if any.
    pub fn first_index(&self) -> Option<LogIndex> {
        self.entries.front().map(|e| e.index)
    }

    /// The last entry the log holds, if any.
    pub fn last_index(&self) -> Option<LogIndex> {
        self.entries.back().map(|e| e.index)
    }

    /// The payload of the last entry, if any.
    pub fn last_entry(&self) -> Option<&[u8]> {
        self.entries.back().map(|e| e.payload.as_slice())
    }

    /// Appends entries (each index one above the one before, the first one
    /// above the log's last) and makes them durable before returning.
    pub fn append(&mut self, entries: impl IntoIterator<Item = (LogIndex, Vec<u8>)>) -> StoreResult<()> {
        let entries: Vec<(LogIndex, Vec<u8>)> = entries.into_iter().collect();
        // Checked before anything is written, so a refused batch leaves no trace.
        let mut previous = self.last_index();
        for (index, payload) in &entries {
            if previous.is_some_and(|p| index.0 != p.0 + 1) {
                return Err(StoreError::Corrupt(format!(
                    "raft log {}: append of {} after {:?}",
                    self.dir.display(),
                    index.0,
                    previous
                )));
            }
            if payload.len() > MAX_RECORD as usize {
                return Err(StoreError::Corrupt(format!(
                    "raft entry of {} bytes is too large",
                    payload.len()
                )));
            }
            previous = Some(*index);
        }
        let mut wrote = false;
        let mut created = false;
        for (index, payload) in entries {
            let rolled = self.segments.last().is_none_or(|(_, size)| *size >= SEGMENT_BYTES);
            if rolled {
                self.finish_segment()?;
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.segment_path(index.0))?;
                self.writer = Some(BufWriter::with_capacity(256 * 1024, file));
                self.segments.push((index.0, 0));
                created = true;
            } else if self.writer.is_none() {
                let first = self.segments.last().map_or(index.0, |(first, _)| *first);
                let file = OpenOptions::new().append(true).open(self.segment_path(first))?;
                self.writer = Some(BufWriter::with_capacity(256 * 1024, file));
            }
            let (Some(writer), Some((segment, size))) = (self.writer.as_mut(), self.segments.last_mut()) else {
                return Err(StoreError::Corrupt("raft log has no segment to write".into()));
            };
            writer.write_all(&(payload.len() as u32).to_le_bytes())?;
            writer.write_all(&checksum(index.0, &payload).to_le_bytes())?;
            writer.write_all(&index.0.to_le_bytes())?;
            writer.write_all(&payload)?;
            self.entries.push_back(Held {
                index,
                position: *size,
                segment: *segment,
                payload,
            });
            *size += (HEADER + self.entries.back().map_or(0, |e| e.payload.len())) as u64;
            wrote = true;
        }
        if wrote {
            if let Some(writer) = self.writer.as_mut() {
                writer.flush()?;
                writer.get_ref().sync_data()?;
            }
            if created {
                sync_dir(&self.dir)?;
            }
        }
        Ok(())
    }

    fn finish_segment(&mut self) -> StoreResult<()> {
        if let Some(mut writer) = self.writer.take() {
            writer.flush()?;
            writer.get_ref().sync_data()?;
        }
        sync_dir(&self.dir)
    }

    /// Entries with indexes in `from..to`, in order.
    pub fn entries(&self, from: LogIndex, to: LogIndex) -> Vec<Vec<u8>> {
        let Some(first) = self.first_index() else {
            return Vec::new();
        };
        let start = from.0.saturating_sub(first.0) as usize;
        let end = to.0.saturating_sub(first.0) as usize;
        self.entries
            .range(start.min(self.entries.len())..end.min(self.entries.len()))
            .map(|e| e.payload.clone())
            .collect()
    }

    /// Removes every entry at or above `from` (a conflicting suffix), durably.
    pub fn truncate(&mut self, from: LogIndex) -> StoreResult<()> {
        let Some(cut) = self.entries.iter().position(|e| e.index >= from) else {
            return Ok(());
        };
        let (segment, position) = (self.entries[cut].segment, self.entries[cut].position);
        self.entries.truncate(cut);
        self.finish_segment()?;
        while let Some((first, _)) = self.segments.last().copied() {
            if first > segment || (first == segment && position == 0) {
                fs::remove_file(self.segment_path(first))?;
                self.segments.pop();
                continue;
            }
            if first == segment {
                let file = OpenOptions::new().write(true).open(self.segment_path(first))?;
                file.set_len(position)?;
                file.sync_all()?;
                if let Some(last) = self.segments.last_mut() {
                    last.1 = position;
                }
            }
            break;
        }
        sync_dir(&self.dir)
    }

    /// Forgets every entry at or below `upto` (a snapshot holds them) and
    /// deletes the segments that held only such entries.
    pub fn purge(&mut self, upto: LogIndex) -> StoreResult<()> {
        while self.entries.front().is_some_and(|e| e.index <= upto) {
            self.entries.pop_front();
        }
        // A segment may go when the next one starts at or below upto + 1.
        let mut removed = false;
        while self.segments.len() > 1 && self.segments[1].0 <= upto.0 + 1 {
            let (first, _) = self.segments.remove(0);
            fs::remove_file(self.segment_path(first))?;
            removed = true;
        }
        if self.entries.is_empty() {
            // Everything is in the snapshot: the last segment may go too.
            self.finish_segment()?;
            for (first, _) in self.segments.drain(..) {
                fs::remove_file(self.dir.join(format!("seg-{first:020}.log")))?;
            }
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Replaces a hard-state value (`vote`, `purged`...) atomically and
    /// durably.
    pub fn save_state(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        save_state_file(&self.dir, key, value)
    }

    /// A hard-state value, if one was saved.
    pub fn state(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        read_state_file(&self.dir, key)
    }

    /// Bytes the log's segment files occupy.
    pub fn size_on_disk(&self) -> u64 {
        self.segments.iter().map(|(_, size)| size).sum()
    }

    /// How many entries the log holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Replaces the small file `<dir>/<key>.state` atomically and durably (a
/// checksummed value, written beside it, synced, renamed over it).
pub fn save_state_file(dir: &Path, key: &str, value: &[u8]) -> StoreResult<()> {
    fs::create_dir_all(dir)?;
    let path = dir.join(format!("{key}.state"));
    let temporary = dir.join(format!("{key}.state.tmp"));
    let mut file = File::create(&temporary)?;
    file.write_all(&(value.len() as u32).to_le_bytes())?;
    file.write_all(&crc32fast::hash(value).to_le_bytes())?;
    file.write_all(value)?;
    file.sync_all()?;
    fs::rename(&temporary, &path)?;
    sync_dir(dir)
}

/// The value of `<dir>/<key>.state`, if it was saved; a damaged file is an
/// error, never a wrong value.
pub fn read_state_file(dir: &Path, key: &str) -> StoreResult<Option<Vec<u8>>> {
    let path = dir.join(format!("{key}.state"));
    let mut bytes = Vec::new();
    match File::open(&path) {
        Ok(mut file) => file.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = || StoreError::Corrupt(format!("state file {} is damaged", path.display()));
    let header = bytes.get(..8).ok_or_else(corrupt)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let value = bytes.get(8..8 + len).ok_or_else(corrupt)?;
    if crc32fast::hash(value) != crc {
        return Err(corrupt());
    }
    Ok(Some(value.to_vec()))
}

fn checksum(index: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn sync_dir(dir: &Path) -> StoreResult<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

impl Drop for RaftLog {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.as_mut() {
            if let Err(e) = writer.flush() {
                tracing::warn!("raft log {}: flush on close failed: {e}", self.dir.display());
            }
        }
    }
}
