//! A sealed segment's summary: the id and length of each of its records,
//! written beside it (`NNNNNNNNNN.sum`) once the segment is sealed and
//! synced, so that opening the store reads a few bytes a record instead of
//! every record (a restart with 100 M messages stored read 6 GB of
//! segments to learn what a summary holds in 400 MB).
//!
//! A sealed segment never changes again (it is only ever deleted), so its
//! summary stays true for its whole life. The file is `[magic][segment
//! size u64][records u64]`, then runs of consecutive ids, each `[first id
//! u64][count u32]` followed by `count` payload lengths (`u32`), then a
//! crc32 of everything before it. Records lie back to back from the end of
//! the segment's magic, so their places follow from their lengths. A
//! summary that does not check, or whose size is not the segment's, is
//! ignored and the segment read instead; summaries are written without a
//! sync of their own, since losing one costs only that read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{MAGIC, RECORD_HEADER};

const SUMMARY_MAGIC: &[u8; 8] = b"WRNSUM\x00\x01";

pub(super) fn summary_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{number:010}.sum"))
}

/// Writes the summary of segment `number`, `size` bytes long, whose
/// records are `records` (id, payload length) in file order.
pub(super) fn write(dir: &Path, number: u32, size: u64, records: &[(u64, u32)]) -> io::Result<()> {
    let mut out = Vec::with_capacity(32 + records.len() * 4);
    out.extend_from_slice(SUMMARY_MAGIC);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&(records.len() as u64).to_be_bytes());
    let mut rest = records;
    while let Some(&(first, _)) = rest.first() {
        let count = rest
            .iter()
            .enumerate()
            .take_while(|&(i, &(id, _))| id == first + i as u64 && i < u32::MAX as usize)
            .count();
        out.extend_from_slice(&first.to_be_bytes());
        out.extend_from_slice(&(count as u32).to_be_bytes());
        for &(_, len) in &rest[..count] {
            out.extend_from_slice(&len.to_be_bytes());
        }
        rest = &rest[count..];
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    fs::write(summary_path(dir, number), out)
}

/// The records of segment `number` as its summary gives them: (id,
/// position, payload length) in file order. None when there is no summary,
/// or it does not check, or it was not made for a segment of `size` bytes.
pub(super) fn read(dir: &Path, number: u32, size: u64) -> Option<Vec<(u64, u32, u32)>> {
    let bytes = fs::read(summary_path(dir, number)).ok()?;
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_be_bytes() != crc {
        return None;
    }
    let mut reader = Reader { bytes: body, at: 0 };
    if reader.take(8)? != SUMMARY_MAGIC || reader.u64()? != size {
        return None;
    }
    let total = usize::try_from(reader.u64()?).ok()?;
    let mut records = Vec::with_capacity(total.min(body.len() / 4));
    let mut pos = MAGIC.len() as u64;
    while reader.at < body.len() {
        let first = reader.u64()?;
        let count = reader.u32()?;
        for i in 0..u64::from(count) {
            let len = reader.u32()?;
            records.push((first.checked_add(i)?, u32::try_from(pos).ok()?, len));
            pos += RECORD_HEADER + u64::from(len);
        }
    }
    // The records must end where the segment does.
    (records.len() == total && pos == size).then_some(records)
}

/// Removes segment `number`'s summary, if it has one.
pub(super) fn remove(dir: &Path, number: u32) -> io::Result<()> {
    match fs::remove_file(summary_path(dir, number)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_reads_back_with_the_places_of_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let records = [(5u64, 10u32), (6, 0), (7, 300), (2, 4), (9, 1)];
        let size = MAGIC.len() as u64 + records.iter().map(|&(_, l)| 16 + u64::from(l)).sum::<u64>();
        write(dir.path(), 3, size, &records).unwrap();
        let read = read(dir.path(), 3, size).expect("a summary");
        assert_eq!(
            read,
            vec![(5, 8, 10), (6, 34, 0), (7, 50, 300), (2, 366, 4), (9, 386, 1)]
        );
        assert!(super::read(dir.path(), 3, size + 1).is_none(), "another size");
        assert!(super::read(dir.path(), 4, size).is_none(), "no summary");
    }

    #[test]
    fn a_damaged_summary_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let size = MAGIC.len() as u64 + 26;
        write(dir.path(), 1, size, &[(1, 10)]).unwrap();
        let path = summary_path(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        for cut in [0, 4, bytes.len() - 1] {
            fs::write(&path, &bytes[..cut]).unwrap();
            assert!(read(dir.path(), 1, size).is_none(), "cut at {cut}");
        }
        bytes[20] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(read(dir.path(), 1, size).is_none(), "a flipped bit");
    }
}
