//! Durable queues' indexes in slot files: one directory per queue under
//! `queues/`, one file per [`SLOTS_PER_FILE`] offsets.
//!
//! Each offset of a queue has a fixed 64-byte slot: slot `offset %
//! SLOTS_PER_FILE` of file `offset / SLOTS_PER_FILE` (the layout RabbitMQ's
//! classic queues v2 use). Adding an entry writes its slot, removing one
//! (ack) zeroes it, so nothing is ever rewritten elsewhere and a file whose
//! entries are all gone is simply deleted. sled could not do this: a million
//! index entries added and removed left it at 290 MiB on disk
//! (store/README.md).
//!
//! Slot: `[1][flags][priority][0][delivery count u32][offset u64][message u64]
//! [body size u64][expires at ms u64][0 × 20][crc32 of bytes 0..60]`,
//! big-endian. The offset and checksum make a torn or stale slot read as
//! empty, so a crash can lose only entries written or removed after the
//! last sync (unconfirmed publishes, or acks that come back).
//!
//! Writes are collected in memory per queue and written out (coalesced into
//! runs) at [`QueueIndexes::sync`], or before a read of that queue, so a
//! publish or an ack costs no system call of its own.
//!
//! Beside the slot files, `delivered` holds the queue's delivery mark
//! (every offset below it was handed out at least once, so it comes back
//! redelivered after a crash): the offset and its crc32, overwritten in
//! place when it moved since the last sync. A full file gets a summary
//! (`summary.rs`) that a restart reads instead of its slots.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::ids::{MessageId, Offset, QueueId};
use crate::records::{EntryRecord, QueueSummary};

mod recovery;
mod summary;

use recovery::recover_queue;
pub(crate) use recovery::Claims;
pub(crate) use summary::Run;
use summary::Summary;

/// Offsets per index file (a file is 1 MiB).
pub const SLOTS_PER_FILE: u64 = 16_384;
/// No offset reaches this (2^60: a billion messages a second for 36
/// years). Files named beyond it were not written by Warren, and offsets
/// below it leave room for every sum made with them.
pub const MAX_OFFSET: u64 = 1 << 60;
const SLOT: usize = 64;
const PRESENT: u8 = 1;
const TRANSIENT: u8 = 1;
/// The slot's priority byte is set (entries written before it was kept
/// have neither).
const HAS_PRIORITY: u8 = 2;

fn encode_slot(offset: u64, entry: &EntryRecord) -> [u8; SLOT] {
    let mut slot = [0; SLOT];
    slot[0] = PRESENT;
    slot[1] = if entry.transient { TRANSIENT } else { 0 };
    if let Some(priority) = entry.priority {
        slot[1] |= HAS_PRIORITY;
        slot[2] = priority;
    }
    slot[4..8].copy_from_slice(&entry.delivery_count.to_be_bytes());
    slot[8..16].copy_from_slice(&offset.to_be_bytes());
    slot[16..24].copy_from_slice(&entry.message.0.to_be_bytes());
    slot[24..32].copy_from_slice(&entry.body_size.to_be_bytes());
    slot[32..40].copy_from_slice(&entry.expires_at_ms.to_be_bytes());
    let crc = crc32fast::hash(&slot[..60]);
    slot[60..].copy_from_slice(&crc.to_be_bytes());
    slot
}

/// The entry in a slot read at `offset`, if the slot holds a valid one.
fn decode_slot(offset: u64, slot: &[u8]) -> Option<EntryRecord> {
    let u64_at = |at: usize| u64::from_be_bytes(slot[at..at + 8].try_into().unwrap_or_default());
    if slot.len() != SLOT || slot[0] != PRESENT || u64_at(8) != offset {
        return None;
    }
    let crc = u32::from_be_bytes(slot[60..64].try_into().unwrap_or_default());
    if crc32fast::hash(&slot[..60]) != crc {
        return None;
    }
    Some(EntryRecord {
        message: MessageId(u64_at(16)),
        delivery_count: u32::from_be_bytes(slot[4..8].try_into().unwrap_or_default()),
        body_size: u64_at(24),
        expires_at_ms: u64_at(32),
        transient: slot[1] & TRANSIENT != 0,
        priority: (slot[1] & HAS_PRIORITY != 0).then_some(slot[2]),
    })
}

struct IndexFile {
    file: Arc<File>,
    /// Entries present in it.
    live: u64,
    /// Written since the last sync.
    dirty: bool,
    summarised: Summarised,
}

/// Where an index file stands with its summary (`summary.rs`).
enum Summarised {
    /// Being filled in order: what its summary will say once it is full.
    Building(Summary),
    /// Its summary is on disk and true.
    Written,
    /// Its summary is on disk but the file has changed since: the summary
    /// is removed, durably, before the change is written.
    Stale,
    /// Its summary is removed, but not durably yet (the directory's sync
    /// is under way): the change still waits.
    Unlinked,
    /// None, and none on disk.
    Never,
}

impl IndexFile {
    /// A slot of the file changes other than by a new entry.
    fn changed(&mut self) {
        // Whatever it was, it is not `Building` any more (what it held goes).
        self.summarised = match std::mem::replace(&mut self.summarised, Summarised::Never) {
            Summarised::Written | Summarised::Stale => Summarised::Stale,
            Summarised::Unlinked => Summarised::Unlinked,
            Summarised::Building(_) | Summarised::Never => Summarised::Never,
        };
    }
}

/// One queue's index.
struct QueueIndex {
    dir: PathBuf,
    files: BTreeMap<u64, IndexFile>,
    /// Slot writes not yet in the files: (offset, slot), in order.
    pending: Vec<(u64, [u8; SLOT])>,
    /// One past the highest offset ever added.
    next_offset: u64,
    /// The delivery mark, and whether it moved since the last sync.
    delivered: u64,
    delivered_dirty: bool,
    /// Offset ranges purged but not yet cleared in the files (at the next
    /// sync); reads skip them meanwhile.
    purged: Vec<(u64, u64)>,
    /// Files filled in order to their last slot, whose summaries are
    /// written once the sync after that is done.
    full: Vec<u64>,
    /// Files whose summaries are `Stale` or `Unlinked`: their changes wait
    /// in `pending` until the summary is gone for good.
    voiding: BTreeSet<u64>,
    /// Slot writes to `voiding` files, in order.
    held: Vec<(u64, [u8; SLOT])>,
}

const MARK_FILE: &str = "delivered";

fn read_mark(dir: &Path) -> u64 {
    let Ok(bytes) = fs::read(dir.join(MARK_FILE)) else {
        return 0;
    };
    match (bytes.get(..8), bytes.get(8..12)) {
        (Some(value), Some(crc)) if crc32fast::hash(value).to_be_bytes() == crc => {
            u64::from_be_bytes(value.try_into().unwrap_or_default())
        }
        _ => 0,
    }
}

impl QueueIndex {
    fn new(dir: PathBuf) -> QueueIndex {
        QueueIndex {
            delivered: read_mark(&dir),
            dir,
            files: BTreeMap::new(),
            pending: Vec::new(),
            next_offset: 0,
            delivered_dirty: false,
            purged: Vec::new(),
            full: Vec::new(),
            voiding: BTreeSet::new(),
            held: Vec::new(),
        }
    }

    /// Clears the purged ranges in the files, handing each entry they held
    /// to `removed`.
    fn clear_purged(&mut self, removed: &mut dyn FnMut(&EntryRecord)) -> io::Result<()> {
        for (from, to) in std::mem::take(&mut self.purged) {
            let mut offsets = Vec::new();
            self.visit(from, to, &mut |offset, entry| {
                offsets.push(offset);
                removed(&entry);
                true
            })?;
            for offset in offsets {
                self.removed(offset);
            }
        }
        self.delete_empty_files()
    }

    /// Writes the delivery mark if it moved; returns the file to sync.
    fn write_mark(&mut self) -> io::Result<Option<File>> {
        if !std::mem::take(&mut self.delivered_dirty) {
            return Ok(None);
        }
        let mut bytes = [0; 12];
        bytes[..8].copy_from_slice(&self.delivered.to_be_bytes());
        let crc = crc32fast::hash(&bytes[..8]);
        bytes[8..].copy_from_slice(&crc.to_be_bytes());
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join(MARK_FILE))?;
        file.write_all_at(&bytes, 0)?;
        Ok(Some(file))
    }

    fn file(&mut self, number: u64) -> io::Result<&mut IndexFile> {
        if !self.files.contains_key(&number) {
            // The directory may have gone with a deleted queue of the same id
            // while this index was being created: make it again.
            fs::create_dir_all(&self.dir)?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(self.dir.join(format!("{number:010}.idx")))?;
            self.files.insert(
                number,
                IndexFile {
                    file: Arc::new(file),
                    live: 0,
                    dirty: true,
                    summarised: Summarised::Building(Summary::default()),
                },
            );
        }
        self.files
            .get_mut(&number)
            .ok_or_else(|| io::Error::other("index file vanished"))
    }

    /// Writes the pending slots to their files, coalescing runs of
    /// consecutive offsets into one write.
    ///
    /// On failure the writes not yet done stay pending, to be written again
    /// at the next sync: nothing is dropped.
    fn write_pending(&mut self) -> io::Result<()> {
        self.write_pending_in(0, u64::MAX)
    }

    /// Writes the pending slots of offsets `from..to` only (what a read of
    /// that range needs); the rest stay pending.
    fn write_pending_in(&mut self, from: u64, to: u64) -> io::Result<()> {
        if !self.voiding.is_empty() && from < to {
            // Changes to files whose summaries are still on disk wait (in
            // `held`) for the sync, unless this read needs them.
            let (first, last) = (from / SLOTS_PER_FILE, (to - 1) / SLOTS_PER_FILE);
            let needed: Vec<u64> = self.voiding.range(first..=last).copied().collect();
            self.void_summaries(&needed)?;
        }
        let pending = std::mem::take(&mut self.pending);
        let mut i = 0;
        let mut run = Vec::new();
        while i < pending.len() {
            let start = i;
            let (first, _) = pending[i];
            let number = first / SLOTS_PER_FILE;
            run.clear();
            let mut offset = first;
            while i < pending.len() && pending[i].0 == offset && offset / SLOTS_PER_FILE == number {
                run.extend_from_slice(&pending[i].1);
                offset += 1;
                i += 1;
            }
            let position = (first % SLOTS_PER_FILE) * SLOT as u64;
            let written = self.file(number).and_then(|file| {
                file.dirty = true;
                file.file.write_all_at(&run, position)
            });
            if let Err(e) = written {
                self.pending = pending[start..].to_vec();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Reads the valid entries of offsets `from..to`, in order, up to `limit`.
    fn read(&mut self, from: u64, to: u64, limit: usize) -> io::Result<Vec<(u64, EntryRecord)>> {
        let mut found = Vec::new();
        let purged = std::mem::take(&mut self.purged);
        let visited = self.visit(from, to, &mut |offset, entry| {
            if !purged.iter().any(|&(a, b)| a <= offset && offset < b) {
                found.push((offset, entry));
            }
            found.len() < limit
        });
        self.purged = purged;
        visited?;
        Ok(found)
    }

    /// Calls `f` on each valid entry of offsets `from..to`, in order, until
    /// it returns false. Reads 64 KiB of slots at a time, so walking a
    /// queue of any length takes no more memory than that.
    fn visit(&mut self, from: u64, to: u64, f: &mut dyn FnMut(u64, EntryRecord) -> bool) -> io::Result<()> {
        self.write_pending_in(from, to)?;
        let mut offset = from;
        let mut buffer = Vec::new();
        while offset < to {
            let number = offset / SLOTS_PER_FILE;
            let file_end = (number + 1) * SLOTS_PER_FILE;
            let Some(file) = self.files.get(&number) else {
                offset = file_end;
                continue;
            };
            let end = to.min(file_end).min(offset + 1024);
            buffer.resize(((end - offset) as usize) * SLOT, 0);
            let got = read_up_to(&file.file, &mut buffer, (offset % SLOTS_PER_FILE) * SLOT as u64)?;
            for (i, slot) in buffer[..got - got % SLOT].chunks_exact(SLOT).enumerate() {
                let at = offset + i as u64;
                if let Some(entry) = decode_slot(at, slot) {
                    if !f(at, entry) {
                        return Ok(());
                    }
                }
            }
            offset = end;
        }
        Ok(())
    }

    /// A slot write for the next sync, held back while its file's summary
    /// is still on disk.
    fn push_pending(&mut self, offset: u64, slot: [u8; SLOT]) {
        if self.voiding.contains(&(offset / SLOTS_PER_FILE)) {
            self.held.push((offset, slot));
        } else {
            self.pending.push((offset, slot));
        }
    }

    /// The files `numbers` have no summary any more: their held writes
    /// join the pending ones, in order.
    fn release_held(&mut self, numbers: &[u64]) {
        let pending = &mut self.pending;
        self.held.retain(|&(offset, slot)| {
            let release = numbers.contains(&(offset / SLOTS_PER_FILE));
            if release {
                pending.push((offset, slot));
            }
            !release
        });
    }

    /// A slot of file `number` changes other than by a new entry.
    fn file_changed(&mut self, number: u64) {
        if let Some(file) = self.files.get_mut(&number) {
            file.changed();
            if matches!(file.summarised, Summarised::Stale) {
                self.voiding.insert(number);
            }
        }
    }

    /// Counts a removed entry out of its file.
    fn removed(&mut self, offset: u64) {
        if let Some(file) = self.files.get_mut(&(offset / SLOTS_PER_FILE)) {
            file.live = file.live.saturating_sub(1);
        }
        self.file_changed(offset / SLOTS_PER_FILE);
        self.push_pending(offset, [0; SLOT]);
    }

    /// A new entry at `offset`: counted in its file and its summary to be.
    fn added(&mut self, offset: u64, entry: &EntryRecord) -> io::Result<()> {
        let number = offset / SLOTS_PER_FILE;
        let head = self.next_offset.checked_sub(1).map(|o| o / SLOTS_PER_FILE);
        let file = self.file(number)?;
        file.live += 1;
        let building = match &mut file.summarised {
            Summarised::Building(summary) => {
                if !summary.add(offset, entry) {
                    file.summarised = Summarised::Never;
                }
                true
            }
            _ => false,
        };
        if !building {
            self.file_changed(number);
        }
        // The file before is full once entries go past it.
        if let Some(head) = head.filter(|&h| h < number) {
            if matches!(self.files.get(&head), Some(f) if matches!(f.summarised, Summarised::Building(_))) {
                self.full.push(head);
            }
        }
        self.next_offset = self.next_offset.max(offset + 1);
        self.push_pending(offset, encode_slot(offset, entry));
        Ok(())
    }

    /// Removes the summaries of files that changed since the last sync,
    /// without waiting: the caller syncs the directory, then calls
    /// [`Self::unlinked_durably`]. True if any was removed.
    fn unlink_stale_summaries(&mut self) -> io::Result<bool> {
        let mut removed = false;
        for &number in &self.voiding {
            let Some(file) = self.files.get_mut(&number) else {
                continue;
            };
            if matches!(file.summarised, Summarised::Stale) {
                summary::remove(&self.dir, number)?;
                file.summarised = Summarised::Unlinked;
                removed = true;
            }
        }
        Ok(removed)
    }

    /// The directory was synced after [`Self::unlink_stale_summaries`].
    fn unlinked_durably(&mut self) {
        let files = &mut self.files;
        let mut done = Vec::new();
        self.voiding.retain(|&number| match files.get_mut(&number) {
            Some(file) if matches!(file.summarised, Summarised::Stale) => true,
            Some(file) => {
                file.summarised = Summarised::Never;
                done.push(number);
                false
            }
            None => {
                done.push(number);
                false
            }
        });
        if !done.is_empty() {
            self.release_held(&done);
        }
    }

    /// Before writing to the files `numbers`: any summary of theirs that
    /// is no longer true is removed, durably, first (the rare case of a
    /// read of a file between its change and the sync that would do it).
    fn void_summaries(&mut self, numbers: &[u64]) -> io::Result<()> {
        let mut removed = false;
        for number in numbers {
            if !self.voiding.contains(number) {
                continue;
            }
            if let Some(file) = self.files.get_mut(number) {
                if matches!(file.summarised, Summarised::Stale) {
                    summary::remove(&self.dir, *number)?;
                }
                file.summarised = Summarised::Never;
            }
            removed = true;
        }
        if removed {
            File::open(&self.dir)?.sync_all()?;
            for number in numbers {
                self.voiding.remove(number);
            }
            self.release_held(numbers);
        }
        Ok(())
    }

    /// Writes the summaries of `full` files (all of whose writes are
    /// synced) that nothing has changed since.
    fn write_summaries(&mut self, full: &[u64]) {
        for number in full {
            let Some(file) = self.files.get_mut(number) else {
                continue;
            };
            let Summarised::Building(summary) = &file.summarised else {
                continue;
            };
            if summary.count != file.live {
                file.summarised = Summarised::Never;
                continue;
            }
            match summary::write(&self.dir, *number, summary) {
                Ok(()) => file.summarised = Summarised::Written,
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), number, "index summary not written ({e}); the file is read at the next start");
                    file.summarised = Summarised::Never;
                }
            }
        }
    }

    /// Deletes files that hold no entry any more, except the one new
    /// entries go to.
    fn delete_empty_files(&mut self) -> io::Result<()> {
        let head = self.next_offset / SLOTS_PER_FILE;
        let empty: Vec<u64> = self
            .files
            .iter()
            .filter(|(&n, f)| n != head && f.live == 0)
            .map(|(&n, _)| n)
            .collect();
        for number in empty {
            // Its pending writes (zeroes) need not be written any more.
            self.pending.retain(|(offset, _)| offset / SLOTS_PER_FILE != number);
            self.held.retain(|(offset, _)| offset / SLOTS_PER_FILE != number);
            self.voiding.remove(&number);
            self.files.remove(&number);
            summary::remove(&self.dir, number)?;
            match fs::remove_file(self.dir.join(format!("{number:010}.idx"))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Reads as much of `buffer` as the file has at `position`.
fn read_up_to(file: &File, buffer: &mut [u8], position: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buffer.len() {
        match file.read_at(&mut buffer[got..], position + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Every durable queue's index.
pub struct QueueIndexes {
    dir: PathBuf,
    queues: RwLock<HashMap<QueueId, Mutex<QueueIndex>>>,
    /// Indexes of deleted queues, walked and removed at the next sync.
    deleted: Mutex<Vec<QueueIndex>>,
}

impl QueueIndexes {
    /// Opens the indexes under `dir`: for each queue in `known` reads every
    /// slot once, keeping an entry if `keep` says so (its body is there and
    /// it is not transient) and clearing it otherwise, and sums each queue
    /// up. Directories of queues not in `known` are deleted.
    pub(crate) fn open(
        dir: &Path,
        known: &HashSet<QueueId>,
        claims: &mut dyn Claims,
    ) -> io::Result<(QueueIndexes, HashMap<QueueId, QueueSummary>, usize)> {
        fs::create_dir_all(dir)?;
        let mut queues = HashMap::new();
        let mut summaries = HashMap::new();
        let mut dropped = 0;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u64>().ok())
                .map(QueueId)
            else {
                continue;
            };
            if !path.is_dir() {
                tracing::warn!(path = %path.display(), "not a queue index directory; ignored");
                continue;
            }
            if !known.contains(&id) {
                fs::remove_dir_all(&path)?;
                continue;
            }
            let (index, summary, dropped_here) = recover_queue(path, claims)?;
            dropped += dropped_here;
            if summary.count > 0 {
                summaries.insert(id, summary);
            }
            queues.insert(id, Mutex::new(index));
        }
        let indexes = QueueIndexes {
            dir: dir.to_path_buf(),
            queues: RwLock::new(queues),
            deleted: Mutex::new(Vec::new()),
        };
        Ok((indexes, summaries, dropped))
    }

    /// Runs `f` on a queue's index if it has one. Removals and updates for
    /// a queue already deleted (an ack arriving after queue.delete) do
    /// nothing.
    fn with_existing<T: Default>(
        &self,
        queue: QueueId,
        f: impl FnOnce(&mut QueueIndex) -> io::Result<T>,
    ) -> io::Result<T> {
        match self.queues.read().get(&queue) {
            Some(index) => f(&mut index.lock()),
            None => Ok(T::default()),
        }
    }

    /// Runs `f` on a queue's index, creating it on first use.
    fn with<T>(&self, queue: QueueId, f: impl FnOnce(&mut QueueIndex) -> io::Result<T>) -> io::Result<T> {
        {
            let queues = self.queues.read();
            if let Some(index) = queues.get(&queue) {
                return f(&mut index.lock());
            }
        }
        let dir = self.dir.join(queue.to_string());
        fs::create_dir_all(&dir)?;
        let mut queues = self.queues.write();
        let index = queues.entry(queue).or_insert_with(|| Mutex::new(QueueIndex::new(dir)));
        let result = f(&mut index.lock());
        result
    }

    pub fn add(&self, queue: QueueId, Offset(offset): Offset, entry: &EntryRecord) -> io::Result<()> {
        if offset >= MAX_OFFSET {
            return Err(io::Error::other("queue offsets exhausted"));
        }
        self.with(queue, |index| index.added(offset, entry))
    }

    /// Moves the delivery mark (written at the next sync).
    pub fn set_delivered(&self, queue: QueueId, Offset(below): Offset) -> io::Result<()> {
        self.with_existing(queue, |index| {
            if index.delivered != below {
                index.delivered = below;
                index.delivered_dirty = true;
            }
            Ok(())
        })
    }

    /// The delivery mark (0 when none was ever saved).
    pub fn delivered(&self, queue: QueueId) -> Offset {
        Offset(self.queues.read().get(&queue).map_or(0, |index| index.lock().delivered))
    }

    pub fn update(&self, queue: QueueId, Offset(offset): Offset, entry: &EntryRecord) -> io::Result<()> {
        self.with_existing(queue, |index| {
            index.file_changed(offset / SLOTS_PER_FILE);
            index.push_pending(offset, encode_slot(offset, entry));
            Ok(())
        })
    }

    pub fn remove(&self, queue: QueueId, Offset(offset): Offset) -> io::Result<()> {
        self.with_existing(queue, |index| {
            index.removed(offset);
            Ok(())
        })
    }

    /// Up to `limit` entries at or above `from`, in offset order.
    pub fn entries(
        &self,
        queue: QueueId,
        Offset(from): Offset,
        limit: usize,
    ) -> io::Result<Vec<(Offset, EntryRecord)>> {
        self.with_existing(queue, |index| {
            let to = index.next_offset;
            index.read(from, to, limit)
        })
        .map(|found| {
            found
                .into_iter()
                .map(|(offset, entry)| (Offset(offset), entry))
                .collect()
        })
    }

    /// Removes the entries of offsets `from..to`. Only memory changes now:
    /// reads skip them at once, and the next [`Self::apply_deferred`]
    /// clears them in the files, off the caller's thread.
    pub fn remove_range(&self, queue: QueueId, Offset(from): Offset, Offset(to): Offset) -> io::Result<()> {
        self.with_existing(queue, |index| {
            if from < to {
                index.purged.push((from, to));
            }
            Ok(())
        })
    }

    /// Deletes a queue's whole index. It is gone from the store at once;
    /// its files are walked (their entries released) and removed by the
    /// next [`Self::apply_deferred`].
    pub fn delete(&self, queue: QueueId) {
        if let Some(index) = self.queues.write().remove(&queue) {
            self.deleted.lock().push(index.into_inner());
        }
    }

    /// Does the file work that purges and deletions left for later, handing
    /// every entry removed to `removed`. Called at the start of a sync.
    pub fn apply_deferred(&self, removed: &mut dyn FnMut(&EntryRecord)) -> io::Result<()> {
        for index in self.queues.read().values() {
            let mut index = index.lock();
            if !index.purged.is_empty() {
                index.clear_purged(removed)?;
            }
        }
        let deleted = std::mem::take(&mut *self.deleted.lock());
        for mut index in deleted {
            // Never walked twice (a second walk would release entries
            // twice): on failure what is left is cleaned up at the next
            // start, which removes the directories of unknown queues and
            // the bodies nothing refers to.
            let to = index.next_offset;
            let walked = index.visit(0, to, &mut |_, entry| {
                removed(&entry);
                true
            });
            let gone = walked.and_then(|()| match fs::remove_dir_all(&index.dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            });
            if let Err(e) = gone {
                tracing::error!(dir = %index.dir.display(), "removing a deleted queue's index failed: {e}; it goes at the next start");
            }
        }
        Ok(())
    }

    /// Writes every pending slot and makes the files durable; then deletes
    /// files left without entries.
    pub fn sync(&self) -> io::Result<()> {
        let mut to_sync = Vec::new();
        // Files full before their last writes are written here: summarised
        // once those are synced.
        let mut full = Vec::new();
        // Summaries of files that changed go first, durably: the unlinks
        // under each queue's lock, the directories' syncs outside them.
        let mut dirs = Vec::new();
        for index in self.queues.read().values() {
            let mut index = index.lock();
            if index.unlink_stale_summaries()? {
                dirs.push(index.dir.clone());
            }
        }
        for dir in &dirs {
            File::open(dir)?.sync_all()?;
        }
        let queues = self.queues.read();
        for (&id, index) in queues.iter() {
            let mut index = index.lock();
            index.unlinked_durably();
            if let Some(mark) = index.write_mark()? {
                to_sync.push(Arc::new(mark));
            }
            if !index.full.is_empty() {
                full.push((id, std::mem::take(&mut index.full)));
            }
            if index.pending.is_empty() && !index.files.values().any(|f| f.dirty) {
                continue;
            }
            index.write_pending()?;
            for file in index.files.values_mut().filter(|f| f.dirty) {
                file.dirty = false;
                to_sync.push(file.file.clone());
            }
        }
        drop(queues);
        if let Err(e) = to_sync.iter().try_for_each(|file| file.sync_data()) {
            // Mark every file dirty again so the next sync retries them all.
            let queues = self.queues.read();
            for index in queues.values() {
                index.lock().files.values_mut().for_each(|f| f.dirty = true);
            }
            for (id, numbers) in full {
                if let Some(index) = queues.get(&id) {
                    index.lock().full.extend(numbers);
                }
            }
            return Err(e);
        }
        let queues = self.queues.read();
        for (id, numbers) in &full {
            if let Some(index) = queues.get(id) {
                index.lock().write_summaries(numbers);
            }
        }
        for index in queues.values() {
            index.lock().delete_empty_files()?;
        }
        Ok(())
    }

    /// Bytes of index files on disk.
    pub fn file_bytes(&self) -> u64 {
        let queues = self.queues.read();
        queues
            .values()
            .map(|index| {
                let index = index.lock();
                index
                    .files
                    .values()
                    .filter_map(|f| f.file.metadata().ok())
                    .map(|m| m.len())
                    .sum::<u64>()
            })
            .sum()
    }
}
