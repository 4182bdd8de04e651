//! The replicated definitions as a whole, for Raft snapshots: written out
//! as the changes that rebuild them, and installed over what a node holds
//! (what the snapshot lacks is deleted, so a node that missed deletions
//! while it was away ends up with exactly the snapshot's state).

use std::collections::HashSet;

use super::{Admin, AdminResult};
use crate::access::LimitScope;
use crate::exchange::Destination;
use crate::policy::PolicyKind;
use crate::replication::MetadataChange;
use crate::vhost::definitions::encode_table;
use crate::vhost::VHost;

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
    /// A queue, with its home for a classic queue (None: a quorum
    /// queue): one redeclared elsewhere is another queue.
    Queue(String, String, Option<String>),
    Exchange(String, String),
    Binding(String, String, bool, String, String, Vec<u8>),
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
            Key::Queue(vhost.clone(), name.clone(), None),
            Some(C::DeleteQueue {
                vhost: vhost.clone(),
                name: name.clone(),
            }),
        ),
        C::DeclareHomedQueue { vhost, name, home, .. } => (
            Key::Queue(vhost.clone(), name.clone(), Some(home.clone())),
            Some(C::DeleteQueue {
                vhost: vhost.clone(),
                name: name.clone(),
            }),
        ),
        C::DeclareExchange { vhost, name, .. } => (
            Key::Exchange(vhost.clone(), name.clone()),
            Some(C::DeleteExchange {
                vhost: vhost.clone(),
                name: name.clone(),
            }),
        ),
        C::Binding {
            bound: true,
            vhost,
            source,
            to_queue,
            destination,
            routing_key,
            arguments,
        } => (
            Key::Binding(
                vhost.clone(),
                source.clone(),
                *to_queue,
                destination.clone(),
                routing_key.clone(),
                arguments.clone(),
            ),
            Some(C::Binding {
                bound: false,
                vhost: vhost.clone(),
                source: source.clone(),
                to_queue: *to_queue,
                destination: destination.clone(),
                routing_key: routing_key.clone(),
                arguments: arguments.clone(),
            }),
        ),
        _ => return None,
    })
}

/// A vhost's replicated topology: its exchanges (but the built-in ones),
/// its quorum queues, then the bindings between them.
fn topology(vhost: &VHost, changes: &mut Vec<MetadataChange>) {
    let name = vhost.name.to_string();
    let builtin = |x: &str| x.is_empty() || x.starts_with("amq.");
    let exchanges = vhost.exchanges();
    for exchange in exchanges.iter().filter(|x| !builtin(&x.name)) {
        let settings = &exchange.settings;
        changes.push(MetadataChange::DeclareExchange {
            vhost: name.clone(),
            name: exchange.name.to_string(),
            kind: settings.kind.as_str().to_string(),
            durable: settings.durable,
            auto_delete: settings.auto_delete,
            internal: settings.internal,
            arguments: encode_table(&settings.arguments),
        });
    }
    for queue in vhost.queues().iter() {
        if queue.is_quorum() {
            changes.push(MetadataChange::DeclareQueue {
                vhost: name.clone(),
                name: queue.name.to_string(),
                arguments: encode_table(&queue.settings.arguments),
            });
        } else if let Some(home) = &queue.home {
            changes.push(MetadataChange::DeclareHomedQueue {
                vhost: name.clone(),
                name: queue.name.to_string(),
                home: home.node().to_string(),
                durable: queue.settings.durable,
                auto_delete: queue.settings.auto_delete,
                arguments: encode_table(&queue.settings.arguments),
            });
        }
    }
    for exchange in exchanges.iter().filter(|x| !x.name.is_empty()) {
        for binding in exchange.bindings() {
            let (to_queue, destination) = match &binding.destination {
                Destination::Queue(queue) if queue.declared_everywhere() => (true, queue.name.to_string()),
                Destination::Queue(_) => continue,
                Destination::Exchange(name) => (false, name.to_string()),
            };
            changes.push(MetadataChange::Binding {
                bound: true,
                vhost: name.clone(),
                source: exchange.name.to_string(),
                to_queue,
                destination,
                routing_key: binding.routing_key.to_string(),
                arguments: encode_table(&binding.arguments),
            });
        }
    }
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
                topology(&vhost, &mut queues);
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
        // Topology after the vhosts and policies it needs.
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
