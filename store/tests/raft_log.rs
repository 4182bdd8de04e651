//! The Raft log on disk: what an append made durable comes back after a
//! reopen, a torn tail is cut off, truncation and purging give files back.

use std::fs::OpenOptions;
use std::io::Write;

use warren_store::{LogIndex, RaftLog};

fn payload(i: u64) -> Vec<u8> {
    format!("entry {i} {}", "x".repeat((i % 97) as usize)).into_bytes()
}

fn fill(log: &mut RaftLog, from: u64, to: u64) {
    log.append((from..to).map(|i| (LogIndex(i), payload(i))))
        .expect("append");
}

#[test]
fn entries_come_back_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut log = RaftLog::open(dir.path()).expect("open");
        fill(&mut log, 1, 1001);
        log.save_state("vote", b"term 3").expect("vote");
    }
    let log = RaftLog::open(dir.path()).expect("reopen");
    assert_eq!(log.first_index(), Some(LogIndex(1)));
    assert_eq!(log.last_index(), Some(LogIndex(1000)));
    let got = log.entries(LogIndex(10), LogIndex(13)).expect("read");
    assert_eq!(got, vec![payload(10), payload(11), payload(12)]);
    assert_eq!(log.state("vote").expect("state"), Some(b"term 3".to_vec()));
    assert_eq!(log.state("committed").expect("state"), None);
}

#[test]
fn a_torn_tail_is_cut_off_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut log = RaftLog::open(dir.path()).expect("open");
        fill(&mut log, 1, 51);
    }
    let segment = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        .expect("a segment");
    // Half a record: a header claiming more bytes than follow.
    let mut file = OpenOptions::new()
        .append(true)
        .open(segment.path())
        .expect("open segment");
    file.write_all(&100u32.to_le_bytes()).expect("write");
    file.write_all(&[1, 2, 3, 4, 51, 0, 0, 0, 0, 0, 0, 0, 9, 9])
        .expect("write");
    drop(file);
    let mut log = RaftLog::open(dir.path()).expect("reopen");
    assert_eq!(log.last_index(), Some(LogIndex(50)));
    fill(&mut log, 51, 61);
    drop(log);
    let log = RaftLog::open(dir.path()).expect("reopen again");
    assert_eq!(log.last_index(), Some(LogIndex(60)));
    assert_eq!(
        log.entries(LogIndex(55), LogIndex(56)).expect("read"),
        vec![payload(55)]
    );
}

#[test]
fn truncation_removes_a_suffix_durably() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut log = RaftLog::open(dir.path()).expect("open");
        fill(&mut log, 1, 101);
        log.truncate(LogIndex(40)).expect("truncate");
        assert_eq!(log.last_index(), Some(LogIndex(39)));
        // A new leader's entries replace the removed ones.
        log.append([(LogIndex(40), b"new 40".to_vec())]).expect("append");
    }
    let log = RaftLog::open(dir.path()).expect("reopen");
    assert_eq!(log.last_index(), Some(LogIndex(40)));
    assert_eq!(
        log.entries(LogIndex(39), LogIndex(41)).expect("read"),
        vec![payload(39), b"new 40".to_vec()]
    );
}

#[test]
fn purging_behind_a_snapshot_gives_disk_space_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = vec![7u8; 64 * 1024];
    let mut log = RaftLog::open(dir.path()).expect("open");
    // 64 MiB: eight segments of 8 MiB.
    log.append((1..=1024).map(|i| (LogIndex(i), big.clone())))
        .expect("append");
    let before = log.size_on_disk();
    assert!(before >= 64 * 1024 * 1024, "{before}");
    log.purge(LogIndex(900)).expect("purge");
    assert_eq!(log.first_index(), Some(LogIndex(901)));
    let after = log.size_on_disk();
    assert!(
        after < 20 * 1024 * 1024,
        "{after} bytes left after purging 900 of 1024 entries"
    );
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        .map(|e| e.metadata().expect("metadata").len())
        .sum();
    assert_eq!(on_disk, after);
    drop(log);
    let log = RaftLog::open(dir.path()).expect("reopen");
    // Entries of a partly purged segment come back; the caller knows where
    // its snapshot ends and purges again.
    assert_eq!(log.last_index(), Some(LogIndex(1024)));
    assert!(log.first_index() <= Some(LogIndex(901)));
}

#[test]
fn a_gap_in_appends_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = RaftLog::open(dir.path()).expect("open");
    fill(&mut log, 1, 5);
    assert!(log.append([(LogIndex(7), b"gap".to_vec())]).is_err());
    assert_eq!(log.last_index(), Some(LogIndex(4)));
}

/// A payload of 64 KiB that says which entry it is.
fn large(i: u64) -> Vec<u8> {
    let mut bytes = vec![(i % 251) as u8; 64 * 1024];
    bytes[..8].copy_from_slice(&i.to_le_bytes());
    bytes
}

#[test]
fn older_entries_are_read_back_from_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 40 MiB over five segments: far more than the log keeps in memory.
    {
        let mut log = RaftLog::open(dir.path()).expect("open");
        log.append((1..=640).map(|i| (LogIndex(i), large(i)))).expect("append");
        assert!(log.cached_entries(LogIndex(1), LogIndex(3)).is_none());
        assert_eq!(log.cached_entries(LogIndex(640), LogIndex(641)), Some(vec![large(640)]));
        // A run across a segment's end, read from disk.
        let got = log.entries(LogIndex(100), LogIndex(300)).expect("read");
        assert_eq!(got.len(), 200);
        for (i, payload) in (100..300).zip(&got) {
            assert!(payload == &large(i), "entry {i}");
        }
        // A range from disk into memory.
        let got = log.entries(LogIndex(500), LogIndex(641)).expect("read");
        assert!(got.iter().zip(500..).all(|(p, i)| p == &large(i)));
        log.truncate(LogIndex(600)).expect("truncate");
        log.append([(LogIndex(600), b"after truncation".to_vec())])
            .expect("append");
        log.purge(LogIndex(50)).expect("purge");
    }
    let log = RaftLog::open(dir.path()).expect("reopen");
    assert_eq!(log.last_index(), Some(LogIndex(600)));
    let got = log.entries(LogIndex(51), LogIndex(601)).expect("read");
    assert_eq!(got.len(), 550);
    assert!(got[..549].iter().zip(51..).all(|(p, i)| p == &large(i)));
    assert_eq!(got[549], b"after truncation".to_vec());
}

#[test]
fn a_damaged_record_reads_back_as_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = RaftLog::open(dir.path()).expect("open");
    log.append((1..=200).map(|i| (LogIndex(i), large(i)))).expect("append");
    let first = dir.path().join(format!("seg-{:020}.log", 1));
    let file = OpenOptions::new().write(true).open(&first).expect("open segment");
    // A byte in the payload of entry 2 (no longer in memory) changes.
    std::os::unix::fs::FileExt::write_all_at(&file, &[0xAA], (16 + 64 * 1024 + 16 + 100) as u64).expect("write");
    assert!(log.entries(LogIndex(2), LogIndex(3)).is_err());
    assert_eq!(log.entries(LogIndex(1), LogIndex(2)).expect("read"), vec![large(1)]);
}

#[test]
fn state_files_with_an_eight_byte_length_read_back() {
    // The form a value of 4 GiB or more is written in, with a short value.
    let dir = tempfile::tempdir().expect("tempdir");
    let value = b"a snapshot's image".to_vec();
    let mut file = Vec::new();
    file.extend_from_slice(&u32::MAX.to_le_bytes());
    file.extend_from_slice(&(value.len() as u64).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(&value).to_le_bytes());
    file.extend_from_slice(&value);
    std::fs::write(dir.path().join("image.state"), &file).expect("write");
    assert_eq!(
        warren_store::read_state_file(dir.path(), "image").expect("read"),
        Some(value.clone())
    );
    // A damaged length is an error, not a wrong value.
    file[5] ^= 0x40;
    std::fs::write(dir.path().join("image.state"), &file).expect("write");
    assert!(warren_store::read_state_file(dir.path(), "image").is_err());
}

#[test]
fn a_run_of_entries_is_cut_at_a_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = RaftLog::open(dir.path()).expect("open");
    log.append((1..=100).map(|i| (LogIndex(i), large(i)))).expect("append");
    // 64 KiB each: 16 fit in 1 MiB.
    assert_eq!(log.end_within(LogIndex(10), LogIndex(101), 1 << 20), LogIndex(26));
    assert_eq!(log.end_within(LogIndex(10), LogIndex(20), 1 << 20), LogIndex(20));
    // One entry larger than the limit still goes alone.
    assert_eq!(log.end_within(LogIndex(10), LogIndex(101), 1000), LogIndex(11));
    assert_eq!(log.end_within(LogIndex(100), LogIndex(101), 0), LogIndex(101));
}
