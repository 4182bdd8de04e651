//! Queue indexes in slot files, through the store's public API on a real
//! directory: files go once their entries are gone, a damaged slot reads as
//! empty, and reopening finds exactly what was synced.

use std::path::{Path, PathBuf};
use std::time::Duration;

use warren_store::*;

mod common;
use common::queue;

fn options() -> StoreOptions {
    StoreOptions {
        segment_bytes: 1 << 20,
        compact_after: Duration::from_secs(60),
    }
}

/// Stores `count` small messages in queue `q` at offsets `first..`; returns their ids.
fn publish(store: &SledStore, q: u64, first: u64, count: u64) -> Vec<MessageId> {
    (first..first + count)
        .map(|offset| {
            let id = store.append_message(&[&offset.to_be_bytes()]).unwrap();
            let entry = EntryRecord {
                expires_at_ms: offset,
                ..common::entry(id, 8)
            };
            store.add_entry(QueueId(q), Offset(offset), &entry).unwrap();
            store.release_message(id);
            id
        })
        .collect()
}

fn index_files(dir: &Path, q: u64) -> Vec<PathBuf> {
    common::files_ending(&dir.join("queues").join(q.to_string()), "idx")
}

#[test]
fn index_files_go_once_their_entries_are_acked() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), options()).unwrap();
    store.save_queue(&queue(1)).unwrap();
    let ids = publish(&store, 1, 0, 40_000);
    store.sync().unwrap();
    assert_eq!(index_files(dir.path(), 1).len(), 3, "16,384 offsets per file");
    // Ack all but one message of the first file, and all of the second.
    for offset in 1..32_768u64 {
        store
            .remove_entry(QueueId(1), Offset(offset), ids[offset as usize])
            .unwrap();
    }
    store.sync().unwrap();
    let files = index_files(dir.path(), 1);
    assert_eq!(files.len(), 2, "the emptied second file is gone: {files:?}");
    assert!(files[0].ends_with("0000000000.idx"), "the first keeps its one entry");
    let left: Vec<u64> = store
        .entries(QueueId(1), Offset(0), 10)
        .unwrap()
        .iter()
        .map(|(o, _)| o.0)
        .collect();
    assert_eq!(
        left,
        vec![0, 32_768, 32_769, 32_770, 32_771, 32_772, 32_773, 32_774, 32_775, 32_776]
    );
    drop(store);
    let store = SledStore::open_with(dir.path(), options()).unwrap();
    let summary = store.recovered_queue(QueueId(1));
    assert_eq!(summary.count, 1 + 40_000 - 32_768);
    assert_eq!((summary.first_offset, summary.next_offset), (Offset(0), Offset(40_000)));
    let entries = store.entries(QueueId(1), Offset(32_768), 1).unwrap();
    assert_eq!(entries[0].1.expires_at_ms, 32_768, "every field comes back");
    assert_eq!(
        store.message(entries[0].1.message).unwrap().unwrap(),
        32_768u64.to_be_bytes()
    );
}

#[test]
fn unsynced_writes_and_damaged_slots_do_not_come_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open_with(dir.path(), options()).unwrap();
        store.save_queue(&queue(1)).unwrap();
        publish(&store, 1, 0, 10);
        store.sync().unwrap();
        // Written after the last sync and never synced: the store writes
        // nothing on drop, so this is what a crash leaves.
        publish(&store, 1, 10, 5);
    }
    let file = index_files(dir.path(), 1)[0].clone();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[3 * 64 + 20] ^= 0x40; // flip a bit inside the slot of offset 3
    std::fs::write(&file, &bytes).unwrap();
    let store = SledStore::open_with(dir.path(), options()).unwrap();
    let offsets: Vec<u64> = store
        .entries(QueueId(1), Offset(0), 100)
        .unwrap()
        .iter()
        .map(|(o, _)| o.0)
        .collect();
    assert_eq!(offsets, vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
    assert_eq!(store.recovered_queue(QueueId(1)).count, 9);
}

#[test]
fn a_deleted_queue_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), options()).unwrap();
    store.save_queue(&queue(1)).unwrap();
    store.save_queue(&queue(2)).unwrap();
    publish(&store, 1, 0, 100);
    publish(&store, 2, 0, 100);
    store.sync().unwrap();
    store.delete_queue("/", "q1", QueueId(1)).unwrap();
    store.sync().unwrap();
    assert!(index_files(dir.path(), 1).is_empty());
    assert_eq!(store.body_stats().messages, 100, "only queue 2's bodies are left");
    drop(store);
    let store = SledStore::open_with(dir.path(), options()).unwrap();
    assert_eq!(store.recovered_queue(QueueId(1)).count, 0);
    assert_eq!(store.recovered_queue(QueueId(2)).count, 100);
}

#[test]
fn an_entry_keeps_its_priority_and_one_written_without_reads_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open_with(dir.path(), options()).unwrap();
        store.save_queue(&queue(1)).unwrap();
        for (offset, priority) in [(0, Some(0)), (1, Some(9)), (2, Some(255)), (3, None)] {
            let id = store.append_message(&[b"body"]).unwrap();
            let entry = EntryRecord {
                priority,
                ..common::entry(id, 4)
            };
            store.add_entry(QueueId(1), Offset(offset), &entry).unwrap();
            store.release_message(id);
        }
        store.sync().unwrap();
    }
    let store = SledStore::open_with(dir.path(), options()).unwrap();
    let priorities: Vec<Option<u8>> = store
        .entries(QueueId(1), Offset(0), 100)
        .unwrap()
        .iter()
        .map(|(_, entry)| entry.priority)
        .collect();
    assert_eq!(priorities, vec![Some(0), Some(9), Some(255), None]);
}

fn summaries(dir: &Path, q: u64) -> Vec<PathBuf> {
    common::files_ending(&dir.join("queues").join(q.to_string()), "sum")
}

#[test]
fn full_index_files_are_summarised_until_they_change() {
    const SLOTS: u64 = 16_384;
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let store = SledStore::open_with(dir.path(), options()).unwrap();
        store.save_queue(&queue(1)).unwrap();
        let ids = publish(&store, 1, 0, 2 * SLOTS + 100);
        store.sync().unwrap();
        ids
    };
    assert_eq!(summaries(dir.path(), 1).len(), 2, "the two full files");

    // Reopened from the summaries: every entry is there, and acks work.
    let store = SledStore::open_with(dir.path(), options()).unwrap();
    let found = store.recovered_queue(QueueId(1));
    assert_eq!(
        (found.count, found.first_offset, found.next_offset),
        (2 * SLOTS + 100, Offset(0), Offset(2 * SLOTS + 100))
    );
    assert_eq!(found.bytes, (2 * SLOTS + 100) * 8);
    store.remove_entry(QueueId(1), Offset(5), ids[5]).unwrap();
    store.sync().unwrap();
    assert_eq!(summaries(dir.path(), 1).len(), 1, "the changed file lost its summary");
    let entries = store.entries(QueueId(1), Offset(0), 10).unwrap();
    assert_eq!(
        entries.iter().map(|(o, _)| o.0).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    );
    drop(store);

    // A damaged summary is ignored; the file is read (and summarised again
    // after the next sync).
    let damaged = summaries(dir.path(), 1)[0].clone();
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&damaged, &bytes).unwrap();
    let store = SledStore::open_with(dir.path(), options()).unwrap();
    assert_eq!(store.recovered_queue(QueueId(1)).count, 2 * SLOTS + 99);
    let entries = store.entries(QueueId(1), Offset(SLOTS), 3).unwrap();
    assert_eq!(
        entries.iter().map(|(o, e)| (o.0, e.message)).collect::<Vec<_>>(),
        [
            (SLOTS, ids[SLOTS as usize]),
            (SLOTS + 1, ids[SLOTS as usize + 1]),
            (SLOTS + 2, ids[SLOTS as usize + 2])
        ]
    );
    store
        .remove_entry(QueueId(1), Offset(2 * SLOTS), ids[2 * SLOTS as usize])
        .unwrap();
    store.sync().unwrap();
    // Both full files were read at this start (one had changed, one's
    // summary was damaged) and are summarised again; file 2 is not full.
    let again = summaries(dir.path(), 1);
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(again[1].ends_with("0000000001.sum"));
}

#[test]
fn a_read_that_writes_a_change_first_removes_the_summary_it_falsifies() {
    const SLOTS: u64 = 16_384;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open_with(dir.path(), options()).unwrap();
        store.save_queue(&queue(1)).unwrap();
        let ids = publish(&store, 1, 0, SLOTS + 10);
        store.sync().unwrap();
        assert_eq!(summaries(dir.path(), 1).len(), 1);
        // An ack, then a read of its file before any sync: the read writes
        // the cleared slot, so the summary must go first.
        store.remove_entry(QueueId(1), Offset(5), ids[5]).unwrap();
        let read = store.entries(QueueId(1), Offset(4), 2).unwrap();
        assert_eq!(read.iter().map(|(o, _)| o.0).collect::<Vec<_>>(), [4, 6]);
        assert!(summaries(dir.path(), 1).is_empty());
        // A crash here: the store writes nothing more.
    }
    let store = SledStore::open_with(dir.path(), options()).unwrap();
    assert_eq!(store.recovered_queue(QueueId(1)).count, SLOTS + 9);
}

#[test]
fn reading_from_the_end_while_a_summary_is_voided_finds_nothing() {
    const SLOTS: u64 = 16_384;
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), options()).unwrap();
    store.save_queue(&queue(1)).unwrap();
    let ids = publish(&store, 1, 0, 2 * SLOTS + 1);
    store.sync().unwrap();
    assert_eq!(summaries(dir.path(), 1).len(), 2);
    // File 0's summary is now being voided; a read that starts where the
    // index ends (at a file boundary, or past it) finds nothing.
    store.remove_entry(QueueId(1), Offset(5), ids[5]).unwrap();
    for from in [2 * SLOTS + 1, 3 * SLOTS, 5 * SLOTS] {
        assert!(store.entries(QueueId(1), Offset(from), 10).unwrap().is_empty());
    }
    let read = store.entries(QueueId(1), Offset(2 * SLOTS), 10).unwrap();
    assert_eq!(read.len(), 1);
}
