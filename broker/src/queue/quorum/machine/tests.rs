//! The quorum queue machine's unit tests: commands applied in order, the
//! state and effects they leave.

use super::*;
use std::sync::Arc;
use warren_protocol::{BasicProperties, ContentHeader, ShortStr};

use crate::message::Message;

fn message(text: &str) -> ByteBuf {
    let header = ContentHeader::new(60, text.len() as u64, BasicProperties::default());
    let m = Message::new(
        ShortStr::from_static(""),
        ShortStr::from_static("q"),
        header,
        bytes::Bytes::copy_from_slice(text.as_bytes()),
    );
    ByteBuf::from(m.encode())
}

fn life(node: &str, boot: u64) -> NodeLife {
    NodeLife {
        node: node.into(),
        boot,
    }
}

/// A clock `now_ms` into the log, on node "leader".
fn at(now_ms: u64) -> Clock {
    Clock {
        now_ms,
        leader: life("leader", 1),
    }
}

fn enqueue(messages: Vec<ByteBuf>) -> Command {
    Command::Enqueue {
        from: life("a", 1),
        messages,
        limits: Limits::default(),
    }
}

impl Machine {
    /// Applies `command` at time 0.
    fn run(&mut self, command: Command, effects: &mut Vec<Effect>) -> Reply {
        self.apply(command, &at(0), effects)
    }
}

fn settle(node: NodeLife, seqs: Vec<Seq>, outcome: Outcome, limit: Option<u64>) -> Command {
    Command::Settle {
        node,
        seqs,
        outcome,
        limit,
    }
}

fn checkout(node: NodeLife, max: u32) -> Command {
    Command::Checkout { node, max }
}

/// A machine holding messages "m0".."m{count - 1}", and where effects go.
fn filled(count: usize) -> (Machine, Vec<Effect>) {
    let mut m = Machine::default();
    let mut effects = Vec::new();
    m.run(
        enqueue((0..count).map(|i| message(&format!("m{i}"))).collect()),
        &mut effects,
    );
    (m, effects)
}

fn delivered(effect: &Effect) -> &[(Seq, Held)] {
    match effect {
        Effect::Deliver { messages, .. } => messages,
        Effect::DeadLetter { .. } => &[],
    }
}

#[test]
fn past_the_delivery_limit_a_message_dies_on_the_node_that_returned_it() {
    let mut m = Machine::default();
    let mut effects = Vec::new();
    m.run(enqueue(vec![message("poison")]), &mut effects);
    for round in 0..3 {
        effects.clear();
        m.run(checkout(life("a", 1), 1), &mut effects);
        assert_eq!(delivered(&effects[0]).len(), 1, "round {round}");
        effects.clear();
        let settle = settle(life("a", 1), vec![0], Outcome::Return, Some(2));
        m.run(settle, &mut effects);
    }
    assert_eq!(m.ready_count(), 0);
    match &effects[..] {
        [Effect::DeadLetter { node, held, reason }] => {
            assert_eq!(node, &life("a", 1));
            assert_eq!(*reason, Death::DeliveryLimit);
            assert_eq!(held.delivery_count, 3);
        }
        other => panic!("expected one dead letter, got {other:?}"),
    }
    m.run(enqueue(vec![message("rejected")]), &mut effects);
    m.run(checkout(life("b", 1), 1), &mut effects);
    effects.clear();
    let discard = settle(life("b", 1), vec![1], Outcome::Discard, Some(2));
    m.run(discard, &mut effects);
    assert!(matches!(
        &effects[..],
        [Effect::DeadLetter {
            reason: Death::Rejected,
            ..
        }]
    ));
}

fn body(held: &Held) -> String {
    let message = held.message.decode().expect("a message");
    String::from_utf8_lossy(&message.body).into_owned()
}

#[test]
fn checkouts_hand_each_message_to_one_node_and_returns_keep_order() {
    let (mut m, mut handed) = filled(5);
    assert_eq!(m.ready_count(), 5);
    let a = m.run(checkout(life("a", 1), 2), &mut handed);
    let b = m.run(checkout(life("b", 1), 2), &mut handed);
    assert_eq!(a, Reply::CheckedOut(vec![0, 1]));
    assert_eq!(b, Reply::CheckedOut(vec![2, 3]));
    assert_eq!(handed.len(), 2);
    assert_eq!(body(&delivered(&handed[1])[0].1), "m2");
    // b cannot settle a's messages; a returns one, acks the other.
    assert_eq!(
        m.run(
            Command::Settle {
                node: life("b", 1),
                seqs: vec![0],
                outcome: Outcome::Ack,
                limit: None
            },
            &mut handed
        ),
        Reply::Settled(0)
    );
    m.run(settle(life("a", 1), vec![1], Outcome::Ack, None), &mut handed);
    m.run(settle(life("a", 1), vec![0], Outcome::Return, None), &mut handed);
    handed.clear();
    // The returned message is at the head again, counted.
    m.run(checkout(life("b", 1), 1), &mut handed);
    assert_eq!(delivered(&handed[0])[0].0, 0);
    assert_eq!(delivered(&handed[0])[0].1.delivery_count, 1);
    assert_eq!(m.held_count(), 3);
}

#[test]
fn a_restarted_node_gives_back_what_its_earlier_life_held() {
    let (mut m, mut handed) = filled(3);
    m.run(checkout(life("a", 1), 2), &mut handed);
    m.run(checkout(life("b", 7), 1), &mut handed);
    assert_eq!(
        m.run(
            Command::Reset {
                node: "a".into(),
                keep: 2
            },
            &mut handed
        ),
        Reply::Reset(2)
    );
    assert_eq!(m.ready_count(), 2);
    // a's old life settles nothing any more.
    assert_eq!(
        m.run(
            Command::Settle {
                node: life("a", 1),
                seqs: vec![0, 1],
                outcome: Outcome::Ack,
                limit: None
            },
            &mut handed
        ),
        Reply::Settled(0)
    );
    assert_eq!(
        m.run(
            Command::Reset {
                node: "b".into(),
                keep: 0
            },
            &mut handed
        ),
        Reply::Reset(1)
    );
    assert_eq!(m.ready_count(), 3);
}

#[test]
fn an_image_rebuilds_the_same_machine() {
    let (mut m, mut handed) = filled(4);
    m.run(checkout(life("a", 1), 1), &mut handed);
    m.run(settle(life("a", 1), vec![0], Outcome::Return, None), &mut handed);
    m.run(checkout(life("a", 1), 2), &mut handed);
    let copy = Machine::from_image(&m.image()).expect("an image");
    assert_eq!(copy.ready_count(), m.ready_count());
    assert_eq!(copy.held_count(), 2);
    assert_eq!(copy.ready_bytes(), m.ready_bytes());
    assert_eq!(body(copy.head().expect("a head")), "m2");
    let mut copy = copy;
    m.run(enqueue(vec![message("m4")]), &mut handed);
    copy.run(enqueue(vec![message("m4")]), &mut handed);
    assert_eq!(m.image(), copy.image());
    assert_eq!(m.run(Command::Purge, &mut handed), Reply::Purged(3));
    assert!(Machine::from_image(b"not an image").is_none());
}

fn limited(limits: Limits, text: &str) -> Command {
    Command::Enqueue {
        from: life("a", 1),
        messages: vec![message(text)],
        limits,
    }
}

#[test]
fn a_ttl_runs_out_by_the_leaders_clock_and_the_leader_dead_letters() {
    let mut m = Machine::default();
    let mut effects = Vec::new();
    let ttl = Limits {
        message_ttl: Some(1_000),
        ..Limits::default()
    };
    m.apply(limited(ttl, "old"), &at(10_000), &mut effects);
    m.apply(limited(ttl, "new"), &at(10_600), &mut effects);
    // Not yet due at 11,000 (due after it); then the head goes, alone.
    assert_eq!(m.apply(Command::Expire, &at(11_000), &mut effects), Reply::Done);
    assert_eq!(m.ready_count(), 2);
    assert_eq!(m.next_expiry(), Some(11_000));
    m.apply(Command::Expire, &at(11_001), &mut effects);
    assert_eq!(m.ready_count(), 1);
    match &effects[..] {
        [Effect::DeadLetter { node, held, reason }] => {
            assert_eq!(node, &life("leader", 1));
            assert_eq!(*reason, Death::Expired);
            assert_eq!(body(held), "old");
        }
        other => panic!("expected one dead letter, got {other:?}"),
    }
    // A leader whose clock is behind does not bring the message back.
    effects.clear();
    m.apply(Command::Expire, &at(5_000), &mut effects);
    assert_eq!(m.ready_count(), 1);
    // Any later entry expires what is due before it acts: no checkout
    // hands over an expired message.
    let checkout = checkout(life("b", 1), 5);
    assert_eq!(m.apply(checkout, &at(20_000), &mut effects), Reply::CheckedOut(vec![]));
    assert_eq!(m.ready_count(), 0);
}

#[test]
fn length_limits_drop_the_head_or_refuse_the_publish() {
    let mut m = Machine::default();
    let mut effects = Vec::new();
    let two = Limits {
        max_length: Some(2),
        ..Limits::default()
    };
    for text in ["m0", "m1", "m2"] {
        assert_eq!(m.apply(limited(two, text), &at(0), &mut effects), Reply::Enqueued);
    }
    assert_eq!(m.ready_count(), 2);
    assert_eq!(body(m.head().expect("a head")), "m1");
    assert!(matches!(
        &effects[..],
        [Effect::DeadLetter { reason: Death::MaxLen, node, .. }] if *node == life("a", 1)
    ));
    let refuse = Limits {
        reject_publish: true,
        ..two
    };
    assert_eq!(m.apply(limited(refuse, "m3"), &at(0), &mut effects), Reply::Rejected);
    assert_eq!(m.ready_count(), 2);
    let bytes = Limits {
        max_length_bytes: Some(5),
        reject_publish: true,
        ..Limits::default()
    };
    let mut small = Machine::default();
    assert_eq!(
        small.apply(limited(bytes, "abc"), &at(0), &mut effects),
        Reply::Enqueued
    );
    assert_eq!(
        small.apply(limited(bytes, "abc"), &at(0), &mut effects),
        Reply::Rejected
    );
    assert_eq!(small.apply(limited(bytes, "ab"), &at(0), &mut effects), Reply::Enqueued);
}

#[test]
fn only_the_first_attached_consumer_takes_messages() {
    let mut m = Machine::default();
    let mut effects = Vec::new();
    m.run(
        enqueue((0..4).map(|i| message(&format!("m{i}"))).collect()),
        &mut effects,
    );
    let key = |node: &str, id: &str| ConsumerKey {
        node: life(node, 1),
        id: id.into(),
    };
    let checkout = |node: &str| Command::Checkout {
        node: life(node, 1),
        max: 1,
    };
    m.run(Command::Attach(key("a", "c1")), &mut effects);
    m.run(Command::Attach(key("b", "c2")), &mut effects);
    m.run(Command::Attach(key("b", "c2")), &mut effects);
    assert_eq!(m.run(checkout("b"), &mut effects), Reply::CheckedOut(vec![]));
    assert_eq!(m.run(checkout("a"), &mut effects), Reply::CheckedOut(vec![0]));
    // The active one goes: the next in line (on b) takes over.
    m.run(Command::Detach(key("a", "c1")), &mut effects);
    assert_eq!(m.active_consumer(), Some(&key("b", "c2")));
    assert_eq!(m.run(checkout("a"), &mut effects), Reply::CheckedOut(vec![]));
    assert_eq!(m.run(checkout("b"), &mut effects), Reply::CheckedOut(vec![1]));
    // b's node dies: its consumers leave the line with what it held.
    m.run(
        Command::Reset {
            node: "b".into(),
            keep: 0,
        },
        &mut effects,
    );
    assert_eq!(m.active_consumer(), None);
    assert_eq!(m.run(checkout("a"), &mut effects), Reply::CheckedOut(vec![1]));
    let copy = Machine::from_image(&m.image()).expect("an image");
    assert_eq!(copy.image(), m.image());
}

#[test]
fn a_settlement_proposed_again_is_applied_once() {
    let (mut m, mut effects) = filled(2);
    m.run(checkout(life("a", 1), 1), &mut effects);
    let once = |id| Command::Once {
        by: life("a", 1),
        id,
        command: Box::new(settle(life("a", 1), vec![0], Outcome::Return, Some(5))),
    };
    assert_eq!(m.run(once(1), &mut effects), Reply::Settled(1));
    // The same node checked the message out again before the proposal,
    // which had failed as far as it knew, went again: it stays held.
    m.run(checkout(life("a", 1), 1), &mut effects);
    assert_eq!(m.run(once(1), &mut effects), Reply::Done);
    assert_eq!(m.held_count(), 1);
    assert_eq!(m.ready_count(), 1);
    // A later id is applied; the ids of another life count apart.
    assert_eq!(m.run(once(2), &mut effects), Reply::Settled(1));
    let image = Machine::from_image(&m.image()).expect("an image");
    assert_eq!(image.image(), m.image());
}

#[test]
fn a_queue_is_unused_once_no_node_has_a_consumer_for_long_enough() {
    let mut m = Machine::default();
    let mut effects = Vec::new();
    let key = ConsumerKey {
        node: life("a", 1),
        id: "c1".into(),
    };
    m.apply(Command::Expire, &at(10_000), &mut effects);
    assert!(!m.unused_for(1_000, 10_500));
    assert!(m.unused_for(1_000, 11_000), "unused since it was made");
    m.apply(
        Command::Consumer {
            key: key.clone(),
            up: true,
        },
        &at(10_600),
        &mut effects,
    );
    assert!(!m.unused_for(1_000, 60_000), "a consumer uses it");
    m.apply(Command::Consumer { key, up: false }, &at(12_000), &mut effects);
    assert!(!m.unused_for(1_000, 12_500));
    m.apply(Command::Touch, &at(12_800), &mut effects);
    assert!(!m.unused_for(1_000, 13_500), "a basic.get uses it");
    assert!(m.unused_for(1_000, 13_800));
    // A node that died takes its consumers along.
    let other = ConsumerKey {
        node: life("b", 1),
        id: "c2".into(),
    };
    m.apply(Command::Consumer { key: other, up: true }, &at(14_000), &mut effects);
    m.apply(
        Command::Reset {
            node: "b".into(),
            keep: 0,
        },
        &at(20_000),
        &mut effects,
    );
    assert!(m.unused_for(1_000, 21_000));
}

/// Pages out to `store` what the machine noted past its window.
fn page_to(m: &mut Machine, store: &Arc<dyn warren_store::Store>) -> usize {
    let mut paged = 0;
    m.page_out(|stored| {
        paged += 1;
        let body = crate::message::StoredBody::write(store, stored.memory_bytes()?).expect("stored");
        Some(stored.paged_to(body))
    });
    paged
}

#[test]
fn past_the_window_messages_are_paged_out_and_come_back_unchanged() {
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn warren_store::Store> = Arc::new(warren_store::SledStore::open(dir.path()).expect("store"));
    let window = paging::WINDOW_MESSAGES as usize;
    let (mut m, _) = filled(window + 10);
    assert_eq!(page_to(&mut m, &store), 10, "what is past the window is paged");
    assert_eq!(m.paged_ready(), (10, 10 * 5));
    assert_eq!(page_to(&mut m, &store), 0, "once");

    // The head stays in memory; the paged tail is read back ahead of need
    // once it is near the head.
    assert!(m.paged_ahead(window, 100).is_empty());
    let ahead = m.paged_ahead(window + 10, 100);
    assert_eq!(
        ahead.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (window as u64..window as u64 + 10).collect::<Vec<_>>()
    );

    // A paged message checked out is delivered as it was published.
    let mut effects = Vec::new();
    m.run(Command::Purge, &mut effects);
    assert_eq!(m.paged_ready(), (0, 0), "a purge takes the paged ones too");
    m.run(
        enqueue((0..window + 2).map(|i| message(&format!("n{i:04}"))).collect()),
        &mut effects,
    );
    assert_eq!(page_to(&mut m, &store), 2);
    m.run(checkout(life("a", 1), u32::MAX), &mut effects);
    let out = delivered(effects.last().expect("delivered"));
    assert_eq!(out.len(), window + 2);
    assert_eq!(m.paged_ready(), (0, 0), "checked out, no longer ready");
    let (seq, last) = out.last().expect("last");
    assert!(last.message.is_paged());
    let body = last.message.decode().expect("read back").body.clone();
    assert_eq!(&body[..], format!("n{:04}", window + 1).as_bytes());

    // Returned, it is ready again, paged; read back, in memory again.
    let (seq, paged) = (*seq, last.message.paged().expect("paged").clone());
    m.run(settle(life("a", 1), vec![seq], Outcome::Return, None), &mut effects);
    assert_eq!(m.paged_ready(), (1, 5));
    let bytes = paged.read().expect("read");
    m.loaded(seq, &paged, bytes);
    assert_eq!(m.paged_ready(), (0, 0));
    assert!(!m.messages[&seq].message.is_paged());

    // An image holds the paged messages' bytes, read back from the store;
    // the machine rebuilt from it pages them out again.
    let (mut m, _) = filled(window + 5);
    assert_eq!(page_to(&mut m, &store), 5);
    let mut again = Machine::from_image(&m.image()).expect("an image");
    assert_eq!(again.ready_count(), (window + 5) as u64);
    assert_eq!(again.paged_ready(), (0, 0), "rebuilt in memory");
    again.page_past_window();
    assert_eq!(page_to(&mut again, &store), 5);
    let mut effects = Vec::new();
    again.run(checkout(life("a", 1), u32::MAX), &mut effects);
    let out = delivered(effects.last().expect("delivered"));
    let text = |held: &Held| held.message.decode().map(|m| m.body.clone());
    assert_eq!(
        text(&out[window + 4].1).as_deref(),
        Some(format!("m{}", window + 4).as_bytes())
    );
}
