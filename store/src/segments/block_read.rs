//! Reading many stored messages at once: records that lie one after
//! another in a segment file are read with one `pread` (runs of up to
//! `RUN_BYTES`), each record still checked against its checksum. A
//! stream's replay and a queue's read-back ask for messages in the order
//! they were written, so a batch is mostly one read instead of two reads
//! per message.
//!
//! A long run is mapped rather than copied: its bytes are the page cache's
//! own, shared by the answer's slices until the last of them goes, which
//! saves the copy a `pread` makes (a tenth of the broker's work in a
//! stream's replay). Short runs (a paged queue's odd message) are read.

use std::fs::File;
use std::io;
use std::sync::Arc;

use bytes::Bytes;

use super::{checksum, not_in_file_yet, Location, SegmentStore, RECORD_HEADER};
use crate::ids::MessageId;

/// The most bytes one read covers.
const RUN_BYTES: u64 = 4 << 20;
/// Runs at least this long are mapped; shorter ones cost less to copy
/// than to map, fault in and unmap.
const MAP_BYTES: usize = 64 << 10;

/// Records back to back in one file: one read.
struct Run {
    file: Arc<File>,
    segment: u32,
    start: u64,
    end: u64,
    /// Where each record's payload goes in the answer, its id, its place.
    records: Vec<(usize, u64, Location)>,
}

impl SegmentStore {
    /// The payloads of `ids`, in the order asked (None for one not stored).
    pub fn read_many(&self, ids: &[MessageId]) -> io::Result<Vec<Option<Bytes>>> {
        let mut payloads: Vec<Option<Bytes>> = vec![None; ids.len()];
        let mut runs: Vec<Run> = Vec::new();
        {
            let inner = self.inner.lock();
            for (at, MessageId(id)) in ids.iter().enumerate() {
                let Some(location) = inner.locations.get(*id) else {
                    continue;
                };
                if let Some(payload) = not_in_file_yet(&inner, &location) {
                    payloads[at] = payload.map(Bytes::from);
                    continue;
                }
                let (start, end) = (
                    u64::from(location.pos),
                    u64::from(location.pos) + location.record_bytes(),
                );
                match runs.last_mut() {
                    Some(run)
                        if run.segment == location.segment && run.end == start && end - run.start <= RUN_BYTES =>
                    {
                        run.end = end;
                        run.records.push((at, *id, location));
                    }
                    _ => {
                        let Some(segment) = inner.segments.get(&location.segment) else {
                            continue;
                        };
                        runs.push(Run {
                            file: segment.file.clone(),
                            segment: location.segment,
                            start,
                            end,
                            records: vec![(at, *id, location)],
                        });
                    }
                }
            }
        }
        for run in runs {
            let bytes = read_run(&run.file, run.start, (run.end - run.start) as usize)?;
            for (at, id, location) in run.records {
                let from = (u64::from(location.pos) - run.start) as usize;
                let stored = bytes.get(from + 4..from + 8).and_then(|b| <[u8; 4]>::try_from(b).ok());
                let payload = from + RECORD_HEADER as usize..from + location.record_bytes() as usize;
                match (stored, bytes.get(payload.clone())) {
                    (Some(stored), Some(body)) if u32::from_be_bytes(stored) == checksum(id, &[body]) => {
                        payloads[at] = Some(bytes.slice(payload));
                    }
                    _ => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("message {id}: checksum mismatch in segment {}", run.segment),
                        ))
                    }
                }
            }
        }
        Ok(payloads)
    }
}

/// The `len` bytes at `at`: mapped when they are many, read otherwise.
fn read_run(file: &File, at: u64, len: usize) -> io::Result<Bytes> {
    if len >= MAP_BYTES {
        if let Some(bytes) = map(file, at, len)? {
            return Ok(bytes);
        }
    }
    read_uninit(file, at, len).map(Bytes::from)
}

/// The `len` bytes at `at` as a mapping of the file, its pages faulted in
/// at once (one system call rather than a fault every few pages); None if
/// the file is shorter than that (touching a mapped page past a file's end
/// kills the process with SIGBUS, so such a range is left to `pread`,
/// which answers with an error).
fn map(file: &File, at: u64, len: usize) -> io::Result<Option<Bytes>> {
    let end = at + len as u64;
    if file.metadata()?.len() < end {
        return Ok(None);
    }
    // memmap2 maps from the page `at` is in and starts the slice at `at`.
    // SAFETY: segment files are only ever appended to (never truncated or
    // rewritten in place; a dead one is unlinked, which leaves a mapping
    // valid), and the range lies within the file's length, checked above;
    // so the mapped bytes stay as they are for the mapping's lifetime.
    let mapping = unsafe { memmap2::MmapOptions::new().offset(at).len(len).populate().map(file)? };
    Ok(Some(Bytes::from_owner(mapping)))
}

/// Reads `len` bytes at `at` into a new buffer that is not zeroed first
/// (`pread` into the vector's spare capacity: the zeroing cost as much as
/// a tenth of a replay's user time).
fn read_uninit(file: &File, at: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        let from = at + bytes.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut bytes), from) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The capacity may exceed what was asked, and a read may have filled it.
    bytes.truncate(len);
    Ok(bytes)
}
