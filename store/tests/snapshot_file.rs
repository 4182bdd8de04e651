//! A Raft group's snapshot on disk: written as a stream, read back whole
//! and checked; a new one replaces the last, and a write that did not
//! finish leaves the last one as it was.

use std::io::Write;

use warren_store::{read_snapshot, save_snapshot};

/// An image of `len` bytes, written in pieces of 1000.
fn write_image(len: usize, seed: u8) -> impl FnOnce(&mut dyn Write) -> std::io::Result<()> {
    move |out| {
        let image: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        for piece in image.chunks(1000) {
            out.write_all(piece)?;
        }
        Ok(())
    }
}

fn expected(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn image_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("image-"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_snapshot_reads_back_and_the_next_replaces_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(read_snapshot(dir.path()).expect("read").is_none());
    let len = save_snapshot(dir.path(), b"first", write_image(2_500_000, 1)).expect("save");
    assert_eq!(len, 2_500_000);
    let (description, image) = read_snapshot(dir.path()).expect("read").expect("a snapshot");
    assert_eq!(description, b"first");
    assert!(image == expected(2_500_000, 1));

    save_snapshot(dir.path(), b"second", write_image(10, 2)).expect("save");
    let (description, image) = read_snapshot(dir.path()).expect("read").expect("a snapshot");
    assert_eq!(description, b"second");
    assert_eq!(image, expected(10, 2));
    assert_eq!(image_files(dir.path()).len(), 1, "the first image is gone");
}

#[test]
fn a_write_that_fails_leaves_the_last_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    save_snapshot(dir.path(), b"kept", write_image(5000, 3)).expect("save");
    let failed = save_snapshot(dir.path(), b"lost", |out| {
        out.write_all(b"half an image")?;
        Err(std::io::Error::other("the machine could not be written"))
    });
    assert!(failed.is_err());
    let (description, image) = read_snapshot(dir.path()).expect("read").expect("a snapshot");
    assert_eq!(description, b"kept");
    assert_eq!(image, expected(5000, 3));
    // The next snapshot clears what the failed one left.
    save_snapshot(dir.path(), b"next", write_image(7, 4)).expect("save");
    assert_eq!(read_snapshot(dir.path()).expect("read").expect("a snapshot").0, b"next");
    assert_eq!(image_files(dir.path()).len(), 1, "{:?}", image_files(dir.path()));
}

#[test]
fn a_damaged_image_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    save_snapshot(dir.path(), b"d", write_image(4096, 5)).expect("save");
    let name = image_files(dir.path()).pop().expect("an image file");
    let path = dir.path().join(name);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).expect("write");
    assert!(read_snapshot(dir.path()).is_err());
}
