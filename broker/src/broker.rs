//! The broker's shared state: vhosts, users and permissions, open
//! connections, direct reply-to addresses, the durable store, the resource
//! alarms and the shutdown signal.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::watch;
use warren_store::{LazySledStore, Store, StoreOptions};

use crate::access::{Access, Defaults, LimitScope, VhostMeta};
use crate::alarm::{Alarms, Limits};
use crate::config::BrokerConfig;
use crate::connection_slots::ConnectionSlots;
use crate::connections::Connections;
use crate::durability::Durability;
use crate::error::AmqpError;
use crate::ids::ConnectionId;
use crate::message_stats::ChurnCounters;
use crate::policy::Policies;
use crate::recovery;
use crate::reply_to::ReplyRegistry;
use crate::shovel::{ShovelHost, Shovels};
use crate::vhost::VHost;

/// State every connection shares.
pub(crate) struct Broker {
    pub config: BrokerConfig,
    vhosts: DashMap<String, Arc<VHost>>,
    /// Users, permissions and vhost metadata.
    pub access: Arc<Access>,
    /// Policies and operator policies.
    pub policies: Arc<Policies>,
    /// Dynamic shovels.
    pub shovels: Arc<Shovels>,
    /// The cluster's name, once set (`PUT /api/cluster-name`); the node's
    /// name until then.
    pub cluster_name: parking_lot::RwLock<Option<String>>,
    /// Connection, channel and queue churn.
    pub churn: Arc<ChurnCounters>,
    /// Open connections, by id.
    pub connections: Connections,
    /// The addresses the AMQP listeners are bound to.
    listeners: parking_lot::Mutex<Vec<std::net::SocketAddr>>,
    next_connection_id: AtomicU64,
    /// Direct reply-to addresses and the channels they reach.
    pub reply_targets: ReplyRegistry,
    /// What other nodes of the cluster took from this node's queues.
    pub remote_holds: crate::queue::remote::home::Holds,
    /// Whether the cluster forgot this node's earlier non-durable queues.
    pub(crate) earlier_lives: Arc<crate::queue::remote::earlier_lives::EarlierLives>,
    durability: Arc<Durability>,
    /// Flips to true when the broker shuts down.
    shutdown: watch::Sender<bool>,
    /// The memory and disk alarms.
    alarms: Arc<Alarms>,
    /// Open connections, against `--max-connections`.
    connection_slots: Arc<ConnectionSlots>,
    /// Held while the broker runs: the data directory's lock.
    _lock: std::fs::File,
}

/// Where the cluster's name is kept among the store's settings.
pub(crate) const CLUSTER_NAME_KEY: &str = "cluster-name";

/// Takes the data directory for this process: a second broker started on
/// the same directory is refused, naming the directory, instead of two
/// processes writing the same files.
fn lock_data_dir(dir: &Path) -> io::Result<std::fs::File> {
    let path = dir.join("warren.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "the data directory {} is in use by another Warren process (it holds the lock on {})",
                dir.display(),
                path.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(io::Error::new(e.kind(), format!("locking {}: {e}", path.display())))
        }
    }
}

impl Broker {
    /// Opens the data directory, recovers what it holds, and creates the
    /// configured vhosts.
    pub(crate) fn open(config: BrokerConfig) -> io::Result<Arc<Broker>> {
        let dir = &config.data_dir;
        let context = |e: io::Error| io::Error::new(e.kind(), format!("data directory {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(context)?;
        let lock = lock_data_dir(dir)?;
        let store = Arc::new(LazySledStore::new(config.data_dir.clone(), StoreOptions::default()));
        let durability = Durability::start(store.clone() as Arc<dyn Store>);
        let settings = if store.exists() {
            store
                .get()
                .and_then(|s| s.definitions())
                .map_err(|e| io::Error::other(format!("reading the data directory {}: {e}", dir.display())))?
                .settings
        } else {
            Vec::new()
        };
        let policies = Arc::new(Policies::load(Some(store.clone() as Arc<dyn Store>), &settings));
        let shovels = Shovels::load(Some(store.clone() as Arc<dyn Store>), &settings);
        let cluster_name = settings
            .iter()
            .find(|(key, _)| key == CLUSTER_NAME_KEY)
            .and_then(|(_, value)| String::from_utf8(value.clone()).ok());
        let access = Arc::new(Access::load(
            Some(store.clone() as Arc<dyn Store>),
            &settings,
            Defaults {
                user: &config.default_user,
                password: &config.default_pass,
                vhosts: &config.vhosts,
            },
            config.loopback_users.clone(),
        ));
        let (shutdown, _) = watch::channel(false);
        let alarms = Alarms::start(Limits {
            memory_high_watermark: config.memory_high_watermark,
            memory_paging_ratio: config.memory_paging_ratio,
            disk_free_limit: config.disk_free_limit,
            release_memory: config.release_memory,
            data_dir: config.data_dir.clone(),
        });
        // What waits for the disk is at most an eighth of the watermark.
        durability.limit_unwritten(alarms.watermark() / 8);
        let broker = Arc::new(Broker {
            vhosts: DashMap::new(),
            access,
            policies,
            shovels,
            cluster_name: parking_lot::RwLock::new(cluster_name),
            churn: Arc::new(ChurnCounters::default()),
            connections: Connections::default(),
            listeners: Default::default(),
            next_connection_id: AtomicU64::new(1),
            reply_targets: ReplyRegistry::default(),
            remote_holds: Default::default(),
            earlier_lives: Default::default(),
            durability,
            shutdown,
            alarms,
            connection_slots: ConnectionSlots::new(config.max_connections),
            _lock: lock,
            config,
        });
        let weak = Arc::downgrade(&broker);
        broker.alarms.set_relief(Box::new(move || {
            if let Some(broker) = weak.upgrade() {
                broker.relieve_memory();
            }
        }));
        if store.exists() {
            let recovered = store
                .get()
                .and_then(|store| recovery::recover(store, |name| broker.add_vhost(name)));
            recovered.map_err(|e| {
                io::Error::other(format!(
                    "recovering the data directory {}: {e}",
                    broker.config.data_dir.display()
                ))
            })?;
        }
        for name in broker.access.vhost_names() {
            broker.add_vhost(&name);
        }
        Ok(broker)
    }

    pub(crate) fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.get(name).map(|v| v.clone())
    }

    /// Deletes a queue of one of its vhosts, on every node it is known on
    /// (an auto-delete queue whose last consumer went).
    pub(crate) fn delete_queue_everywhere(&self, queue: &Arc<crate::queue::Queue>) {
        if let Some(vhost) = self.vhost(&queue.vhost_name) {
            vhost.delete_queue_everywhere(queue);
        }
    }

    /// Adds a vhost if it does not exist yet. (Vhosts come from the
    /// configuration, or from the stored definitions that name them.)
    pub(crate) fn add_vhost(&self, name: &str) -> Arc<VHost> {
        if let Some(vhost) = self.vhost(name) {
            return vhost;
        }
        self.vhosts
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(VHost::new(
                    name,
                    Some(self.durability.clone()),
                    self.alarms.pressure(),
                    self.policies.clone(),
                    self.churn.clone(),
                    self.config.cluster_link.clone(),
                ))
            })
            .clone()
    }

    /// Every vhost's name.
    pub(crate) fn vhost_names(&self) -> Vec<String> {
        self.vhosts.iter().map(|v| v.key().clone()).collect()
    }

    /// Creates a vhost at runtime (or updates its metadata), durably.
    pub(crate) fn create_vhost(&self, name: &str, meta: VhostMeta) -> Result<(), AmqpError> {
        if self.vhost(name).is_none() {
            self.durability
                .store()
                .save_vhost(name)
                .map_err(|e| AmqpError::internal_error(format!("store write failed: {e}")))?;
            self.durability.wrote();
            tracing::info!("adding vhost '{name}'");
        }
        self.access.put_vhost(name, meta);
        self.add_vhost(name);
        Ok(())
    }

    /// Deletes a vhost: its connections are closed with 320, its queues
    /// and exchanges deleted, its permissions forgotten.
    pub(crate) fn delete_vhost(&self, name: &str) -> Result<(), AmqpError> {
        let Some((_, vhost)) = self.vhosts.remove(name) else {
            return Err(AmqpError::no_such("vhost", name, name));
        };
        tracing::info!("deleting vhost '{name}'");
        self.connections
            .close_where(|c| c.vhost == name, &format!("vhost '{name}' is deleted"));
        vhost.delete_everything();
        if let Err(e) = self.durability.store().delete_vhost(name) {
            tracing::error!("store write failed: {e}");
        }
        self.durability.wrote();
        self.access.delete_vhost(name);
        self.policies.delete_vhost(name);
        self.shovels.delete_vhost(name);
        Ok(())
    }

    /// Policies of `vhost` changed: its queues and exchanges take them.
    pub(crate) fn policies_changed(&self, vhost: &str) {
        if let Some(v) = self.vhost(vhost) {
            v.reapply_policies();
        }
    }

    /// Refuses a new connection over its vhost's or its user's
    /// max-connections limit, with RabbitMQ's text.
    pub(crate) fn check_connection_limits(&self, vhost: &str, user: &str) -> Result<(), AmqpError> {
        if let Some(limit) = self.access.limits(LimitScope::Vhost, vhost).get("max-connections") {
            if self.connections.count_where(|c| c.vhost == vhost) as u64 >= limit {
                return Err(AmqpError::not_allowed(format!(
                    "access to vhost '{vhost}' refused for user '{user}': connection limit ({limit}) is reached"
                )));
            }
        }
        if let Some(limit) = self.access.limits(LimitScope::User, user).get("max-connections") {
            if self.connections.count_where(|c| c.user == user) as u64 >= limit {
                return Err(AmqpError::not_allowed(format!(
                    "connection refused for user '{user}': user connection limit ({limit}) is reached"
                )));
            }
        }
        Ok(())
    }

    /// Refuses a channel over its user's max-channels limit.
    pub(crate) fn check_channel_limit(&self, user: &str) -> Result<(), AmqpError> {
        if let Some(limit) = self.access.limits(LimitScope::User, user).get("max-channels") {
            if self.connections.channels_of_user(user) as u64 >= limit {
                return Err(AmqpError::not_allowed(format!(
                    "number of channels opened for user '{user}' has reached the maximum allowed user limit of ({limit})"
                )));
            }
        }
        Ok(())
    }

    /// Refuses a new queue over its vhost's max-queues limit.
    pub(crate) fn check_queue_limit(&self, vhost: &VHost, name: &str) -> Result<(), AmqpError> {
        if vhost.queue(name).is_some() {
            return Ok(());
        }
        if let Some(limit) = self.access.limits(LimitScope::Vhost, &vhost.name).get("max-queues") {
            if vhost.queue_count() as u64 >= limit {
                return Err(AmqpError::precondition_failed(format!(
                    "cannot declare queue '{name}': queue limit in vhost '{}' ({limit}) is reached",
                    vhost.name
                )));
            }
        }
        Ok(())
    }

    /// Records where an AMQP listener is bound.
    pub(crate) fn add_listener(&self, addr: std::net::SocketAddr) {
        self.listeners.lock().push(addr);
    }

    pub(crate) fn listeners(&self) -> Vec<std::net::SocketAddr> {
        self.listeners.lock().clone()
    }

    pub(crate) fn durability(&self) -> &Arc<Durability> {
        &self.durability
    }

    /// Starts the shovels defined before the restart.
    pub(crate) fn start_shovels(self: &Arc<Self>) {
        let host: Arc<dyn ShovelHost> = self.clone();
        self.shovels.start(Arc::downgrade(&host));
    }

    pub(crate) fn next_connection_id(&self) -> ConnectionId {
        ConnectionId(self.next_connection_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Resolves once the broker begins shutting down.
    pub(crate) async fn stopping(signal: &mut watch::Receiver<bool>) {
        // The guard `wait_for` returns is dropped here, before any await in
        // the caller, so callers stay `Send`.
        let _ = signal.wait_for(|stopping| *stopping).await;
    }

    /// Memory is high: every queue that pages moves what it holds beyond
    /// its window to disk (blocking; the alarm monitor's relief thread).
    fn relieve_memory(&self) {
        let vhosts: Vec<Arc<VHost>> = self.vhosts.iter().map(|v| v.clone()).collect();
        for vhost in vhosts {
            for queue in vhost.queues() {
                queue.relieve_memory();
            }
        }
    }

    /// The memory and disk alarms.
    /// Body bytes one connection's unfinished messages may announce: as
    /// configured, else a quarter of the memory watermark, and at least the
    /// largest message.
    pub(crate) fn unfinished_limit(&self) -> u64 {
        let largest = self.config.max_message_size as u64;
        self.config
            .max_unfinished_per_connection
            .unwrap_or_else(|| (self.alarms().watermark() / 4).max(largest))
    }

    pub(crate) fn alarms(&self) -> &Alarms {
        &self.alarms
    }

    /// Open connections, against `--max-connections`.
    pub(crate) fn connection_slots(&self) -> &Arc<ConnectionSlots> {
        &self.connection_slots
    }

    /// Tells every connection to close with 320 CONNECTION_FORCED.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

impl ShovelHost for Broker {
    fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        Broker::vhost(self, name)
    }

    fn durability(&self) -> &Arc<Durability> {
        &self.durability
    }

    fn shutdown_signal(&self) -> watch::Receiver<bool> {
        Broker::shutdown_signal(self)
    }
}
