//! The metadata group: one Raft group of every member whose log carries the
//! broker's definition changes (`MetadataChange`), and its state machine,
//! which is the broker's own definitions: applying an entry applies the
//! change through `Admin::apply_committed`, which records how far the log
//! was applied in the broker's store after the change, so the two survive a
//! crash together. A snapshot is the replicated definitions written as the
//! changes that rebuild them.

use std::io::Cursor;
use std::sync::Arc;

use parking_lot::Mutex;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use warren_broker::{Admin, MetadataChange};

use crate::roster::{Member, NodeId};

openraft::declare_raft_types!(
    /// The metadata group's types.
    pub(crate) MetadataTypes:
        D = MetadataChange,
        R = (),
        NodeId = NodeId,
        Node = Member,
);

pub(crate) type MetadataRaft = openraft::Raft<MetadataTypes>;
type Entry = openraft::Entry<MetadataTypes>;
type Membership = StoredMembership<NodeId, Member>;

/// Where the state machine stands in the log, kept in the broker's store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    log_id: Option<LogId<NodeId>>,
    membership: Membership,
}

/// A snapshot's contents.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotData {
    applied: Applied,
    changes: Vec<MetadataChange>,
}

/// A snapshot's description and its bytes.
type StoredSnapshot = (SnapshotMeta<NodeId, Member>, Vec<u8>);

/// The state machine: the broker's definitions, changed through `Admin`.
#[derive(Clone)]
pub(crate) struct MetadataMachine {
    admin: Admin,
    applied: Applied,
    /// The last snapshot built or installed (shared with the builders).
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
}

fn read_error(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(&std::io::Error::other(e.to_string())).into()
}

fn write_error(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&std::io::Error::other(e.to_string())).into()
}

impl MetadataMachine {
    /// The state machine as the broker's store left it.
    pub(crate) fn load(admin: Admin) -> Result<Self, StorageError<NodeId>> {
        let applied = match admin.applied_mark().map_err(read_error)? {
            Some(bytes) => bincode::deserialize(&bytes).map_err(read_error)?,
            None => Applied::default(),
        };
        Ok(MetadataMachine {
            admin,
            applied,
            snapshot: Arc::default(),
        })
    }

    /// Applies changes (or, for a snapshot, replaces the definitions with
    /// them) and records the new position, on a blocking thread (the
    /// broker's store may touch the disk).
    async fn commit(&mut self, changes: Vec<MetadataChange>, snapshot: bool) -> Result<(), StorageError<NodeId>> {
        let mark = bincode::serialize(&self.applied).map_err(write_error)?;
        let admin = self.admin.clone();
        tokio::task::spawn_blocking(move || {
            if snapshot {
                admin.install_replicated_state(&changes, &mark)
            } else {
                admin.apply_committed(&changes, &mark)
            }
        })
        .await
        .map_err(write_error)?
        .map_err(write_error)
    }

    fn build(&mut self) -> Result<Snapshot<MetadataTypes>, StorageError<NodeId>> {
        let data = SnapshotData {
            applied: self.applied.clone(),
            changes: self.admin.replicated_state(),
        };
        let bytes = bincode::serialize(&data).map_err(read_error)?;
        let snapshot_id = match &self.applied.log_id {
            Some(id) => format!("{}-{}", id.leader_id, id.index),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: self.applied.log_id,
            last_membership: self.applied.membership.clone(),
            snapshot_id,
        };
        *self.snapshot.lock() = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftSnapshotBuilder<MetadataTypes> for MetadataMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<MetadataTypes>, StorageError<NodeId>> {
        self.build()
    }
}

impl RaftStateMachine<MetadataTypes> for MetadataMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        Ok((self.applied.log_id, self.applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut changes = Vec::new();
        let mut replies = Vec::new();
        for entry in entries {
            self.applied.log_id = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(change) => changes.push(change),
                EntryPayload::Membership(membership) => {
                    self.applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                }
            }
            replies.push(());
        }
        if !replies.is_empty() {
            self.commit(changes, false).await?;
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let data: SnapshotData = bincode::deserialize(&bytes).map_err(read_error)?;
        self.applied = Applied {
            log_id: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        self.commit(data.changes, true).await?;
        *self.snapshot.lock() = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<MetadataTypes>>, StorageError<NodeId>> {
        let current = self.snapshot.lock().clone();
        match current {
            Some((meta, bytes)) => Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(bytes)),
            })),
            // After a restart the definitions themselves are the snapshot.
            None if self.applied.log_id.is_some() => self.build().map(Some),
            None => Ok(None),
        }
    }
}
