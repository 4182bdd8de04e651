//! The store keeps what was synced across a close and reopen of the same
//! directory, with real sled files on disk.

use warren_store::*;

mod common;
use common::queue;

fn entry(message: MessageId, delivery_count: u32) -> EntryRecord {
    EntryRecord {
        delivery_count,
        ..common::entry(message, 4)
    }
}

#[test]
fn definitions_and_messages_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.save_vhost("/").unwrap();
        store
            .save_exchange(&ExchangeRecord {
                vhost: "/".into(),
                name: "orders".into(),
                kind: "topic".into(),
                auto_delete: false,
                internal: false,
                arguments: vec![1, 2, 3],
            })
            .unwrap();
        store.save_queue(&queue(7)).unwrap();
        store.save_queue(&queue(8)).unwrap();
        let binding = BindingRecord {
            vhost: "/".into(),
            source: "orders".into(),
            destination_kind: "queue".into(),
            destination: "q7".into(),
            routing_key: "a.#".into(),
            arguments: vec![],
        };
        store.save_binding(&binding).unwrap();
        let id = store.append_message(&[b"bo", b"dy"]).unwrap();
        for offset in [3u64, 1, 2] {
            store
                .add_entry(QueueId(7), Offset(offset), &entry(id, offset as u32))
                .unwrap();
        }
        store.add_entry(QueueId(8), Offset(0), &entry(id, 0)).unwrap();
        store.remove_entry(QueueId(7), Offset(2), id).unwrap();
        store.update_entry(QueueId(7), Offset(3), &entry(id, 9)).unwrap();
        store.save_delivered_mark(QueueId(7), Offset(2)).unwrap();
        store.delete_queue("/", "q8", QueueId(8)).unwrap();
        store.release_message(id);
        store.sync().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let defs = store.definitions().unwrap();
    assert_eq!(defs.vhosts, vec!["/".to_string()]);
    assert_eq!(defs.exchanges.len(), 1);
    assert_eq!(defs.exchanges[0].arguments, vec![1, 2, 3]);
    assert_eq!(defs.queues, vec![queue(7)]);
    assert_eq!(defs.bindings.len(), 1);
    let entries = store.entries(QueueId(7), Offset(0), 100).unwrap();
    let offsets: Vec<u64> = entries.iter().map(|(o, _)| o.0).collect();
    assert_eq!(
        offsets,
        vec![1, 3],
        "entries come back in offset order, deleted ones gone"
    );
    assert_eq!(entries[1].1.delivery_count, 9, "an updated entry keeps its new count");
    let id = entries[0].1.message;
    assert_eq!(store.message(id).unwrap().as_deref(), Some(&b"body"[..]));
    assert_eq!(store.delivered_mark(QueueId(7)).unwrap(), Offset(2));
    assert!(store.entries(QueueId(8), Offset(0), 100).unwrap().is_empty());
    let summary = store.recovered_queue(QueueId(7));
    assert_eq!((summary.count, summary.bytes), (2, 8));
    assert_eq!((summary.first_offset, summary.next_offset), (Offset(1), Offset(4)));
    assert!(store.next_id().unwrap() > QueueId(0));
}

#[test]
fn refuses_a_different_format_version() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path().join("sled")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format_version", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match SledStore::open(dir.path()) {
        Err(StoreError::Version { found: 99, expected }) => assert_eq!(expected, FORMAT_VERSION),
        other => panic!("expected a version error, got {:?}", other.err()),
    }
}

#[test]
fn lazy_store_opens_only_when_written() {
    let dir = tempfile::tempdir().unwrap();
    let lazy = LazySledStore::new(dir.path().to_path_buf(), StoreOptions::default());
    assert!(!lazy.exists());
    lazy.sync().unwrap();
    assert_eq!(lazy.size_on_disk().unwrap(), 0);
    assert!(!lazy.exists(), "syncing an unopened store creates nothing");
    lazy.save_queue(&queue(1)).unwrap();
    lazy.sync().unwrap();
    assert!(lazy.exists(), "the first write opens (creates) the store");
    drop(lazy);
    // sled's background writer may hold the directory's lock for a moment
    // after the last handle is dropped; a new process never sees that.
    let started = std::time::Instant::now();
    let reopened = loop {
        match SledStore::open(dir.path()) {
            Ok(store) => break store,
            Err(e) if started.elapsed() < std::time::Duration::from_secs(5) => {
                eprintln!("reopen: {e}; retrying");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("reopen failed: {e}"),
        }
    };
    assert_eq!(reopened.definitions().unwrap().queues, vec![queue(1)]);
}

/// A segment file holding one record with message id `id`.
fn segment_with_record(id: u64, payload: &[u8]) -> Vec<u8> {
    let mut file = b"WRNSEG\x00\x01".to_vec();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&id.to_be_bytes());
    hasher.update(payload);
    file.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    file.extend_from_slice(&hasher.finalize().to_be_bytes());
    file.extend_from_slice(&id.to_be_bytes());
    file.extend_from_slice(payload);
    file
}

#[test]
fn numbers_at_the_limits_in_crafted_files_are_ignored_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.save_queue(&queue(1)).unwrap();
        store.sync().unwrap();
    }
    let messages = dir.path().join("messages");
    // A record whose id leaves no next id, a segment numbered past the
    // last one that fits, and a queue index file whose offsets overflow.
    std::fs::write(messages.join("0000000100.seg"), segment_with_record(u64::MAX, b"evil")).unwrap();
    std::fs::write(messages.join("4294967295.seg"), segment_with_record(7, b"x")).unwrap();
    let index = dir.path().join("queues").join("1");
    std::fs::create_dir_all(&index).unwrap();
    std::fs::write(index.join(format!("{:010}.idx", u64::MAX / 2)), vec![1u8; 64]).unwrap();

    let store = SledStore::open(dir.path()).unwrap();
    let id = store.append_message(&[b"fine"]).unwrap();
    assert!(id < MessageId(u64::MAX));
    store.add_entry(QueueId(1), Offset(0), &common::entry(id, 4)).unwrap();
    store.sync().unwrap();
    assert_eq!(store.entries(QueueId(1), Offset(0), 10).unwrap().len(), 1);
    assert_eq!(store.message(id).unwrap().as_deref(), Some(&b"fine"[..]));
}
