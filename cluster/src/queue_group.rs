//! A replicated queue's Raft group: every member runs one per quorum queue,
//! its log in Warren's store under `cluster/queues/<group>/`, its state
//! machine the broker's (`ReplicatedMachine`), opaque here. A snapshot is
//! the machine's image, taken in step with the entries it covers and kept
//! in the group's directory, so that after a restart the machine is rebuilt
//! from the snapshot and the log entries after it. The image lives on disk
//! only (`warren_store::save_snapshot`): written from the machine's view
//! straight into its file on a blocking thread, read back only when a
//! member needs it sent, never whole in memory beside the machine.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use warren_broker::{LeaderStamp, MachineImage, ReplicatedMachine};

use crate::roster::{Member, NodeId};
use crate::writes::Stamped;

/// An entry of a queue's log: the broker's command batch, and the stamp of
/// the leader that appended it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GroupEntry {
    pub stamp: LeaderStamp,
    #[serde(with = "serde_bytes")]
    pub commands: Vec<u8>,
}

impl Stamped for GroupEntry {
    fn stamp(&mut self, by: LeaderStamp) {
        self.stamp = by;
    }
}

/// The machine's answer to an entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct GroupReply(#[serde(with = "serde_bytes")] pub Vec<u8>);

openraft::declare_raft_types!(
    /// A queue group's types.
    pub(crate) QueueTypes:
        D = GroupEntry,
        R = GroupReply,
        NodeId = NodeId,
        Node = Member,
);

pub(crate) type QueueRaft = openraft::Raft<QueueTypes>;
type Entry = openraft::Entry<QueueTypes>;
type Membership = StoredMembership<NodeId, Member>;
type Meta = SnapshotMeta<NodeId, Member>;

/// An image received from the leader, to be kept as it came.
struct Received(Vec<u8>);

impl MachineImage for Received {
    fn write(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(&self.0)
    }
}

/// The snapshot kept in `dir` (blocking): its description and its image.
fn read_kept(dir: &Path) -> Result<Option<(Meta, Vec<u8>)>, StorageError<NodeId>> {
    if let Some((description, image)) = warren_store::read_snapshot(dir).map_err(error)? {
        return Ok(Some((bincode::deserialize(&description).map_err(error)?, image)));
    }
    match warren_store::read_state_file(dir, EARLIER_SNAPSHOT).map_err(error)? {
        Some(bytes) => decode_earlier(bytes).map(Some),
        None => Ok(None),
    }
}

/// A snapshot as earlier builds kept it, in one state file: the
/// description (bincode), the image's length (8 bytes) and the image. The
/// image is the same buffer, its head cut off.
fn decode_earlier(mut bytes: Vec<u8>) -> Result<(Meta, Vec<u8>), StorageError<NodeId>> {
    let mut reader = bytes.as_slice();
    let meta: Meta = bincode::deserialize_from(&mut reader).map_err(error)?;
    let len: u64 = bincode::deserialize_from(&mut reader).map_err(error)?;
    let head = bytes.len() - reader.len();
    if reader.len() as u64 != len {
        return Err(error(format!(
            "snapshot image of {} bytes, {len} expected",
            reader.len()
        )));
    }
    bytes.drain(..head);
    Ok((meta, bytes))
}

/// The state file earlier builds kept a snapshot in, whole.
const EARLIER_SNAPSHOT: &str = "snapshot";

fn error(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&std::io::Error::other(e.to_string())).into()
}

/// The group's state machine: the broker's machine, where it stands in the
/// log, and the last snapshot.
#[derive(Clone)]
pub(crate) struct QueueMachine {
    machine: Arc<dyn ReplicatedMachine>,
    applied: Option<LogId<NodeId>>,
    membership: Membership,
    dir: PathBuf,
    /// The size of the last snapshot's image, once one is kept.
    kept_image: Arc<Mutex<Option<u64>>>,
}

impl QueueMachine {
    /// Opens the machine in `dir` (blocking): rebuilt from the snapshot
    /// there, if there is one.
    pub(crate) fn open(dir: &Path, machine: Arc<dyn ReplicatedMachine>) -> Result<Self, StorageError<NodeId>> {
        let mut opened = QueueMachine {
            machine,
            applied: None,
            membership: Membership::default(),
            dir: dir.to_path_buf(),
            kept_image: Arc::default(),
        };
        if let Some((meta, image)) = read_kept(dir)? {
            opened.machine.restore(&image);
            opened.applied = meta.last_log_id;
            opened.membership = meta.last_membership.clone();
            *opened.kept_image.lock() = Some(image.len() as u64);
        }
        Ok(opened)
    }

    /// Writes a snapshot, its image from `image`, on a blocking thread.
    async fn keep(&self, meta: &Meta, image: Box<dyn MachineImage>) -> Result<(), StorageError<NodeId>> {
        let description = bincode::serialize(meta).map_err(error)?;
        let dir = self.dir.clone();
        let len = tokio::task::spawn_blocking(move || {
            let len = warren_store::save_snapshot(&dir, &description, |out| image.write(out))?;
            match std::fs::remove_file(dir.join(format!("{EARLIER_SNAPSHOT}.state"))) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(warren_store::StoreError::from(e)),
                _ => Ok(len),
            }
        })
        .await
        .map_err(error)?
        .map_err(error)?;
        *self.kept_image.lock() = Some(len);
        Ok(())
    }

    /// Bytes of the last snapshot's image.
    pub(crate) fn image_bytes(&self) -> u64 {
        self.kept_image.lock().unwrap_or(0)
    }

    fn meta(&self) -> Meta {
        Meta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: self
                .applied
                .map_or_else(|| "empty".into(), |id| format!("{}-{}", id.leader_id, id.index)),
        }
    }
}

/// A snapshot taken in step with the log, waiting to be written.
pub(crate) struct Taken {
    owner: QueueMachine,
    meta: Meta,
    image: Option<Box<dyn MachineImage>>,
}

impl RaftSnapshotBuilder<QueueTypes> for Taken {
    /// Writes the snapshot to disk. The snapshot returned carries its
    /// description and no image bytes: openraft (0.9) keeps only the
    /// description of a snapshot it asked to be built, and reads one to
    /// send through `get_current_snapshot`, which reads the file.
    async fn build_snapshot(&mut self) -> Result<Snapshot<QueueTypes>, StorageError<NodeId>> {
        let image = self.image.take().ok_or_else(|| error("a snapshot is built once"))?;
        self.owner.keep(&self.meta, image).await?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}

impl RaftStateMachine<QueueTypes> for QueueMachine {
    type SnapshotBuilder = Taken;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<GroupReply>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        for entry in entries {
            self.applied = Some(entry.log_id);
            replies.push(match entry.payload {
                EntryPayload::Blank => GroupReply::default(),
                EntryPayload::Normal(data) => GroupReply(self.machine.apply(&data.stamp, &data.commands)),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    GroupReply::default()
                }
            });
        }
        Ok(replies)
    }

    /// Called between applies: the image matches `applied` exactly.
    async fn get_snapshot_builder(&mut self) -> Taken {
        Taken {
            owner: self.clone(),
            meta: self.meta(),
            image: Some(self.machine.image()),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let image = snapshot.into_inner();
        self.machine.restore(&image);
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.keep(meta, Box::new(Received(image))).await
    }

    /// Read back from its file: asked for at start (for its description)
    /// and to send it to a member that fell behind the log.
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<QueueTypes>>, StorageError<NodeId>> {
        if self.kept_image.lock().is_none() {
            return Ok(None);
        }
        let dir = self.dir.clone();
        let kept = tokio::task::spawn_blocking(move || read_kept(&dir))
            .await
            .map_err(error)??;
        let Some((meta, image)) = kept else { return Ok(None) };
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(image)),
        }))
    }
}
