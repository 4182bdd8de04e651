//! The cluster as administration sees it: its name, its members, and the
//! metadata log through which definitions change on every node at once
//! (see `replication.rs`). On a single node a change is applied as soon as
//! it is checked.

use super::{Admin, AdminError, AdminResult};
use crate::access::VhostMeta;
use crate::replication::{MemberView, MetadataChange};

/// A replicated declaration's arguments, as the store encodes a table.
fn arguments_of(bytes: &[u8], what: &str) -> AdminResult<warren_protocol::FieldTable> {
    crate::vhost::definitions::decode_table(bytes, what).map_err(|e| AdminError::BadRequest(e.to_string()))
}

/// Where `apply_committed` keeps its mark among the store's settings.
const APPLIED_KEY: &str = "cluster/metadata-applied";

impl Admin {
    /// The cluster's members and their state; this node alone when it is
    /// not in a cluster.
    pub fn cluster_members(&self) -> Vec<MemberView> {
        match &self.broker.config.cluster_link {
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
    pub fn set_cluster_name(&self, name: &str) -> AdminResult<()> {
        if name.is_empty() {
            return Err(AdminError::BadRequest("the cluster name must not be empty".into()));
        }
        self.change(MetadataChange::ClusterName(name.to_string()))
    }

    /// Makes a checked change: through the metadata log in a cluster (once
    /// it returns, this node has applied it; the caller's thread waits,
    /// its runtime's other tasks moved elsewhere), at once otherwise.
    pub(super) fn change(&self, change: MetadataChange) -> AdminResult<()> {
        let Some(log) = &self.broker.config.cluster_link else {
            return self.apply_change(&change);
        };
        match crate::blocking::wait(log.propose(change)) {
            Some(done) => done.map_err(|e| AdminError::Unavailable(e.to_string())),
            None => Err(AdminError::Unavailable(
                "a cluster member needs the multi-threaded runtime to wait for its cluster".into(),
            )),
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

    /// Answers a call another node of the cluster made to this one, about
    /// a queue whose home is here (`queue::remote`); the answer encoded.
    pub async fn answer_call(&self, request: &[u8]) -> Vec<u8> {
        use crate::queue::remote::{calls, home};
        let broker = &self.broker;
        let delete_everywhere = |queue: &std::sync::Arc<crate::queue::Queue>| broker.delete_queue_everywhere(queue);
        let here = home::Home {
            find: |queue: &calls::QueueRef| broker.vhost(&queue.vhost)?.queue(&queue.name),
            holds: &broker.remote_holds,
            durability: broker.durability(),
            delete_everywhere: &delete_everywhere,
        };
        let answer = match calls::decode::<calls::Call>(request) {
            Some(call) => home::answer(&here, call).await,
            None => calls::Answer::Failed("the call does not decode".into()),
        };
        calls::encode(&answer)
    }

    /// Applies one checked change to this node.
    pub(super) fn apply_change(&self, change: &MetadataChange) -> AdminResult<()> {
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
            MetadataChange::PutVhost {
                name,
                description,
                tags,
                default_queue_type,
                creator,
            } => {
                let meta = VhostMeta {
                    description: description.clone(),
                    tags: tags.clone(),
                    default_queue_type: default_queue_type.clone(),
                };
                self.apply_put_vhost(name, meta, creator.as_deref())
            }
            MetadataChange::DeleteVhost { name } => match self.broker.delete_vhost(name) {
                Ok(()) => Ok(()),
                // Already gone (a change applied twice): the same state.
                Err(e) if e.code == warren_protocol::reply_code::NOT_FOUND => Ok(()),
                Err(e) => Err(e.into()),
            },
            MetadataChange::PutUser {
                name,
                password_hash,
                hashing_algorithm,
                tags,
            } => {
                self.apply_put_user(name, password_hash, hashing_algorithm, tags);
                Ok(())
            }
            MetadataChange::DeleteUser { name } => {
                self.apply_delete_user(name);
                Ok(())
            }
            MetadataChange::SetPermissions {
                vhost,
                user,
                configure,
                write,
                read,
            } => self.apply_set_permissions(vhost, user, configure, write, read),
            MetadataChange::ClearPermissions { vhost, user } => {
                self.broker.access.clear_permissions(vhost, user);
                Ok(())
            }
            MetadataChange::SetTopicPermissions {
                vhost,
                user,
                exchange,
                write,
                read,
            } => {
                self.apply_set_topic_permissions(vhost, user, exchange, write, read);
                Ok(())
            }
            MetadataChange::ClearTopicPermissions { vhost, user, exchange } => {
                self.broker
                    .access
                    .clear_topic_permissions(vhost, user, exchange.as_deref());
                Ok(())
            }
            MetadataChange::PutPolicy {
                operator,
                vhost,
                name,
                pattern,
                apply_to,
                priority,
                definition,
            } => self.apply_put_policy(*operator, vhost, name, pattern, apply_to, *priority, definition),
            MetadataChange::DeletePolicy { operator, vhost, name } => {
                self.apply_delete_policy(*operator, vhost, name);
                Ok(())
            }
            MetadataChange::SetLimit {
                vhost,
                name,
                limit,
                value,
            } => {
                self.apply_set_limit(*vhost, name, limit, *value);
                Ok(())
            }
            MetadataChange::DeclareQueue { vhost, name, arguments } => {
                let vhost = self.broker.vhost(vhost).ok_or(AdminError::NotFound)?;
                let what = format!("queue '{name}' in vhost '{}'", vhost.name);
                let arguments = arguments_of(arguments, &what)?;
                let settings = crate::queue::QueueSettings {
                    durable: true,
                    exclusive_owner: None,
                    auto_delete: false,
                    arguments,
                };
                vhost.declare_queue(&name.as_str().into(), settings)?;
                Ok(())
            }
            MetadataChange::DeclareExchange {
                vhost,
                name,
                kind,
                durable,
                auto_delete,
                internal,
                arguments,
            } => {
                let vhost = self.broker.vhost(vhost).ok_or(AdminError::NotFound)?;
                let what = format!("exchange '{name}' in vhost '{}'", vhost.name);
                let settings = crate::exchange::ExchangeSettings {
                    kind: crate::exchange::ExchangeKind::parse(kind)
                        .ok_or_else(|| AdminError::BadRequest(format!("{what}: unknown type {kind}")))?,
                    durable: *durable,
                    auto_delete: *auto_delete,
                    internal: *internal,
                    arguments: arguments_of(arguments, &what)?,
                };
                vhost.declare_exchange(&name.as_str().into(), settings)?;
                Ok(())
            }
            MetadataChange::DeleteExchange { vhost, name } => {
                if let Some(vhost) = self.broker.vhost(vhost) {
                    if vhost.exchange(name).is_some() {
                        vhost.delete_exchange(name, false)?;
                    }
                }
                Ok(())
            }
            MetadataChange::Binding {
                bound,
                vhost,
                source,
                to_queue,
                destination,
                routing_key,
                arguments,
            } => {
                let vhost = self.broker.vhost(vhost).ok_or(AdminError::NotFound)?;
                let destination = if *to_queue {
                    match vhost.queue(destination) {
                        Some(queue) => crate::exchange::Destination::Queue(queue),
                        None => return Ok(()),
                    }
                } else {
                    crate::exchange::Destination::Exchange(destination.as_str().into())
                };
                let what = format!("a binding from '{source}' in vhost '{}'", vhost.name);
                let arguments = arguments_of(arguments, &what)?;
                let key = routing_key.as_str().into();
                if *bound {
                    vhost.bind(source, destination, key, arguments)?;
                } else {
                    vhost.unbind(source, destination, key, arguments);
                }
                Ok(())
            }
            MetadataChange::DeleteQueue { vhost, name } => {
                if let Some(vhost) = self.broker.vhost(vhost) {
                    if let Some(queue) = vhost.queue(name) {
                        vhost.delete_queue(&queue);
                    }
                }
                Ok(())
            }
            MetadataChange::DeclareHomedQueue {
                vhost,
                name,
                home,
                durable,
                auto_delete,
                arguments,
            } => {
                let vhost = self.broker.vhost(vhost).ok_or(AdminError::NotFound)?;
                let what = format!("queue '{name}' in vhost '{}'", vhost.name);
                let settings = crate::queue::QueueSettings {
                    durable: *durable,
                    exclusive_owner: None,
                    auto_delete: *auto_delete,
                    arguments: arguments_of(arguments, &what)?,
                };
                let me = self.broker.config.cluster_link.as_ref().map(|link| link.this_node().0);
                let home = crate::queue::Home::seen_from(home.clone(), me.as_deref().unwrap_or_default());
                let here = matches!(home, crate::queue::Home::Here(_));
                if here && !durable && !self.broker.earlier_lives.are_forgotten() {
                    // An earlier life's, which died with it.
                    return Ok(());
                }
                // Found already (applied again after a restart): left as it is.
                if vhost.queue(name).is_none() {
                    vhost.declare_queue_at(&name.as_str().into(), settings, Some(home))?;
                }
                Ok(())
            }
            MetadataChange::ForgetTransientQueues { home } => {
                for vhost in self.vhosts_or_one(None)? {
                    for queue in vhost.queues() {
                        let homed_there = queue.home.as_ref().is_some_and(|h| h.node() == home);
                        if homed_there && !queue.settings.durable {
                            vhost.delete_queue(&queue);
                        }
                    }
                }
                Ok(())
            }
        }
    }
}
