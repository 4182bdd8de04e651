//! Message bodies in segment files, through the store's public API on a
//! real directory: reference counting, space given back (whole segments
//! deleted, mostly-garbage ones compacted), and what a crash leaves.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use warren_store::*;

mod common;
use common::{entry, queue};

const SEGMENT: u64 = 64 * 1024;

fn options(compact_after: Duration) -> StoreOptions {
    StoreOptions {
        segment_bytes: SEGMENT,
        compact_after,
    }
}

/// Stores `count` 1 KiB messages in queue `q` at offsets `first..`, each
/// held by its entry only (the writer's own reference is released).
fn publish(store: &SledStore, q: u64, first: u64, count: u64) -> Vec<MessageId> {
    (first..first + count)
        .map(|offset| {
            let body = vec![(offset % 251) as u8; 1024];
            let id = store.append_message(&[&offset.to_be_bytes(), &body]).unwrap();
            store.add_entry(QueueId(q), Offset(offset), &entry(id, 1032)).unwrap();
            store.release_message(id);
            id
        })
        .collect()
}

/// The segment files holding anything (the next segment's file is made
/// ahead of need, empty).
fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("messages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .filter(|p| p.metadata().is_ok_and(|m| m.len() > 0))
        .collect();
    files.sort();
    files
}

fn dir_bytes(dir: &Path) -> u64 {
    segment_files(dir).iter().map(|p| p.metadata().unwrap().len()).sum()
}

#[test]
fn a_body_lives_while_anything_refers_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
    store.save_queue(&queue(1)).unwrap();
    store.save_queue(&queue(2)).unwrap();
    let id = store.append_message(&[b"shared body"]).unwrap();
    store.add_entry(QueueId(1), Offset(0), &entry(id, 11)).unwrap();
    store.add_entry(QueueId(2), Offset(0), &entry(id, 11)).unwrap();
    store.release_message(id);
    store.remove_entry(QueueId(1), Offset(0), id).unwrap();
    assert_eq!(store.message(id).unwrap().as_deref(), Some(&b"shared body"[..]));
    assert!(store.retain_message(id), "an in-memory copy can still take a reference");
    store.remove_entry(QueueId(2), Offset(0), id).unwrap();
    assert!(
        store.message(id).unwrap().is_some(),
        "the in-memory copy still holds it"
    );
    store.release_message(id);
    assert_eq!(store.message(id).unwrap(), None, "the last reference freed it");
    assert!(!store.retain_message(id));
    assert!(
        store.add_entry(QueueId(1), Offset(1), &entry(id, 11)).is_err(),
        "an entry cannot refer to a freed body"
    );
}

#[test]
fn acked_segments_are_deleted_after_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
    store.save_queue(&queue(1)).unwrap();
    publish(&store, 1, 0, 1000);
    store.sync().unwrap();
    let full = dir_bytes(dir.path());
    assert!(full > 1000 * 1024, "1,000 bodies are on disk ({full} bytes)");
    assert!(segment_files(dir.path()).len() >= 10);
    store.remove_entries(QueueId(1), Offset(0), Offset(1000)).unwrap();
    assert!(
        store.entries(QueueId(1), Offset(0), 10).unwrap().is_empty(),
        "purged entries are gone at once"
    );
    store.sync().unwrap();
    let after = dir_bytes(dir.path());
    assert!(after <= SEGMENT, "only the active segment is left: {after} bytes");
    assert_eq!(store.body_stats().messages, 0);
}

#[test]
fn one_old_message_does_not_pin_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), options(Duration::ZERO)).unwrap();
    store.save_queue(&queue(1)).unwrap();
    store.save_queue(&queue(2)).unwrap();
    // One message stays in queue 1 while queue 2 churns through thousands.
    let stuck = publish(&store, 1, 0, 1)[0];
    store.sync().unwrap();
    let first_segment = segment_files(dir.path())[0].clone();
    for round in 0..5 {
        publish(&store, 2, round * 1000, 1000);
        store
            .remove_entries(QueueId(2), Offset(0), Offset((round + 1) * 1000))
            .unwrap();
        // The purge takes effect in the files at a sync, compaction between
        // syncs, as the broker's flusher runs them.
        store.sync().unwrap();
        while store.maintain().unwrap() > 0 {}
        store.sync().unwrap();
    }
    let files = segment_files(dir.path());
    assert!(!files.contains(&first_segment), "the segment it was written to is gone");
    assert_eq!(
        files.len(),
        1,
        "the old message was compacted out of its segment, which then went: {files:?}"
    );
    assert!(dir_bytes(dir.path()) <= SEGMENT);
    let body = store.message(stuck).unwrap().expect("the old message is still there");
    assert_eq!(&body[..8], &0u64.to_be_bytes());
    drop(store);
    let store = SledStore::open_with(dir.path(), options(Duration::ZERO)).unwrap();
    let entries = store.entries(QueueId(1), Offset(0), 10).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        store.message(entries[0].1.message).unwrap().map(|b| b.len()),
        Some(1032)
    );
}

#[test]
fn compaction_waits_until_a_segment_stops_changing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), options(Duration::from_secs(3600))).unwrap();
    store.save_queue(&queue(1)).unwrap();
    let ids = publish(&store, 1, 0, 300);
    for offset in 1..300 {
        if offset % 10 != 0 {
            store
                .remove_entry(QueueId(1), Offset(offset), ids[offset as usize])
                .unwrap();
        }
    }
    assert_eq!(
        store.maintain().unwrap(),
        0,
        "segments drained a moment ago are left alone"
    );
}

#[test]
fn a_torn_tail_is_ignored_and_writing_continues_in_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
        store.save_queue(&queue(1)).unwrap();
        let ids = publish(&store, 1, 0, 20);
        store.sync().unwrap();
        ids
    };
    // A crash during a write: half a record, then garbage, at the end of the last segment.
    let last = segment_files(dir.path()).pop().unwrap();
    let mut file = OpenOptions::new().append(true).open(&last).unwrap();
    file.write_all(&[0, 0, 4, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 99, 7, 7])
        .unwrap();
    drop(file);
    // And a record that is complete but fails its checksum, in the middle.
    let first = segment_files(dir.path())[0].clone();
    let mut bytes = std::fs::read(&first).unwrap();
    let at = 8 + 16 + 1032 + 16 + 100; // inside the second record's payload
    bytes[at] ^= 0xFF;
    std::fs::write(&first, &bytes).unwrap();

    let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
    let entries = store.entries(QueueId(1), Offset(0), 100).unwrap();
    let offsets: Vec<u64> = entries.iter().map(|(o, _)| o.0).collect();
    assert_eq!(offsets[0], 0, "the record before the damage is intact");
    assert!(
        !offsets.contains(&1),
        "the damaged record's entry was dropped: {offsets:?}"
    );
    for (offset, e) in &entries {
        let body = store
            .message(e.message)
            .unwrap()
            .expect("every entry left has its body");
        assert_eq!(&body[..8], &offset.0.to_be_bytes());
    }
    assert_eq!(store.recovered_queue(QueueId(1)).count, entries.len() as u64);
    let new_id = store.append_message(&[b"after"]).unwrap();
    assert!(ids.iter().all(|&id| id < new_id), "ids are never reused");
    store.sync().unwrap();
    assert_eq!(store.message(new_id).unwrap().as_deref(), Some(&b"after"[..]));
}

#[test]
fn transient_and_bodiless_entries_do_not_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
        store.save_queue(&queue(1)).unwrap();
        publish(&store, 1, 0, 3);
        let id = store.append_message(&[b"transient"]).unwrap();
        store
            .add_entry(
                QueueId(1),
                Offset(3),
                &EntryRecord {
                    transient: true,
                    ..entry(id, 9)
                },
            )
            .unwrap();
        store.release_message(id);
        store.sync().unwrap();
    }
    let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
    let offsets: Vec<u64> = store
        .entries(QueueId(1), Offset(0), 100)
        .unwrap()
        .iter()
        .map(|(o, _)| o.0)
        .collect();
    assert_eq!(offsets, vec![0, 1, 2]);
    assert_eq!(store.recovered_queue(QueueId(1)).count, 3);
    assert_eq!(store.body_stats().messages, 3, "the transient body is garbage now");
}

#[test]
fn paging_reads_a_queue_in_offset_order_from_any_point() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
    store.save_queue(&queue(1)).unwrap();
    store.save_queue(&queue(2)).unwrap();
    publish(&store, 1, 0, 50);
    publish(&store, 2, 0, 5);
    let page: Vec<u64> = store
        .entries(QueueId(1), Offset(20), 10)
        .unwrap()
        .iter()
        .map(|(o, _)| o.0)
        .collect();
    assert_eq!(page, (20..30).collect::<Vec<_>>());
    let tail: Vec<u64> = store
        .entries(QueueId(1), Offset(45), 100)
        .unwrap()
        .iter()
        .map(|(o, _)| o.0)
        .collect();
    assert_eq!(tail, (45..50).collect::<Vec<_>>(), "a page stops at the queue's end");
    store.remove_entries(QueueId(1), Offset(40), Offset(50)).unwrap();
    assert_eq!(store.entries(QueueId(1), Offset(0), 100).unwrap().len(), 40);
    assert_eq!(
        store.entries(QueueId(2), Offset(0), 100).unwrap().len(),
        5,
        "other queues are untouched"
    );
    // Cleared in the files at the sync: still gone after a reopen.
    store.sync().unwrap();
    drop(store);
    let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
    assert_eq!(store.entries(QueueId(1), Offset(0), 100).unwrap().len(), 40);
    assert_eq!(store.recovered_queue(QueueId(1)).count, 40);
}

#[test]
fn appends_stay_in_memory_until_the_flusher_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
    store.save_queue(&queue(1)).unwrap();
    let ids = publish(&store, 1, 0, 300);
    assert_eq!(dir_bytes(dir.path()), 0, "appending wrote nothing to the files");
    assert!(store.unwritten_bytes() >= 300 * 1032);
    for (offset, id) in ids.iter().enumerate() {
        let body = store.message(*id).unwrap().expect("readable from memory");
        assert_eq!(&body[..8], &(offset as u64).to_be_bytes());
    }
    store.write_behind().unwrap();
    assert_eq!(store.unwritten_bytes(), 0);
    assert!(dir_bytes(dir.path()) >= 300 * 1032);
    for (offset, id) in ids.iter().enumerate() {
        let body = store.message(*id).unwrap().expect("readable from the files");
        assert_eq!(&body[..8], &(offset as u64).to_be_bytes());
    }
}

#[test]
fn appends_that_start_segments_race_the_flusher_making_the_next_one() {
    // The flusher makes the next segment's file outside the store's lock
    // while appends may start that very segment: neither may fail because
    // the other created the file first (each 16 KiB append here fills a
    // 64 KiB segment in four, so the two meet often).
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap());
    store.save_queue(&queue(1)).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flusher = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                store.write_behind().expect("write-behind");
            }
        })
    };
    let body = vec![7u8; 16 * 1024];
    let ids: Vec<MessageId> = (0..4000u64)
        .map(|offset| {
            let id = store.append_message(&[&offset.to_be_bytes(), &body]).expect("append");
            store
                .add_entry(QueueId(1), Offset(offset), &entry(id, 16 * 1024 + 8))
                .unwrap();
            id
        })
        .collect();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    flusher.join().unwrap();
    store.sync().unwrap();
    for (offset, id) in ids.iter().enumerate() {
        let stored = store.message(*id).unwrap().expect("stored");
        assert_eq!(&stored[..8], &(offset as u64).to_be_bytes());
    }
}

#[test]
fn many_messages_read_at_once_match_one_by_one_and_catch_damage() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
    store.save_queue(&queue(1)).unwrap();
    // 200 KiB over 64 KiB segments: runs end at segment boundaries.
    let mut ids = publish(&store, 1, 0, 200);
    store.sync().unwrap();
    // Some in the write buffer still, one asked twice, one never stored,
    // and out of order.
    ids.extend(publish(&store, 1, 200, 3));
    ids.push(ids[5]);
    ids.push(MessageId(u64::MAX));
    ids.swap(10, 150);
    let many = store.messages(&ids).unwrap();
    let one_by_one: Vec<Option<bytes::Bytes>> = ids
        .iter()
        .map(|id| store.message(*id).unwrap().map(bytes::Bytes::from))
        .collect();
    assert_eq!(many.len(), ids.len());
    assert_eq!(many, one_by_one);
    assert!(many[..203].iter().all(Option::is_some));
    assert_eq!(many.last(), Some(&None));

    // A record damaged on disk under the running store fails the batch
    // (a reader then reads one by one), and only that record alone.
    let first = segment_files(dir.path())[0].clone();
    let file = OpenOptions::new().write(true).open(&first).unwrap();
    let at = 8 + 16 + 1032 + 16 + 100; // inside the second record's payload
    std::os::unix::fs::FileExt::write_at(&file, &[0xAB], at).unwrap();
    drop(file);
    assert!(store.messages(&ids[..4]).is_err());
    assert!(store.message(ids[1]).is_err());
    assert!(store.message(ids[0]).unwrap().is_some());
    assert!(store.message(ids[2]).unwrap().is_some());
}

fn summary_files(dir: &Path) -> Vec<std::path::PathBuf> {
    common::files_ending(&dir.join("messages"), "sum")
}

#[test]
fn sealed_segments_are_summarised_and_reopen_from_their_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
        store.save_queue(&queue(1)).unwrap();
        let ids = publish(&store, 1, 0, 300);
        store.sync().unwrap();
        ids
    };
    let segments = segment_files(dir.path());
    let summaries = summary_files(dir.path());
    assert!(segments.len() >= 4, "{segments:?}");
    assert_eq!(summaries.len(), segments.len() - 1, "every sealed segment has one");
    for summary in &summaries {
        assert!(segments.contains(&summary.with_extension("seg")), "{summary:?}");
    }

    // A damaged summary is ignored (its segment is read instead), and one
    // whose segment is gone is removed.
    let mut bytes = std::fs::read(&summaries[0]).unwrap();
    bytes[12] ^= 1;
    std::fs::write(&summaries[0], &bytes).unwrap();
    std::fs::write(dir.path().join("messages/0999999999.sum"), b"orphan").unwrap();

    let store = SledStore::open_with(dir.path(), options(Duration::from_secs(60))).unwrap();
    for (offset, id) in ids.iter().enumerate() {
        let body = store.message(*id).unwrap().expect("every message survives");
        assert_eq!(&body[..8], &(offset as u64).to_be_bytes());
    }
    assert_eq!(store.recovered_queue(QueueId(1)).count, 300);
    assert!(!dir.path().join("messages/0999999999.sum").exists());
    // The segment written last before the reopen is sealed now: it and the
    // one whose summary was damaged are summarised again.
    assert_eq!(summary_files(dir.path()).len(), segments.len());

    // Acked and deleted, a segment takes its summary with it.
    for (offset, id) in ids.iter().enumerate() {
        store.remove_entry(QueueId(1), Offset(offset as u64), *id).unwrap();
    }
    store.sync().unwrap();
    store.sync().unwrap();
    let left = segment_files(dir.path());
    for summary in summary_files(dir.path()) {
        assert!(
            left.contains(&summary.with_extension("seg")),
            "{summary:?} outlived its segment"
        );
    }
}
