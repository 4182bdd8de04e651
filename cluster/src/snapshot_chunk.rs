//! A snapshot chunk as it crosses the cluster port: openraft's
//! `InstallSnapshotRequest` with its data as one byte string. openraft's
//! own serde form writes the data byte by byte, which bincode then
//! encodes and decodes one element at a time: a large queue's snapshot
//! crossed at a few MB/s in the tests' debug builds.

use openraft::raft::InstallSnapshotRequest;
use openraft::{RaftTypeConfig, SnapshotMeta, Vote};
use serde::{Deserialize, Serialize};

use crate::roster::{Member, NodeId};

#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotChunk {
    vote: Vote<NodeId>,
    meta: SnapshotMeta<NodeId, Member>,
    offset: u64,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
    done: bool,
}

impl SnapshotChunk {
    pub(crate) fn of<C: RaftTypeConfig<NodeId = NodeId, Node = Member>>(request: InstallSnapshotRequest<C>) -> Self {
        SnapshotChunk {
            vote: request.vote,
            meta: request.meta,
            offset: request.offset,
            data: request.data,
            done: request.done,
        }
    }

    pub(crate) fn request<C: RaftTypeConfig<NodeId = NodeId, Node = Member>>(self) -> InstallSnapshotRequest<C> {
        InstallSnapshotRequest {
            vote: self.vote,
            meta: self.meta,
            offset: self.offset,
            data: self.data,
            done: self.done,
        }
    }
}
