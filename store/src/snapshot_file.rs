//! A Raft group's snapshot on disk: the image in a file of its own, written
//! as a stream (a large queue's image is never whole in memory while it is
//! written), and a small head, a state file that names the image with its
//! length and checksum beside the caller's description of the snapshot.
//! The head is replaced last and atomically, so a crash while a snapshot is
//! written leaves the one before whole; images the head does not name are
//! deleted when the next is kept.
//!
//! Every function blocks on the disk: callers run them off the runtime.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use crate::raft_log::{read_state_file, save_state_file, sync_dir};
use crate::{StoreError, StoreResult};

const HEAD: &str = "snapshot-head";
const IMAGE_PREFIX: &str = "image-";

/// A writer that counts and checksums what passes through it.
struct Summing<W> {
    inner: W,
    len: u64,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.len += written as u64;
        self.crc.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The head as its state file holds it: the description's length and
/// bytes, the image file's number, the image's length and checksum.
struct Head {
    description: Vec<u8>,
    image: u64,
    len: u64,
    crc: u32,
}

impl Head {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.description.len() + 24);
        bytes.extend_from_slice(&(self.description.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&self.description);
        bytes.extend_from_slice(&self.image.to_le_bytes());
        bytes.extend_from_slice(&self.len.to_le_bytes());
        bytes.extend_from_slice(&self.crc.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Head> {
        let take = |at: usize, n: usize| bytes.get(at..at + n);
        let described = u32::from_le_bytes(take(0, 4)?.try_into().ok()?) as usize;
        let description = take(4, described)?.to_vec();
        let at = 4 + described;
        Some(Head {
            description,
            image: u64::from_le_bytes(take(at, 8)?.try_into().ok()?),
            len: u64::from_le_bytes(take(at + 8, 8)?.try_into().ok()?),
            crc: u32::from_le_bytes(take(at + 16, 4)?.try_into().ok()?),
        })
    }
}

fn image_name(number: u64) -> String {
    format!("{IMAGE_PREFIX}{number:020}")
}

/// The numbers of the image files in `dir`; an image a failed or cut
/// write left half written is deleted.
fn images(dir: &Path) -> StoreResult<Vec<u64>> {
    let mut numbers = Vec::new();
    for item in fs::read_dir(dir)? {
        let name = item?.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(IMAGE_PREFIX)) else {
            continue;
        };
        if rest.ends_with(".tmp") {
            fs::remove_file(dir.join(&name))?;
        } else if let Ok(number) = rest.parse::<u64>() {
            numbers.push(number);
        }
    }
    Ok(numbers)
}

/// Keeps a snapshot in `dir`: `write_image` writes the image (in as many
/// writes as it likes), `description` is the caller's. Durable when it
/// returns; the image's length in bytes.
pub fn save_snapshot(
    dir: &Path,
    description: &[u8],
    write_image: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> StoreResult<u64> {
    fs::create_dir_all(dir)?;
    let existing = images(dir)?;
    let number = existing.iter().max().map_or(1, |n| n + 1);
    let name = image_name(number);
    let temporary = dir.join(format!("{name}.tmp"));
    let mut out = Summing {
        inner: BufWriter::with_capacity(1 << 20, File::create(&temporary)?),
        len: 0,
        crc: crc32fast::Hasher::new(),
    };
    write_image(&mut out)?;
    out.flush()?;
    let Summing { inner, len, crc } = out;
    inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&temporary, dir.join(&name))?;
    sync_dir(dir)?;
    let head = Head {
        description: description.to_vec(),
        image: number,
        len,
        crc: crc.finalize(),
    };
    save_state_file(dir, HEAD, &head.encode())?;
    for old in existing {
        fs::remove_file(dir.join(image_name(old)))?;
    }
    sync_dir(dir)?;
    Ok(len)
}

/// The snapshot kept in `dir`, if there is one: its description and its
/// image, read whole and checked; a damaged one is an error.
pub fn read_snapshot(dir: &Path) -> StoreResult<Option<(Vec<u8>, Vec<u8>)>> {
    let Some(bytes) = read_state_file(dir, HEAD)? else {
        return Ok(None);
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("snapshot in {}: {what}", dir.display()));
    let head = Head::decode(&bytes).ok_or_else(|| corrupt("its head does not decode"))?;
    let mut image = Vec::with_capacity(head.len as usize);
    File::open(dir.join(image_name(head.image)))?.read_to_end(&mut image)?;
    if image.len() as u64 != head.len || crc32fast::hash(&image) != head.crc {
        return Err(corrupt("its image is damaged"));
    }
    Ok(Some((head.description, image)))
}
