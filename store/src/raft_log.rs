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
//! back as soon as a snapshot covers the entries. In memory the log keeps
//! where each entry is, and the payloads of its newest entries up to
//! `CACHE_BYTES` (Raft reads recent entries to replicate them); older ones
//! are read back from their segment, so a log holding a large queue's
//! messages costs a few bytes per entry in memory, not the messages.
//!
//! Every method may block on the disk: callers run them off the async
//! runtime (the cluster layer uses a blocking thread).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
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
/// Payload bytes of the newest entries kept in memory (the last entry's
/// always is, whatever its size).
const CACHE_BYTES: usize = 8 << 20;

/// An entry as the log holds it.
struct Held {
    index: LogIndex,
    /// Which segment (its first index) and where in it the record starts.
    segment: u64,
    position: u64,
    len: u32,
    /// The payload, while the entry is among the newest.
    payload: Option<Vec<u8>>,
}

/// One Raft group's log and hard state in a directory of its own.
pub struct RaftLog {
    dir: PathBuf,
    entries: VecDeque<Held>,
    /// Entries from this place in `entries` on have their payload in
    /// memory; `cached` bytes of them.
    first_cached: usize,
    cached: usize,
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
            first_cached: 0,
            cached: 0,
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
            self.push(Held {
                index: LogIndex(index),
                segment: first,
                position: at as u64,
                len,
                payload: Some(payload.to_vec()),
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

    /// The payload of the last entry, if any (always in memory).
    pub fn last_entry(&self) -> Option<&[u8]> {
        self.entries.back().and_then(|e| e.payload.as_deref())
    }

    /// Adds an entry at the end, its payload in memory, and lets the
    /// oldest payloads go past `CACHE_BYTES`.
    fn push(&mut self, held: Held) {
        self.cached += held.len as usize;
        self.entries.push_back(held);
        while self.cached > CACHE_BYTES && self.first_cached + 1 < self.entries.len() {
            if let Some(old) = self.entries.get_mut(self.first_cached) {
                self.cached -= old.payload.take().map_or(0, |p| p.len());
            }
            self.first_cached += 1;
        }
    }

    /// Appends entries (each index one above the one before, the first one
    /// above the log's last) and makes them durable before returning.
    pub fn append(&mut self, entries: impl IntoIterator<Item = (LogIndex, Vec<u8>)>) -> StoreResult<()> {
        self.write(entries)?.sync()
    }

    /// Appends entries as `append` does, written to the file but not yet
    /// durable: the caller syncs what this returns, and may do so without
    /// holding the log (readers need not wait for the disk's flush; the
    /// entries read back are the ones written).
    pub fn write(&mut self, entries: impl IntoIterator<Item = (LogIndex, Vec<u8>)>) -> StoreResult<Unsynced> {
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
            let held = Held {
                index,
                position: *size,
                segment: *segment,
                len: payload.len() as u32,
                payload: Some(payload),
            };
            *size += (HEADER + held.len as usize) as u64;
            self.push(held);
            wrote = true;
        }
        let mut unsynced = Unsynced { file: None, dir: None };
        if wrote {
            if let Some(writer) = self.writer.as_mut() {
                writer.flush()?;
                unsynced.file = Some(writer.get_ref().try_clone()?);
            }
            if created {
                unsynced.dir = Some(self.dir.clone());
            }
        }
        Ok(unsynced)
    }

    fn finish_segment(&mut self) -> StoreResult<()> {
        if let Some(mut writer) = self.writer.take() {
            writer.flush()?;
            writer.get_ref().sync_data()?;
        }
        sync_dir(&self.dir)
    }

    /// Where entries with indexes in `from..to` sit in `entries`.
    fn range(&self, from: LogIndex, to: LogIndex) -> std::ops::Range<usize> {
        let Some(first) = self.first_index() else {
            return 0..0;
        };
        let len = self.entries.len();
        let start = (from.0.saturating_sub(first.0) as usize).min(len);
        let end = (to.0.saturating_sub(first.0) as usize).min(len).max(start);
        start..end
    }

    /// The end of the run of entries from `from` (below `to`) whose
    /// payloads add up to at most `bytes`, with at least one entry: what
    /// one message to a follower should carry.
    pub fn end_within(&self, from: LogIndex, to: LogIndex, bytes: usize) -> LogIndex {
        let range = self.range(from, to);
        let mut total = 0usize;
        let mut end = from.0;
        for held in self.entries.range(range) {
            total += held.len as usize;
            if total > bytes && end > from.0 {
                break;
            }
            end = held.index.0 + 1;
        }
        LogIndex(end.max(from.0).min(to.0))
    }

    /// Entries with indexes in `from..to`, in order, if all of them are in
    /// memory (the newest are): no disk.
    pub fn cached_entries(&self, from: LogIndex, to: LogIndex) -> Option<Vec<Vec<u8>>> {
        self.entries
            .range(self.range(from, to))
            .map(|e| e.payload.clone())
            .collect()
    }

    /// Entries with indexes in `from..to`, in order; those no longer in
    /// memory are read back from their segments (checked as at recovery).
    pub fn entries(&self, from: LogIndex, to: LogIndex) -> StoreResult<Vec<Vec<u8>>> {
        let range = self.range(from, to);
        let mut out = Vec::with_capacity(range.len());
        let mut at = range.start;
        while at < range.end {
            let held = &self.entries[at];
            if let Some(payload) = &held.payload {
                out.push(payload.clone());
                at += 1;
                continue;
            }
            // A run of entries of one segment not in memory: one read.
            let mut last = at;
            while last + 1 < range.end
                && self.entries[last + 1].payload.is_none()
                && self.entries[last + 1].segment == held.segment
            {
                last += 1;
            }
            let end = &self.entries[last];
            let mut bytes = vec![0u8; (end.position + HEADER as u64 + end.len as u64 - held.position) as usize];
            File::open(self.segment_path(held.segment))?.read_exact_at(&mut bytes, held.position)?;
            for wanted in self.entries.range(at..=last) {
                let start = (wanted.position - held.position) as usize;
                out.push(self.record(&bytes, start, wanted)?);
            }
            at = last + 1;
        }
        Ok(out)
    }

    /// The payload of `wanted`'s record at `start` in `bytes`, checked.
    fn record(&self, bytes: &[u8], start: usize, wanted: &Held) -> StoreResult<Vec<u8>> {
        let corrupt = || {
            StoreError::Corrupt(format!(
                "raft log {}: entry {} does not read back",
                self.dir.display(),
                wanted.index.0
            ))
        };
        let header = bytes.get(start..start + HEADER).ok_or_else(corrupt)?;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let mut raw_index = [0u8; 8];
        raw_index.copy_from_slice(&header[8..16]);
        let payload = bytes
            .get(start + HEADER..start + HEADER + wanted.len as usize)
            .ok_or_else(corrupt)?;
        if u64::from_le_bytes(raw_index) != wanted.index.0 || checksum(wanted.index.0, payload) != crc {
            return Err(corrupt());
        }
        Ok(payload.to_vec())
    }

    /// Removes every entry at or above `from` (a conflicting suffix), durably.
    pub fn truncate(&mut self, from: LogIndex) -> StoreResult<()> {
        let Some(cut) = self.entries.iter().position(|e| e.index >= from) else {
            return Ok(());
        };
        let (segment, position) = (self.entries[cut].segment, self.entries[cut].position);
        for gone in self.entries.range(cut..) {
            self.cached -= gone.payload.as_ref().map_or(0, |p| p.len());
        }
        self.entries.truncate(cut);
        self.first_cached = self.first_cached.min(cut);
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
            if let Some(gone) = self.entries.pop_front() {
                self.cached -= gone.payload.map_or(0, |p| p.len());
            }
            self.first_cached = self.first_cached.saturating_sub(1);
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

/// Entries written to a log and not yet durable: `sync` makes them so.
#[must_use = "entries are durable only once synced"]
pub struct Unsynced {
    file: Option<File>,
    /// A segment was created: its directory entry is synced too.
    dir: Option<PathBuf>,
}

impl Unsynced {
    pub fn sync(self) -> StoreResult<()> {
        if let Some(file) = self.file {
            file.sync_data()?;
        }
        if let Some(dir) = self.dir {
            sync_dir(&dir)?;
        }
        Ok(())
    }
}

/// The length word that says a state file's length follows in 8 bytes
/// (a value of 4 GiB or more).
const LONG_STATE: u32 = u32::MAX;

/// Replaces the file `<dir>/<key>.state` atomically and durably (a
/// checksummed value, written beside it, synced, renamed over it).
pub fn save_state_file(dir: &Path, key: &str, value: &[u8]) -> StoreResult<()> {
    fs::create_dir_all(dir)?;
    let path = dir.join(format!("{key}.state"));
    let temporary = dir.join(format!("{key}.state.tmp"));
    let mut file = BufWriter::new(File::create(&temporary)?);
    match u32::try_from(value.len()) {
        Ok(short) if short != LONG_STATE => file.write_all(&short.to_le_bytes())?,
        _ => {
            file.write_all(&LONG_STATE.to_le_bytes())?;
            file.write_all(&(value.len() as u64).to_le_bytes())?;
        }
    }
    file.write_all(&crc32fast::hash(value).to_le_bytes())?;
    file.write_all(value)?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
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
    let word = |at: usize| -> StoreResult<u32> {
        let raw = bytes.get(at..at + 4).ok_or_else(corrupt)?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
    };
    let (len, crc, start): (usize, u32, usize) = match word(0)? {
        LONG_STATE => {
            let long = (u64::from(word(4)?) | (u64::from(word(8)?) << 32)) as usize;
            (long, word(12)?, 16)
        }
        short => (short as usize, word(4)?, 8),
    };
    let value = bytes.get(start..start.saturating_add(len)).ok_or_else(corrupt)?;
    if crc32fast::hash(value) != crc {
        return Err(corrupt());
    }
    // The value in place, without a copy (a snapshot's may be large).
    bytes.truncate(start + len);
    bytes.drain(..start);
    Ok(Some(bytes))
}

fn checksum(index: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

pub(crate) fn sync_dir(dir: &Path) -> StoreResult<()> {
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
