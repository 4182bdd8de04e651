//! Opening the segments at start: each one's records from its summary
//! when it has one that checks, else from the segment itself, read up to
//! the first record that is cut short or fails its checksum.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use super::{parse_records, segment_path, summary, tracing_warn, MAGIC, RECORD_HEADER};

/// What reading one segment at start found.
pub(super) struct Scanned {
    pub file: File,
    pub size: u64,
    /// (id, record position, payload length), in file order.
    pub records: Vec<(u64, u32, u32)>,
}

/// Opens one segment at start: the place of every record, from its
/// summary when it has one that checks, else from the segment itself
/// (whose summary is then written, if it was read to its end, since it is
/// never written again).
pub(super) fn open_segment(dir: &Path, number: u32) -> io::Result<Scanned> {
    let file = OpenOptions::new().read(true).open(segment_path(dir, number))?;
    let size = file.metadata()?.len();
    if let Some(records) = summary::read(dir, number, size) {
        return Ok(Scanned { file, size, records });
    }
    let scanned = scan_segment(file, number)?;
    let end = scanned.records.last().map_or(MAGIC.len() as u64, |&(_, pos, len)| {
        u64::from(pos) + RECORD_HEADER + u64::from(len)
    });
    if end == scanned.size {
        let records: Vec<(u64, u32)> = scanned.records.iter().map(|&(id, _, len)| (id, len)).collect();
        if let Err(e) = summary::write(dir, number, scanned.size, &records) {
            tracing_warn(number, 0, &format!("summary not written ({e})"));
        }
    }
    Ok(scanned)
}

/// Deletes summaries whose segment is gone (deleted between the two).
pub(super) fn remove_orphan_summaries(dir: &Path, numbers: &[u32]) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(number) = name.to_str().and_then(|n| n.strip_suffix(".sum")?.parse::<u32>().ok()) else {
            continue;
        };
        if numbers.binary_search(&number).is_err() {
            summary::remove(dir, number)?;
        }
    }
    Ok(())
}

/// Reads one segment at start: the place of every intact record, up to the
/// first one that is cut short or fails its checksum.
fn scan_segment(mut file: File, number: u32) -> io::Result<Scanned> {
    let mut contents = Vec::new();
    file.read_to_end(&mut contents)?;
    let records = if contents.starts_with(MAGIC) {
        parse_records(&contents, number)
    } else if contents.is_empty() {
        // Made ahead of need and never written (or its first write lost).
        Vec::new()
    } else {
        tracing_warn(number, 0, "not a segment file of this version; its records are ignored");
        Vec::new()
    };
    Ok(Scanned {
        file,
        size: contents.len() as u64,
        records,
    })
}
