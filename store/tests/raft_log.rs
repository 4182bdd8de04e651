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
    let got = log.entries(LogIndex(10), LogIndex(13));
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
    assert_eq!(log.entries(LogIndex(55), LogIndex(56)), vec![payload(55)]);
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
        log.entries(LogIndex(39), LogIndex(41)),
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
