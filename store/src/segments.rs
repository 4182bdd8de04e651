//! Message bodies in append-only segment files.
//!
//! sled gives no space back under publish/ack churn (store/README.md has
//! the measurement), so bodies live here instead: files of about
//! `segment_bytes` each under `messages/`, written only at their end. A
//! record is `[payload length u32][crc32 u32][message id u64][payload]`,
//! big-endian, the checksum covering the id and the payload.
//!
//! What is live is counted in memory: every stored message has a
//! reference count (one per queue index entry, plus one per in-memory copy
//! of the message), kept with its place in `locations.rs` at one to four bytes a
//! message, and every segment the bytes of its live records. Space
//! comes back two ways:
//! - a segment none of whose records is referenced any more is deleted
//!   after the next sync (so the index deletions that freed it are on disk
//!   first);
//! - a sealed segment that is more than half garbage and has not changed
//!   for a while (one old unacknowledged message among thousands acked:
//!   the case that pins whole files in LavinMQ) is compacted: its live
//!   records are copied to the end of the active segment and the old file
//!   then goes as above.
//!
//! Nothing here is durable until [`SegmentStore::sync`]. After a crash the
//! tail of the last segment may be torn: opening scans every segment
//! without a summary (`summary.rs`: sealed, synced segments have one),
//! checks each record's checksum and stops reading a segment at the first
//! record that is cut short or does not check, so what follows is never
//! believed. Writing always continues in a new segment after opening.
//!
//! Appending never touches the disk: records collect in memory, and full
//! buffers are handed off to be written by [`SegmentStore::write_behind`]
//! or [`SegmentStore::sync`], which the broker calls from its flusher
//! thread. A new segment's file is made ahead of need by the same calls, so
//! rolling to it is no system call either. Reads find records still in
//! memory there.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::ids::MessageId;

mod block_read;
mod locations;
mod opening;
mod slots;
mod summary;

use locations::Locations;
use opening::{open_segment, remove_orphan_summaries};

/// The first bytes of every segment file: a name and the format version.
const MAGIC: &[u8; 8] = b"WRNSEG\x00\x01";
/// Length, checksum and id in front of every payload.
const RECORD_HEADER: u64 = 16;
/// Appends collect in memory and reach the file in writes of about this size.
const WRITE_BUFFER: usize = 512 * 1024;

/// Where a message's record is, and who still needs it.
#[derive(Debug, Clone, Copy)]
struct Location {
    segment: u32,
    /// Offset of the record (its header) in the segment.
    pos: u32,
    /// Payload length.
    len: u32,
    refs: u32,
}

impl Location {
    fn record_bytes(&self) -> u64 {
        RECORD_HEADER + u64::from(self.len)
    }
}

struct Segment {
    file: Arc<File>,
    /// Bytes in the file (header and records), buffered ones included.
    size: u64,
    /// Bytes of records still referenced.
    live_bytes: u64,
    live_records: u64,
    /// The last time one of its records was released or added.
    changed: Instant,
    /// Compaction copied records out of it: it may be deleted only once
    /// those copies are synced.
    compacted: bool,
}

/// Appended bytes handed off for writing, not yet in their file.
struct Unwritten {
    segment: u32,
    file: Arc<File>,
    /// Where in the file they go.
    at: u64,
    bytes: Arc<Vec<u8>>,
}

struct Inner {
    next_id: u64,
    locations: Locations,
    segments: BTreeMap<u32, Segment>,
    /// The segment appends go to.
    active: u32,
    /// Where `buffer` starts in the active segment: what is before it is
    /// written or queued in `unwritten`.
    written: u64,
    buffer: Vec<u8>,
    /// Buffers handed off and waiting to be written, oldest first.
    unwritten: VecDeque<Unwritten>,
    /// A file made ahead of need for the next segment, and its number.
    spare: Option<(u32, Arc<File>)>,
    /// The number of the spare `write_behind` is making outside the lock:
    /// an append that needs that segment first opens the same file rather
    /// than failing to create it anew.
    making_spare: Option<u32>,
    /// Sealed segments not yet synced.
    unsynced: Vec<Arc<File>>,
    /// The active segment's records, (id, payload length) in file order,
    /// for its summary once it is sealed.
    records: Vec<(u64, u32)>,
    /// Sealed segments whose summaries are written after their sync.
    sealed: Vec<Sealed>,
    /// A segment file was created since the last sync (the directory needs one).
    created: bool,
    /// Segments with no live record, deleted after the next sync.
    dead: Vec<u32>,
}

/// A sealed segment waiting for its summary (`summary.rs`).
struct Sealed {
    number: u32,
    size: u64,
    records: Vec<(u64, u32)>,
}

/// Figures for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentStats {
    pub segments: usize,
    pub messages: usize,
    pub file_bytes: u64,
    pub live_bytes: u64,
}

pub struct SegmentStore {
    dir: PathBuf,
    segment_bytes: u64,
    inner: Mutex<Inner>,
    /// Held while writing handed-off buffers, so two writers never race.
    writing: Mutex<()>,
    /// Bytes appended and not yet in their files (the buffer and the
    /// handed-off ones), read without the lock on every publish.
    unwritten: AtomicU64,
}

fn segment_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{number:010}.seg"))
}

fn checksum(id: u64, parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&id.to_be_bytes());
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}

impl SegmentStore {
    /// Opens the segments in `dir` (creating it), reading every record's
    /// place. Nothing counts as referenced until [`Self::retain_recovered`];
    /// [`Self::finish_recovery`] then frees what no one claimed.
    pub fn open(dir: &Path, segment_bytes: u64) -> io::Result<SegmentStore> {
        fs::create_dir_all(dir)?;
        let mut numbers: Vec<u32> = fs::read_dir(dir)?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name();
                name.to_str()?.strip_suffix(".seg")?.parse().ok()
            })
            .filter(|&number| {
                // The next segment's number must fit: a file named past that
                // was not written by Warren.
                let fits = number < u32::MAX;
                if !fits {
                    tracing_warn(number, 0, "segment number out of range; file ignored");
                }
                fits
            })
            .collect();
        numbers.sort_unstable();
        let mut inner = Inner {
            next_id: 1,
            locations: Locations::default(),
            segments: BTreeMap::new(),
            active: 0,
            written: 0,
            buffer: Vec::with_capacity(WRITE_BUFFER),
            unwritten: VecDeque::new(),
            spare: None,
            making_spare: None,
            unsynced: Vec::new(),
            records: Vec::new(),
            sealed: Vec::new(),
            created: false,
            dead: Vec::new(),
        };
        remove_orphan_summaries(dir, &numbers)?;
        let now = Instant::now();
        for number in numbers {
            let mut scanned = open_segment(dir, number)?;
            // The next id must fit: a record past that was not written by Warren.
            scanned.records.retain(|&(id, pos, _)| {
                let fits = id < u64::MAX;
                if !fits {
                    tracing_warn(number, u64::from(pos), "message id out of range; record ignored");
                }
                fits
            });
            if let Some(&(top, _, _)) = scanned.records.iter().max_by_key(|r| r.0) {
                inner.next_id = inner.next_id.max(top + 1);
            }
            // A record copied by compaction appears twice; the later copy wins.
            inner.locations.insert_found(number, &scanned.records);
            inner.segments.insert(
                number,
                Segment {
                    file: Arc::new(scanned.file),
                    size: scanned.size,
                    live_bytes: 0,
                    live_records: 0,
                    changed: now,
                    compacted: false,
                },
            );
            inner.active = number;
        }
        let store = SegmentStore {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(RECORD_HEADER + MAGIC.len() as u64),
            inner: Mutex::new(inner),
            writing: Mutex::new(()),
            unwritten: AtomicU64::new(0),
        };
        // Never append to a file a crash may have torn: start a new one.
        let mut inner = store.inner.lock();
        let next = if inner.segments.is_empty() { 1 } else { inner.active + 1 };
        store.start_segment(&mut inner, next)?;
        drop(inner);
        Ok(store)
    }

    /// At start: an index entry refers to this message. False if no intact
    /// record of it exists (the entry must go).
    pub fn retain_recovered(&self, id: MessageId) -> bool {
        let MessageId(id) = id;
        let Some(after) = id.checked_add(1) else {
            return false;
        };
        let mut inner = self.inner.lock();
        inner.next_id = inner.next_id.max(after);
        inner.locations.add_ref(id)
    }

    /// At start: index entries refer to every message of the ranges
    /// `(first id, count)`. False, and nothing retained, if any of them has
    /// no intact record (the entries are then read one by one).
    pub fn retain_recovered_runs(&self, ranges: &[(u64, u64)]) -> bool {
        let mut inner = self.inner.lock();
        if !inner.locations.add_refs_to_all(ranges) {
            return false;
        }
        if let Some(top) = ranges.iter().map(|&(first, count)| first.saturating_add(count)).max() {
            inner.next_id = inner.next_id.max(top);
        }
        true
    }

    /// At start, once every index entry was counted: forgets unreferenced
    /// records, counts what is live per segment and deletes segments that
    /// hold nothing live. Returns how many records were garbage.
    pub fn finish_recovery(&self) -> io::Result<usize> {
        let mut inner = self.inner.lock();
        let garbage = inner.locations.drop_unreferenced();
        let Inner {
            locations, segments, ..
        } = &mut *inner;
        locations.each(|location| {
            if let Some(segment) = segments.get_mut(&location.segment) {
                segment.live_bytes += location.record_bytes();
                segment.live_records += 1;
            }
        });
        let active = inner.active;
        let empty: Vec<u32> = inner
            .segments
            .iter()
            .filter(|(&n, s)| n != active && s.live_records == 0)
            .map(|(&n, _)| n)
            .collect();
        drop(inner);
        self.remove_segments(&empty)?;
        Ok(garbage)
    }

    /// Appends a message (its payload given in parts, written one after the
    /// other) and returns its new id, with one reference: the caller's.
    pub fn append(&self, parts: &[&[u8]]) -> io::Result<MessageId> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let len = u32::try_from(len).map_err(|_| io::Error::other("message too large to store"))?;
        let mut inner = self.inner.lock();
        let id = inner.next_id;
        inner.next_id = id
            .checked_add(1)
            .ok_or_else(|| io::Error::other("message ids exhausted"))?;
        let (segment, pos) = self.append_record(&mut inner, id, len, parts)?;
        inner.locations.insert(
            id,
            Location {
                segment,
                pos,
                len,
                refs: 1,
            },
        );
        Ok(MessageId(id))
    }

    /// Writes one record at the end of the active segment (rolling to a new
    /// one when it is full) and counts it live there.
    fn append_record(&self, inner: &mut Inner, id: u64, len: u32, parts: &[&[u8]]) -> io::Result<(u32, u32)> {
        let record = RECORD_HEADER + u64::from(len);
        // Everything that can fail comes first, so a failed append changes
        // nothing (the buffer is kept and written again next time).
        let active_size = inner.segments.get(&inner.active).map_or(0, |s| s.size);
        if active_size > MAGIC.len() as u64 && active_size + record > self.segment_bytes {
            self.roll(inner)?;
        }
        if inner.buffer.len() >= WRITE_BUFFER {
            hand_off(inner)?;
        }
        let active = inner.active;
        let segment = inner
            .segments
            .get_mut(&active)
            .ok_or_else(|| io::Error::other("no active segment"))?;
        let pos = u32::try_from(segment.size).map_err(|_| io::Error::other("segment too large"))?;
        inner.records.push((id, len));
        segment.size += record;
        segment.live_bytes += record;
        segment.live_records += 1;
        segment.changed = Instant::now();
        self.unwritten.fetch_add(record, Ordering::Relaxed);
        inner.buffer.extend_from_slice(&len.to_be_bytes());
        inner.buffer.extend_from_slice(&checksum(id, parts).to_be_bytes());
        inner.buffer.extend_from_slice(&id.to_be_bytes());
        for part in parts {
            inner.buffer.extend_from_slice(part);
        }
        Ok((active, pos))
    }

    /// Seals the active segment and starts the next.
    fn roll(&self, inner: &mut Inner) -> io::Result<()> {
        hand_off(inner)?;
        let sealed = inner.active;
        let sealed_file = inner.segments.get(&sealed).map(|s| s.file.clone());
        if inner
            .unsynced
            .iter()
            .any(|f| sealed_file.as_ref().is_some_and(|s| Arc::ptr_eq(f, s)))
        {
            // A previous roll got this far and then failed to create the
            // next file; only that step is left.
            return self.start_segment(inner, next_segment(sealed)?);
        }
        if let Some(segment) = inner.segments.get(&sealed) {
            inner.unsynced.push(segment.file.clone());
            if segment.live_records == 0 {
                inner.dead.push(sealed);
            }
            let size = segment.size;
            let records = std::mem::take(&mut inner.records);
            inner.sealed.push(Sealed {
                number: sealed,
                size,
                records,
            });
        }
        self.start_segment(inner, next_segment(sealed)?)
    }

    /// Makes segment `number` the active one, its magic the first bytes of
    /// the buffer. Its file is the spare made ahead if there is one.
    fn start_segment(&self, inner: &mut Inner, number: u32) -> io::Result<()> {
        let file = match inner.spare.take() {
            Some((spare, file)) if spare == number => file,
            other => {
                inner.spare = other;
                let shared = inner.making_spare == Some(number);
                Arc::new(self.create_file(number, shared)?)
            }
        };
        inner.segments.insert(
            number,
            Segment {
                file,
                size: MAGIC.len() as u64,
                live_bytes: 0,
                live_records: 0,
                changed: Instant::now(),
                compacted: false,
            },
        );
        inner.active = number;
        inner.written = 0;
        inner.records.clear();
        debug_assert!(inner.buffer.is_empty(), "handed off before a new segment starts");
        inner.buffer.clear();
        inner.buffer.extend_from_slice(MAGIC);
        self.unwritten.fetch_add(MAGIC.len() as u64, Ordering::Relaxed);
        inner.created = true;
        Ok(())
    }

    /// Creates segment `number`'s file, which must not exist, unless
    /// `shared`: the spare being made for that number, which whichever of
    /// the appender and `write_behind` comes first creates (both empty,
    /// never truncated; segment numbers only grow, so no older file can
    /// have that name).
    fn create_file(&self, number: u32, shared: bool) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(shared)
            .create_new(!shared)
            .open(segment_path(&self.dir, number))
    }

    /// Bytes appended that are not in their files yet.
    pub fn unwritten_bytes(&self) -> u64 {
        self.unwritten.load(Ordering::Relaxed)
    }

    /// Writes what was appended to the segment files (no fsync), and makes
    /// the next segment's file if it is not made yet. Called from the
    /// broker's flusher thread, so appends never wait for the disk.
    pub fn write_behind(&self) -> io::Result<()> {
        let _writing = self.writing.lock();
        let (queued, make_spare) = {
            let mut inner = self.inner.lock();
            hand_off(&mut inner)?;
            let queued: Vec<(Arc<File>, u64, Arc<Vec<u8>>)> = inner
                .unwritten
                .iter()
                .map(|u| (u.file.clone(), u.at, u.bytes.clone()))
                .collect();
            let make_spare = inner.spare.is_none().then(|| next_segment(inner.active)).transpose()?;
            inner.making_spare = make_spare;
            (queued, make_spare)
        };
        let mut written: Vec<&Arc<Vec<u8>>> = Vec::with_capacity(queued.len());
        let mut result = Ok(());
        for (file, at, bytes) in &queued {
            if let Err(e) = file.write_all_at(bytes, *at) {
                result = Err(e);
                break;
            }
            written.push(bytes);
        }
        let spare = match make_spare {
            Some(number) if result.is_ok() => match self.create_file(number, true) {
                Ok(file) => Some((number, Arc::new(file))),
                Err(e) => {
                    result = Err(e);
                    None
                }
            },
            _ => None,
        };
        let mut inner = self.inner.lock();
        inner.making_spare = None;
        // What was written leaves the queue; what was not stays for next time.
        inner.unwritten.retain(|u| {
            let done = written.iter().any(|w| Arc::ptr_eq(w, &u.bytes));
            if done {
                self.unwritten.fetch_sub(u.bytes.len() as u64, Ordering::Relaxed);
            }
            !done
        });
        if let Some(spare) = spare {
            if inner.spare.is_none() && spare.0 > inner.active {
                inner.created = true;
                inner.spare = Some(spare);
            }
        }
        result
    }

    /// Another holder of a stored message. False if it is not stored.
    pub fn retain(&self, MessageId(id): MessageId) -> bool {
        self.inner.lock().locations.add_ref(id)
    }

    /// A holder lets go; the last one frees the record's space.
    pub fn release(&self, MessageId(id): MessageId) {
        let mut inner = self.inner.lock();
        let Some(location) = inner.locations.release(id) else {
            return;
        };
        let active = inner.active;
        if let Some(segment) = inner.segments.get_mut(&location.segment) {
            segment.live_bytes -= location.record_bytes().min(segment.live_bytes);
            segment.live_records = segment.live_records.saturating_sub(1);
            segment.changed = Instant::now();
            if segment.live_records == 0 && location.segment != active {
                inner.dead.push(location.segment);
            }
        }
    }

    /// A stored message's payload, or None if it is not stored.
    pub fn read(&self, MessageId(id): MessageId) -> io::Result<Option<Vec<u8>>> {
        let inner = self.inner.lock();
        let Some(location) = inner.locations.get(id) else {
            return Ok(None);
        };
        if let Some(payload) = not_in_file_yet(&inner, &location) {
            return Ok(payload);
        }
        let payload_at = u64::from(location.pos) + RECORD_HEADER;
        let len = location.len as usize;
        let file = match inner.segments.get(&location.segment) {
            Some(segment) => segment.file.clone(),
            None => return Ok(None),
        };
        drop(inner);
        let mut payload = vec![0; len];
        file.read_exact_at(&mut payload, payload_at)?;
        let mut stored = [0; 4];
        file.read_exact_at(&mut stored, u64::from(location.pos) + 4)?;
        if u32::from_be_bytes(stored) != checksum(id, &[&payload]) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("message {id}: checksum mismatch in segment {}", location.segment),
            ));
        }
        Ok(Some(payload))
    }

    /// Makes every append so far durable, and deletes the segments left
    /// without a live record. One emptied by acks goes at once (only
    /// messages nobody needs were in it: at worst an acked message does not
    /// come back after a crash), even when the disk is too full for the
    /// sync itself to succeed, so acking consumers always free space. One
    /// emptied by compaction goes only after the copies of its records are
    /// synced.
    pub fn sync(&self) -> io::Result<()> {
        let (free_now, after_sync): (Vec<u32>, Vec<u32>) = {
            let mut inner = self.inner.lock();
            let dead = std::mem::take(&mut inner.dead);
            dead.into_iter()
                .partition(|n| !inner.segments.get(n).is_some_and(|s| s.compacted))
        };
        self.remove_segments(&free_now)?;
        let written = self.write_behind();
        let mut inner = self.inner.lock();
        if written.is_err() {
            inner.dead.extend(after_sync);
            return written;
        }
        let mut files = std::mem::take(&mut inner.unsynced);
        if let Some(segment) = inner.segments.get(&inner.active) {
            files.push(segment.file.clone());
        }
        let created = std::mem::take(&mut inner.created);
        let sealed = std::mem::take(&mut inner.sealed);
        drop(inner);
        let synced = files.iter().try_for_each(|file| file.sync_data()).and_then(|()| {
            if created {
                File::open(&self.dir)?.sync_all()
            } else {
                Ok(())
            }
        });
        if let Err(e) = synced {
            // Try all of it again next time.
            let mut inner = self.inner.lock();
            inner.unsynced.extend(files);
            inner.created |= created;
            inner.dead.extend(after_sync);
            inner.sealed.extend(sealed);
            return Err(e);
        }
        self.write_summaries(sealed);
        self.remove_segments(&after_sync)
    }

    /// Writes the summaries of segments sealed and now synced (those not
    /// deleted meanwhile). A summary that cannot be written is only a
    /// slower start: logged, not an error.
    fn write_summaries(&self, sealed: Vec<Sealed>) {
        for Sealed { number, size, records } in sealed {
            if !self.inner.lock().segments.contains_key(&number) {
                continue;
            }
            if let Err(e) = summary::write(&self.dir, number, size, &records) {
                tracing_warn(
                    number,
                    0,
                    &format!("summary not written ({e}); the segment is read at the next start"),
                );
            }
        }
    }

    /// Deletes segment files that hold nothing live.
    fn remove_segments(&self, numbers: &[u32]) -> io::Result<()> {
        for &number in numbers {
            let mut inner = self.inner.lock();
            // Something may have been copied in since (never: only the active
            // segment is written), but check rather than lose a record.
            if number == inner.active || inner.segments.get(&number).is_some_and(|s| s.live_records > 0) {
                continue;
            }
            if inner.segments.remove(&number).is_some() {
                // Nothing in it is needed: what waits to be written there need not be.
                inner.unwritten.retain(|u| {
                    let keep = u.segment != number;
                    if !keep {
                        self.unwritten.fetch_sub(u.bytes.len() as u64, Ordering::Relaxed);
                    }
                    keep
                });
                drop(inner);
                summary::remove(&self.dir, number)?;
                match fs::remove_file(segment_path(&self.dir, number)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Compacts at most one segment: a sealed one more than half garbage
    /// and unchanged for `idle`. Its live records are copied to the active
    /// segment; the old file is dead afterwards. Returns the bytes copied.
    pub fn compact(&self, idle: Duration) -> io::Result<u64> {
        // Compaction reads whole files: what is still in memory goes first.
        self.write_behind()?;
        let candidate = {
            let inner = self.inner.lock();
            inner
                .segments
                .iter()
                .filter(|(&n, s)| {
                    n != inner.active
                        && s.live_records > 0
                        && s.live_bytes * 2 < s.size
                        && s.changed.elapsed() >= idle
                        && !inner.unwritten.iter().any(|u| u.segment == n)
                })
                .map(|(&n, s)| (n, s.file.clone(), s.size))
                .next()
        };
        let Some((number, file, size)) = candidate else {
            return Ok(0);
        };
        let mut contents = vec![0; size as usize];
        file.read_exact_at(&mut contents, 0)?;
        let mut copied = 0;
        for (id, pos, len) in parse_records(&contents, number) {
            let payload_at = pos as usize + RECORD_HEADER as usize;
            let payload = &contents[payload_at..payload_at + len as usize];
            let mut inner = self.inner.lock();
            let Some(location) = inner.locations.get(id) else {
                continue;
            };
            if location.segment != number || location.pos != pos {
                continue;
            }
            let (segment, new_pos) = self.append_record(&mut inner, id, len, &[payload])?;
            inner.locations.insert(
                id,
                Location {
                    segment,
                    pos: new_pos,
                    ..location
                },
            );
            let active = inner.active;
            if let Some(old) = inner.segments.get_mut(&number) {
                old.compacted = true;
                old.live_bytes -= location.record_bytes().min(old.live_bytes);
                old.live_records = old.live_records.saturating_sub(1);
                if old.live_records == 0 && number != active {
                    inner.dead.push(number);
                }
            }
            copied += location.record_bytes();
        }
        Ok(copied)
    }

    pub fn stats(&self) -> SegmentStats {
        let inner = self.inner.lock();
        SegmentStats {
            segments: inner.segments.len(),
            messages: inner.locations.len(),
            file_bytes: inner.segments.values().map(|s| s.size).sum(),
            live_bytes: inner.segments.values().map(|s| s.live_bytes).sum(),
        }
    }
}

/// The number of the segment after `number`.
/// A record's payload if it is not in its file yet: Some(payload) when it
/// is still in the write buffer or handed off for writing, None when it
/// must be read from the file.
fn not_in_file_yet(inner: &Inner, location: &Location) -> Option<Option<Vec<u8>>> {
    let payload_at = u64::from(location.pos) + RECORD_HEADER;
    let len = location.len as usize;
    if location.segment == inner.active && payload_at >= inner.written {
        let start = (payload_at - inner.written) as usize;
        return Some(inner.buffer.get(start..start + len).map(<[u8]>::to_vec));
    }
    let queued = inner
        .unwritten
        .iter()
        .find(|u| u.segment == location.segment && u.at <= payload_at && payload_at < u.at + u.bytes.len() as u64)?;
    let start = (payload_at - queued.at) as usize;
    Some(queued.bytes.get(start..start + len).map(<[u8]>::to_vec))
}

fn next_segment(number: u32) -> io::Result<u32> {
    number
        .checked_add(1)
        .ok_or_else(|| io::Error::other("segment numbers exhausted"))
}

/// Hands the active segment's buffer off to be written.
fn hand_off(inner: &mut Inner) -> io::Result<()> {
    if inner.buffer.is_empty() {
        return Ok(());
    }
    let file = inner
        .segments
        .get(&inner.active)
        .map(|s| s.file.clone())
        .ok_or_else(|| io::Error::other("no active segment"))?;
    let bytes = std::mem::replace(&mut inner.buffer, Vec::with_capacity(WRITE_BUFFER));
    let len = bytes.len() as u64;
    inner.unwritten.push_back(Unwritten {
        segment: inner.active,
        file,
        at: inner.written,
        bytes: Arc::new(bytes),
    });
    inner.written += len;
    Ok(())
}

/// The records of a segment's contents, as (id, position, payload length),
/// up to the first that is cut short (a crash during its write) or fails
/// its checksum: what follows it is never believed.
fn parse_records(contents: &[u8], number: u32) -> Vec<(u64, u32, u32)> {
    let mut records = Vec::new();
    let mut pos = MAGIC.len();
    while let Some(header) = contents.get(pos..pos + RECORD_HEADER as usize) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let id = u64::from_be_bytes([
            header[8], header[9], header[10], header[11], header[12], header[13], header[14], header[15],
        ]);
        let start = pos + RECORD_HEADER as usize;
        let Some(payload) = contents.get(start..start + len as usize) else {
            tracing_warn(number, pos as u64, "record cut short; the rest is ignored");
            break;
        };
        if checksum(id, &[payload]) != crc {
            tracing_warn(number, pos as u64, "record fails its checksum; the rest is ignored");
            break;
        }
        let Ok(record_pos) = u32::try_from(pos) else {
            break;
        };
        records.push((id, record_pos, len));
        pos = start + len as usize;
    }
    records
}

fn tracing_warn(segment: u32, pos: u64, what: &str) {
    tracing::warn!(segment, pos, "message store: {what}");
}
