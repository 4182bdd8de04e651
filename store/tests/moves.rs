//! A move between durable queues that a crash interrupted is finished when
//! the store opens again: exactly the originals whose copies reached a
//! destination are gone from the source (real files on disk; the crash is
//! a store dropped after a sync, before the originals were removed).

use warren_store::*;

mod common;
use common::{entry, queue};

const SOURCE: QueueId = QueueId(1);
const DESTINATION: QueueId = QueueId(2);

/// Three messages in the source; a move of all three recorded; copies of
/// the first `arrived` added to the destination (and, if `removed`, the
/// originals removed from the source); then the "crash".
fn interrupted_move(dir: &std::path::Path, arrived: usize, removed: bool) -> Vec<MessageId> {
    let store = SledStore::open(dir).unwrap();
    store.save_queue(&queue(SOURCE.0)).unwrap();
    store.save_queue(&queue(DESTINATION.0)).unwrap();
    // Something already in the destination, with a body of its own.
    let other = store.append_message(&[b"other"]).unwrap();
    store.add_entry(DESTINATION, Offset(0), &entry(other, 5)).unwrap();
    let originals: Vec<MessageId> = (0..3)
        .map(|i| {
            let id = store.append_message(&[format!("m{i}").as_bytes()]).unwrap();
            store.add_entry(SOURCE, Offset(i), &entry(id, 2)).unwrap();
            id
        })
        .collect();
    store.sync().unwrap();
    let copies: Vec<MessageId> = (0..3)
        .map(|i| store.append_message(&[format!("m{i}").as_bytes()]).unwrap())
        .collect();
    let record = MoveRecord {
        source: SOURCE,
        entries: (0..3)
            .map(|i| MovedEntry {
                offset: i as u64,
                message: originals[i].0,
                copy: copies[i].0,
            })
            .collect(),
        destinations: vec![(DESTINATION, 1)],
    };
    store.save_move("/replay", &record).unwrap();
    store.sync().unwrap();
    for (i, copy) in copies.iter().enumerate().take(arrived) {
        store
            .add_entry(DESTINATION, Offset(1 + i as u64), &entry(*copy, 2))
            .unwrap();
    }
    store.sync().unwrap();
    if removed {
        for (i, original) in originals.iter().enumerate() {
            store.remove_entry(SOURCE, Offset(i as u64), *original).unwrap();
        }
        store.sync().unwrap();
    }
    copies
}

fn offsets(store: &SledStore, queue: QueueId) -> Vec<u64> {
    store
        .entries(queue, Offset(0), 100)
        .unwrap()
        .iter()
        .map(|(o, _)| o.0)
        .collect()
}

#[test]
fn originals_whose_copies_arrived_leave_the_source() {
    let dir = tempfile::tempdir().unwrap();
    interrupted_move(dir.path(), 2, false);
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(offsets(&store, SOURCE), vec![2], "only the one not copied stays");
    assert_eq!(offsets(&store, DESTINATION), vec![0, 1, 2]);
    let summary = store.recovered_queue(SOURCE);
    assert_eq!((summary.count, summary.bytes), (1, 2));
    drop(store);
    // Settled once: opening again changes nothing.
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(offsets(&store, SOURCE), vec![2]);
    assert_eq!(offsets(&store, DESTINATION), vec![0, 1, 2]);
}

#[test]
fn a_move_whose_copies_never_arrived_leaves_the_source_whole() {
    let dir = tempfile::tempdir().unwrap();
    interrupted_move(dir.path(), 0, false);
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(offsets(&store, SOURCE), vec![0, 1, 2]);
    assert_eq!(offsets(&store, DESTINATION), vec![0]);
    assert_eq!(store.recovered_queue(SOURCE).count, 3);
}

#[test]
fn a_move_finished_before_the_crash_removes_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    // The mover got as far as removing the originals, not the record.
    interrupted_move(dir.path(), 3, true);
    let store = SledStore::open(dir.path()).unwrap();
    assert!(offsets(&store, SOURCE).is_empty());
    assert_eq!(offsets(&store, DESTINATION), vec![0, 1, 2, 3]);
    let bodies: Vec<Vec<u8>> = store
        .entries(DESTINATION, Offset(1), 10)
        .unwrap()
        .iter()
        .map(|(_, e)| store.message(e.message).unwrap().expect("the copy's body"))
        .collect();
    assert_eq!(bodies, vec![b"m0".to_vec(), b"m1".to_vec(), b"m2".to_vec()]);
}
