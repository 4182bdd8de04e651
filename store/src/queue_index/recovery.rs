//! Opening a queue's index at start: each full file from its summary when
//! every message it names is there, else slot by slot, clearing what did
//! not survive (torn, transient, or without its body).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::summary::{self, Run, Summary};
use super::{decode_slot, read_up_to, IndexFile, QueueIndex, Summarised, MAX_OFFSET, SLOT, SLOTS_PER_FILE};
use crate::records::{EntryRecord, QueueSummary};

/// What opening the indexes asks of the message store.
pub(crate) trait Claims {
    /// An entry found in a slot: kept if true (it is not transient and its
    /// body is there), the body then held for it.
    fn entry(&mut self, entry: &EntryRecord) -> bool;
    /// The entries a summary lists: all kept if true (every body is
    /// there), else none, and nothing held.
    fn runs(&mut self, runs: &[Run]) -> bool;
}

/// Reads one queue's index directory at start: each file from its summary
/// when it has one whose messages are all there, else slot by slot.
pub(super) fn recover_queue(dir: PathBuf, claims: &mut dyn Claims) -> io::Result<(QueueIndex, QueueSummary, usize)> {
    let mut numbers: Vec<u64> = fs::read_dir(&dir)?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            name.to_str()?.strip_suffix(".idx")?.parse().ok()
        })
        .filter(|&number| {
            let fits = number < MAX_OFFSET / SLOTS_PER_FILE;
            if !fits {
                tracing::warn!(dir = %dir.display(), number, "queue index file number out of range; ignored");
            }
            fits
        })
        .collect();
    numbers.sort_unstable();
    remove_orphan_summaries(&dir, &numbers)?;
    let mut index = QueueIndex::new(dir);
    let mut summary = QueueSummary::default();
    let mut dropped = 0;
    let mut contents = Vec::new();
    for number in numbers {
        let path = index.dir.join(format!("{number:010}.idx"));
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let first = number * SLOTS_PER_FILE;
        let written = file.metadata()?.len() / SLOT as u64;
        let summarised = summary::read(&index.dir, number, first, first + written).filter(|s| claims.runs(&s.runs));
        let (live, summarised) = match summarised {
            Some(found) => {
                for run in &found.runs {
                    summary.add_run(run.offset, u64::from(run.count));
                }
                summary.bytes += found.bytes;
                (found.count, Summarised::Written)
            }
            None => {
                let (live, dropped_here, built) =
                    recover_file(&mut index, &file, first, &mut contents, claims, &mut summary)?;
                dropped += dropped_here;
                (live, built)
            }
        };
        index.files.insert(
            number,
            IndexFile {
                file: Arc::new(file),
                live,
                dirty: false,
                summarised,
            },
        );
        index.next_offset = index.next_offset.max(first + written);
    }
    // New entries continue after everything ever written.
    index.next_offset = index.next_offset.max(summary.next_offset.0);
    // Files already full are summarised after the next sync (which writes
    // what this start cleared in them first).
    let head = index.next_offset.checked_sub(1).map(|o| o / SLOTS_PER_FILE);
    index.full = index
        .files
        .iter()
        .filter(|(&n, f)| Some(n) < head && matches!(f.summarised, Summarised::Building(_)))
        .map(|(&n, _)| n)
        .collect();
    index.write_pending()?;
    index.delete_empty_files()?;
    Ok((index, summary, dropped))
}

/// Reads one index file's slots at start; returns its live entries, how
/// many it dropped, and what its summary would say.
fn recover_file(
    index: &mut QueueIndex,
    file: &File,
    first: u64,
    contents: &mut Vec<u8>,
    claims: &mut dyn Claims,
    summary: &mut QueueSummary,
) -> io::Result<(u64, usize, Summarised)> {
    contents.clear();
    contents.resize(SLOTS_PER_FILE as usize * SLOT, 0);
    let got = read_up_to(file, contents, 0)?;
    let mut live = 0;
    let mut dropped = 0;
    let mut building = Some(Summary::default());
    for (i, slot) in contents[..got - got % SLOT].chunks_exact(SLOT).enumerate() {
        let offset = first + i as u64;
        if slot[0] == 0 {
            continue;
        }
        match decode_slot(offset, slot) {
            Some(entry) if claims.entry(&entry) => {
                live += 1;
                summary.add_run(offset, 1);
                summary.bytes += entry.body_size;
                if building.as_mut().is_some_and(|b| !b.add(offset, &entry)) {
                    building = None;
                }
            }
            _ => {
                // Torn, transient or without its body: clear it.
                dropped += 1;
                index.pending.push((offset, [0; SLOT]));
            }
        }
    }
    Ok((live, dropped, building.map_or(Summarised::Never, Summarised::Building)))
}

/// Deletes summaries whose index file is gone.
fn remove_orphan_summaries(dir: &Path, numbers: &[u64]) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(number) = name.to_str().and_then(|n| n.strip_suffix(".sum")?.parse::<u64>().ok()) else {
            continue;
        };
        if numbers.binary_search(&number).is_err() {
            summary::remove(dir, number)?;
        }
    }
    Ok(())
}
