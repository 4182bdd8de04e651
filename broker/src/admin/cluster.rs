//! The cluster as administration sees it: its name, its members, and the
//! metadata log through which definitions change on every node at once
//! (see `replication.rs`). On a single node a change is applied as soon as
//! it is checked.

use std::sync::Arc;

use super::{Admin, AdminError, AdminResult};
use crate::replication::{MemberView, MetadataChange, MetadataLog};

/// Where `apply_committed` keeps its mark among the store's settings.
const APPLIED_KEY: &str = "cluster/metadata-applied";

impl Admin {
    /// Installs the cluster's metadata log: from now on changes go through
    /// it. Called once, by the cluster layer, before clients connect.
    pub fn install_metadata_log(&self, log: Arc<dyn MetadataLog>) {
        if self.broker.metadata_log.set(log).is_err() {
            tracing::warn!("a metadata log was installed twice; the first one stays");
        }
    }

    /// The cluster's members and their state; this node alone when it is
    /// not in a cluster.
    pub fn cluster_members(&self) -> Vec<MemberView> {
        match self.broker.metadata_log.get() {
            Some(log) => log.members(),
            None => vec![MemberView {
                name: self.node_name(),
                address: String::new(),
                running: true,
                leader: true,
                this_node: true,
            }],
        }
    }

    /// The cluster's name (the node's until one is set).
    pub fn cluster_name(&self) -> String {
        self.broker
            .cluster_name
            .read()
            .clone()
            .unwrap_or_else(|| self.node_name())
    }

    /// Names the cluster (kept across restarts, the same on every node).
    pub async fn set_cluster_name(&self, name: &str) -> AdminResult<()> {
        if name.is_empty() {
            return Err(AdminError::BadRequest("the cluster name must not be empty".into()));
        }
        self.change(MetadataChange::ClusterName(name.to_string())).await
    }

    /// Makes a checked change: through the metadata log in a cluster (once
    /// it returns, this node has applied it), at once otherwise.
    async fn change(&self, change: MetadataChange) -> AdminResult<()> {
        match self.broker.metadata_log.get() {
            Some(log) => log
                .propose(change)
                .await
                .map_err(|e| AdminError::Unavailable(e.to_string())),
            None => self.apply_change(&change),
        }
    }

    /// Applies changes the metadata log committed (every node applies every
    /// change, in the log's order), then records `applied` (the cluster
    /// layer's note of where in the log it stands) in the same store after
    /// them, so a crash never keeps the note without the changes. A change
    /// that fails is logged: the others still apply.
    pub fn apply_committed(&self, changes: &[MetadataChange], applied: &[u8]) -> AdminResult<()> {
        for change in changes {
            if let Err(e) = self.apply_change(change) {
                tracing::error!("applying the committed change {change:?} failed: {e}");
            }
        }
        self.broker
            .durability()
            .store()
            .save_setting(APPLIED_KEY, applied)
            .map_err(|e| AdminError::BadRequest(format!("the store refused the applied mark: {e}")))?;
        self.broker.durability().wrote();
        Ok(())
    }

    /// The cluster layer's note of where in the metadata log this node's
    /// definitions stand, as `apply_committed` last saved it.
    pub fn applied_mark(&self) -> AdminResult<Option<Vec<u8>>> {
        self.broker
            .durability()
            .store()
            .setting(APPLIED_KEY)
            .map_err(|e| AdminError::BadRequest(format!("the store could not read the applied mark: {e}")))
    }

    /// The replicated definitions as changes that rebuild them on a node
    /// that has none (a Raft snapshot).
    pub fn replicated_state(&self) -> Vec<MetadataChange> {
        let mut changes = Vec::new();
        if let Some(name) = self.broker.cluster_name.read().clone() {
            changes.push(MetadataChange::ClusterName(name));
        }
        changes
    }

    /// Applies one checked change to this node.
    fn apply_change(&self, change: &MetadataChange) -> AdminResult<()> {
        match change {
            MetadataChange::ClusterName(name) => {
                let store = self.broker.durability().store();
                store
                    .save_setting(crate::broker::CLUSTER_NAME_KEY, name.as_bytes())
                    .map_err(|e| AdminError::BadRequest(format!("the store refused the name: {e}")))?;
                self.broker.durability().wrote();
                *self.broker.cluster_name.write() = Some(name.clone());
                Ok(())
            }
        }
    }
}
