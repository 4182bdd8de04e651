//! The replicated definitions as a whole, for Raft snapshots: written out
//! as the changes that rebuild them, and installed over what a node holds
//! (what the snapshot lacks is deleted, so a node that missed deletions
//! while it was away ends up with exactly the snapshot's state).

use std::collections::HashSet;

use super::{Admin, AdminResult};
use crate::access::LimitScope;
use crate::policy::PolicyKind;
use crate::replication::MetadataChange;

/// What a change is about: two changes with the same key set the same thing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    ClusterName,
    Vhost(String),
    User(String),
    Permissions(String, String),
    TopicPermissions(String, String, String),
    Policy(bool, String, String),
    Limit(bool, String, String),
    Queue(String, String),
}

/// The change that takes away what `change` set, with its key.
fn key_and_removal(change: &MetadataChange) -> Option<(Key, Option<MetadataChange>)> {
    use MetadataChange as C;
    Some(match change {
        C::ClusterName(_) => (Key::ClusterName, None),
        C::PutVhost { name, .. } => (Key::Vhost(name.clone()), Some(C::DeleteVhost { name: name.clone() })),
        C::PutUser { name, .. } => (Key::User(name.clone()), Some(C::DeleteUser { name: name.clone() })),
        C::SetPermissions { vhost, user, .. } => (
            Key::Permissions(vhost.clone(), user.clone()),
            Some(C::ClearPermissions {
                vhost: vhost.clone(),
                user: user.clone(),
            }),
        ),
        C::SetTopicPermissions {
            vhost, user, exchange, ..
        } => (
            Key::TopicPermissions(vhost.clone(), user.clone(), exchange.clone()),
            Some(C::ClearTopicPermissions {
                vhost: vhost.clone(),
                user: user.clone(),
                exchange: Some(exchange.clone()),
            }),
        ),
        C::PutPolicy {
            operator, vhost, name, ..
        } => (
            Key::Policy(*operator, vhost.clone(), name.clone()),
            Some(C::DeletePolicy {
                operator: *operator,
                vhost: vhost.clone(),
                name: name.clone(),
            }),
        ),
        C::SetLimit {
            vhost,
            name,
            limit,
            value: Some(_),
        } => (
            Key::Limit(*vhost, name.clone(), limit.clone()),
            Some(C::SetLimit {
                vhost: *vhost,
                name: name.clone(),
                limit: limit.clone(),
                value: None,
            }),
        ),
        C::DeclareQueue { vhost, name, .. } => (
            Key::Queue(vhost.clone(), name.clone()),
            Some(C::DeleteQueue {
                vhost: vhost.clone(),
                name: name.clone(),
            }),
        ),
        _ => return None,
    })
}

impl Admin {
    /// The replicated definitions as changes that rebuild them on a node
    /// that has none (a Raft snapshot).
    pub fn replicated_state(&self) -> Vec<MetadataChange> {
        let access = &self.broker.access;
        let mut changes = Vec::new();
        if let Some(name) = self.broker.cluster_name.read().clone() {
            changes.push(MetadataChange::ClusterName(name));
        }
        let mut vhosts = self.broker.vhost_names();
        vhosts.sort();
        let mut queues = Vec::new();
        for name in vhosts {
            let meta = access.vhost_meta(&name).unwrap_or_default();
            if let Some(vhost) = self.broker.vhost(&name) {
                for queue in vhost.queues().iter().filter(|q| q.is_quorum()) {
                    queues.push(MetadataChange::DeclareQueue {
                        vhost: name.clone(),
                        name: queue.name.to_string(),
                        arguments: crate::vhost::definitions::encode_table(&queue.settings.arguments),
                    });
                }
            }
            changes.push(MetadataChange::PutVhost {
                name,
                description: meta.description,
                tags: meta.tags,
                default_queue_type: meta.default_queue_type,
                creator: None,
            });
        }
        for user in access.users() {
            changes.push(MetadataChange::PutUser {
                name: user.name.clone(),
                password_hash: user.password_hash.0.clone(),
                hashing_algorithm: user.hashing_algorithm.as_str().to_string(),
                tags: user.tags.iter().map(|t| t.as_str().to_string()).collect(),
            });
        }
        for (vhost, user, p) in access.all_permissions() {
            changes.push(MetadataChange::SetPermissions {
                vhost,
                user,
                configure: p.configure.as_str().to_string(),
                write: p.write.as_str().to_string(),
                read: p.read.as_str().to_string(),
            });
        }
        for (vhost, user, p) in access.all_topic_permissions() {
            changes.push(MetadataChange::SetTopicPermissions {
                vhost,
                user,
                exchange: p.exchange,
                write: p.write,
                read: p.read,
            });
        }
        for (operator, kind) in [(false, PolicyKind::User), (true, PolicyKind::Operator)] {
            for p in self.broker.policies.list(kind, None) {
                changes.push(MetadataChange::PutPolicy {
                    operator,
                    vhost: p.vhost.clone(),
                    name: p.name.clone(),
                    pattern: p.pattern.clone(),
                    apply_to: p.apply_to.as_str().to_string(),
                    priority: p.priority,
                    definition: serde_json::Value::Object(p.definition.clone()).to_string(),
                });
            }
        }
        for (vhost, scope) in [(true, LimitScope::Vhost), (false, LimitScope::User)] {
            for (name, limits) in access.all_limits(scope) {
                for (limit, value) in limits.0 {
                    changes.push(MetadataChange::SetLimit {
                        vhost,
                        name: name.clone(),
                        limit,
                        value: Some(value),
                    });
                }
            }
        }
        // Queues after the vhosts and policies they need.
        changes.extend(queues);
        changes
    }

    /// Makes this node's replicated definitions exactly `changes` (a
    /// snapshot from the leader), then records `applied` as
    /// `apply_committed` does.
    pub fn install_replicated_state(&self, changes: &[MetadataChange], applied: &[u8]) -> AdminResult<()> {
        let wanted: HashSet<Key> = changes
            .iter()
            .filter_map(|c| key_and_removal(c).map(|(k, _)| k))
            .collect();
        let removals: Vec<MetadataChange> = self
            .replicated_state()
            .iter()
            .filter_map(key_and_removal)
            .filter(|(key, _)| !wanted.contains(key))
            .filter_map(|(_, removal)| removal)
            .collect();
        for removal in &removals {
            if let Err(e) = self.apply_change(removal) {
                tracing::error!("removing what the cluster's snapshot lacks ({removal:?}) failed: {e}");
            }
        }
        self.apply_committed(changes, applied)
    }
}
