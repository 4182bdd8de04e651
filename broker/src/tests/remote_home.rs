//! A classic queue's home answering other nodes' calls (`queue::remote::
//! home`), on a real vhost's queues with no sockets: a take whose answer
//! never reached its node is released and holds nothing more; other
//! nodes' consumers stand in the queue's list, so exclusive use, single
//! active consumer and auto-delete see them. And from the other side, a
//! remote queue on a fake link: a take whose answer was lost while its
//! home seemed down is released once the home answers again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use warren_protocol::{BasicProperties, ContentHeader, FieldValue, ShortStr};

use crate::durability::Durability;
use crate::message::Message;
use crate::queue::remote::calls::{self, Answer, Call, ConsumerSet, ConsumerStatus, Holder, QueueRef, RemoteConsumer};
use crate::queue::remote::home::{answer, Holds, Home};
use crate::queue::{Home as QueueHome, Queue, QueueSettings};
use crate::replication::{
    ClusterLink, MemberView, MetadataChange, Proposal, ReplicatedGroup, ReplicatedMachine, ReplicationError, Replied,
};
use crate::vhost::VHost;

fn vhost() -> Arc<VHost> {
    VHost::standalone("/")
}

/// A non-durable, non-exclusive queue's settings.
fn settings(auto_delete: bool, arguments: &[(&str, FieldValue)]) -> QueueSettings {
    QueueSettings {
        durable: false,
        exclusive_owner: None,
        auto_delete,
        arguments: arguments.iter().map(|(k, v)| (ShortStr::from(*k), v.clone())).collect(),
    }
}

fn declare(vhost: &Arc<VHost>, name: &str, auto_delete: bool, arguments: &[(&str, FieldValue)]) -> Arc<Queue> {
    vhost
        .declare_queue(&ShortStr::from(name), settings(auto_delete, arguments))
        .expect("declare")
}

fn publish(queue: &Arc<Queue>, body: String) {
    let header = ContentHeader::new(60, body.len() as u64, BasicProperties::default());
    queue.publish(Message::new("".into(), queue.name.clone(), header, Bytes::from(body)));
}

fn target(name: &str) -> QueueRef {
    QueueRef {
        vhost: "/".into(),
        name: name.into(),
    }
}

fn node(name: &str, boot: u64) -> Holder {
    Holder {
        node: name.into(),
        boot,
    }
}

/// A basic.get's take (for no consumer).
fn take(queue: &str, holder: &Holder, batch: u64, max: u32) -> Call {
    Call::Take {
        queue: target(queue),
        holder: holder.clone(),
        batch,
        for_consumers: false,
        max,
        wait_ms: 0,
        consumers: ConsumerSet::default(),
    }
}

/// A take for the holder's consumers, carrying their set.
fn take_for(queue: &str, holder: &Holder, version: u64, list: &[(u64, bool)]) -> Call {
    Call::Take {
        queue: target(queue),
        holder: holder.clone(),
        batch: version,
        for_consumers: true,
        max: 10,
        wait_ms: 0,
        consumers: set(version, list),
    }
}

fn set(version: u64, list: &[(u64, bool)]) -> ConsumerSet {
    ConsumerSet {
        version,
        consumers: list
            .iter()
            .map(|&(key, exclusive)| RemoteConsumer {
                key,
                tag: format!("c{key}"),
                exclusive,
                priority: 0,
            })
            .collect(),
    }
}

fn consumers(queue: &str, holder: &Holder, version: u64, list: &[(u64, bool)]) -> Call {
    Call::Consumers {
        queue: target(queue),
        holder: holder.clone(),
        consumers: set(version, list),
    }
}

/// Answers calls as a home with the vhost's queues; records what it
/// deletes everywhere.
struct TestHome {
    vhost: Arc<VHost>,
    holds: Holds,
    durability: Arc<Durability>,
    deleted: Mutex<Vec<String>>,
    _dir: tempfile::TempDir,
}

impl TestHome {
    fn new(vhost: Arc<VHost>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = warren_store::SledStore::open(dir.path()).expect("store");
        TestHome {
            vhost,
            holds: Holds::default(),
            durability: Durability::start(Arc::new(store)),
            deleted: Mutex::new(Vec::new()),
            _dir: dir,
        }
    }

    async fn ask(&self, call: Call) -> Answer {
        let delete = |queue: &Arc<Queue>| self.deleted.lock().push(queue.name.to_string());
        let home = Home {
            find: |queue: &QueueRef| self.vhost.queue(&queue.name),
            holds: &self.holds,
            durability: &self.durability,
            delete_everywhere: &delete,
        };
        answer(&home, call).await
    }

    async fn taken(&self, call: Call) -> Vec<String> {
        match self.ask(call).await {
            Answer::Taken { messages, .. } => messages
                .into_iter()
                .map(|m| {
                    assert!(!m.redelivered, "a message given back in place is not a redelivery");
                    let message = Message::decode(m.message.into_vec()).expect("a message");
                    String::from_utf8(message.body.to_vec()).expect("utf-8")
                })
                .collect(),
            other => panic!("not taken: {other:?}"),
        }
    }

    async fn status(&self, call: Call) -> ConsumerStatus {
        match self.ask(call).await {
            Answer::Consumers(status) | Answer::Taken { consumers: status, .. } => status,
            other => panic!("no consumer status: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_take_whose_answer_was_lost_is_released_and_holds_nothing_more() {
    let vhost = vhost();
    let queue = declare(&vhost, "work", false, &[]);
    for i in 0..3 {
        publish(&queue, format!("m{i}"));
    }
    let home = TestHome::new(vhost);
    let n2 = node("n2", 1);
    assert_eq!(home.taken(take("work", &n2, 1, 2)).await, ["m0", "m1"]);
    assert_eq!(queue.message_count(), 1);
    // n2 never got that answer: it releases the take.
    assert!(matches!(
        home.ask(Call::Release {
            queue: target("work"),
            holder: n2.clone(),
            batch: 1
        })
        .await,
        Answer::Done
    ));
    assert_eq!(queue.message_count(), 3);
    // The released take, still running at home, holds nothing more.
    assert!(home.taken(take("work", &n2, 1, 5)).await.is_empty());
    assert_eq!(queue.message_count(), 3);
    // The next take gets them all, in order, not redelivered.
    assert_eq!(home.taken(take("work", &n2, 2, 5)).await, ["m0", "m1", "m2"]);
}

#[tokio::test]
async fn other_nodes_consumers_stand_in_at_home() {
    let vhost = vhost();
    let queue = declare(&vhost, "shared", true, &[]);
    let home = TestHome::new(vhost.clone());
    let (n2, n3) = (node("n2", 1), node("n3", 1));

    // An exclusive consumer on n2 holds the queue: n3's is refused.
    let status = home.status(consumers("shared", &n2, 1, &[(1, true)])).await;
    assert_eq!((status.active, status.refused), (vec![1], vec![]));
    assert_eq!(queue.consumer_count(), 1);
    let status = home.status(consumers("shared", &n3, 1, &[(7, false)])).await;
    assert_eq!(status.refused, [7]);
    // An older set that arrives late changes nothing.
    home.status(consumers("shared", &n2, 0, &[])).await;
    assert_eq!(queue.consumer_count(), 1);

    // n2 comes back as a new life: its earlier life's consumer goes, and
    // with it the auto-delete queue's last consumer.
    let n2 = node("n2", 2);
    home.status(take("shared", &n2, 1, 0)).await;
    assert_eq!(queue.consumer_count(), 0);
    assert_eq!(*home.deleted.lock(), ["shared"]);
    // A call of the earlier life that comes late is not answered.
    assert!(matches!(
        home.ask(consumers("shared", &node("n2", 1), 3, &[(1, true)])).await,
        Answer::NotFound
    ));

    // Single active consumer: the first in the queue's list, on any node;
    // a take for the others' consumers takes nothing.
    let sac = declare(
        &vhost,
        "sac",
        false,
        &[("x-single-active-consumer", FieldValue::Bool(true))],
    );
    publish(&sac, "m0".into());
    let first = home.status(consumers("sac", &n2, 1, &[(1, false)])).await;
    let second = home.status(consumers("sac", &n3, 1, &[(7, false)])).await;
    assert_eq!((first.active, second.active), (vec![1], vec![]));
    assert!(home.taken(take_for("sac", &n3, 1, &[(7, false)])).await.is_empty());
    // n2's consumer goes: n3's is active, and hears it with its next take.
    home.status(consumers("sac", &n2, 2, &[])).await;
    assert_eq!(home.status(consumers("sac", &n3, 1, &[(7, false)])).await.active, [7]);
    assert_eq!(home.taken(take_for("sac", &n3, 1, &[(7, false)])).await, ["m0"]);
    assert_eq!(sac.consumer_count(), 1);
    assert!(
        home.deleted.lock().len() == 1,
        "a queue that does not auto-delete stays"
    );
}

/// The cluster as node n2 sees it, its one other member n1 the `TestHome`:
/// calls reach the home and are answered there; while `cut`, their
/// answers are lost and n1 seems down (the home still sees n2: a cut in
/// one direction).
struct CutLink {
    home: Arc<TestHome>,
    cut: AtomicBool,
}

impl std::fmt::Debug for CutLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CutLink").finish_non_exhaustive()
    }
}

impl ClusterLink for CutLink {
    fn propose(&self, _change: MetadataChange) -> Proposal {
        Box::pin(async { Err(ReplicationError::Unavailable("no metadata log here".into())) })
    }

    fn members(&self) -> Vec<MemberView> {
        Vec::new()
    }

    fn this_node(&self) -> (String, u64) {
        ("n2".into(), 1)
    }

    fn call(&self, _node: &str, request: Vec<u8>) -> Replied {
        let (home, cut) = (self.home.clone(), self.cut.load(Ordering::SeqCst));
        Box::pin(async move {
            let call = calls::decode::<Call>(&request).expect("a call");
            let answer = home.ask(call).await;
            if cut {
                Err(ReplicationError::Unavailable("cut".into()))
            } else {
                Ok(calls::encode(&answer))
            }
        })
    }

    fn is_running(&self, _node: &str) -> bool {
        !self.cut.load(Ordering::SeqCst)
    }

    fn join_group(
        &self,
        _group: &str,
        _size: Option<std::num::NonZeroUsize>,
        _machine: Arc<dyn ReplicatedMachine>,
    ) -> Arc<dyn ReplicatedGroup> {
        panic!("no quorum queue in this test")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_lost_while_the_home_seemed_down_is_released_once_it_answers() {
    let home_vhost = vhost();
    let queue = declare(&home_vhost, "work", false, &[]);
    publish(&queue, "m0".into());
    let link = Arc::new(CutLink {
        home: Arc::new(TestHome::new(home_vhost)),
        cut: AtomicBool::new(true),
    });
    let n2 = VHost::without_store("/", Some(link.clone()));
    let remote = n2
        .declare_queue_at(
            &"work".into(),
            settings(false, &[]),
            Some(QueueHome::Elsewhere("n1".into())),
        )
        .expect("n2 knows the queue");

    // The cut: n2's basic.get takes m0 at home, and the answer is lost.
    assert!(remote.get(false).is_none());
    assert_eq!(queue.message_count(), 0, "m0 is held for n2");
    // Healed: the home answers n2's next take, and n2 releases the lost one.
    link.cut.store(false, Ordering::SeqCst);
    let _ = remote.get(false);
    let started = std::time::Instant::now();
    while queue.message_count() == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "m0 is still held for n2's lost take"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (entry, _) = remote.get(false).expect("m0, given back");
    assert_eq!(entry.message.body.as_ref(), b"m0");
}
