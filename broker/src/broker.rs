//! The broker's shared state: vhosts, users, live connections, direct
//! reply-to addresses, and the durable store.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::watch;
use warren_store::{LazySledStore, Store, StoreOptions};

use crate::channel::ReplyTarget;
use crate::config::BrokerConfig;
use crate::connection::handle::{ConnectionHandle, ConnectionId};
use crate::durability::Durability;
use crate::recovery;
use crate::vhost::VHost;

/// State every connection shares.
pub struct Broker {
    pub config: BrokerConfig,
    vhosts: DashMap<String, Arc<VHost>>,
    users: HashMap<String, String>,
    next_connection_id: AtomicU64,
    connections: DashMap<ConnectionId, ConnectionHandle>,
    /// Direct reply-to addresses and the channels they reach.
    reply_targets: DashMap<String, ReplyTarget>,
    durability: Arc<Durability>,
    /// Flips to true when the broker shuts down.
    shutdown: watch::Sender<bool>,
    /// The disk alarm: true while free disk space is below the limit.
    disk_alarm: watch::Sender<bool>,
}

fn io_error(e: warren_store::StoreError) -> io::Error {
    io::Error::other(e)
}

impl Broker {
    /// Opens the data directory, recovers what it holds, and creates the
    /// configured vhosts.
    pub fn open(config: BrokerConfig) -> io::Result<Arc<Broker>> {
        std::fs::create_dir_all(&config.data_dir)?;
        let store = Arc::new(LazySledStore::new(config.data_dir.clone(), StoreOptions::default()));
        let durability = Durability::start(store.clone() as Arc<dyn Store>);
        let users = config.users.iter().cloned().collect();
        let (shutdown, _) = watch::channel(false);
        let (disk_alarm, _) = watch::channel(false);
        let broker = Arc::new(Broker {
            vhosts: DashMap::new(),
            users,
            next_connection_id: AtomicU64::new(1),
            connections: DashMap::new(),
            reply_targets: DashMap::new(),
            durability,
            shutdown,
            disk_alarm,
            config,
        });
        if store.exists() {
            recovery::recover(&broker, store.get().map_err(io_error)?).map_err(io_error)?;
        }
        for name in broker.config.vhosts.clone() {
            broker.add_vhost(&name);
        }
        Ok(broker)
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.get(name).map(|v| v.clone())
    }

    /// Adds a vhost if it does not exist yet. (Vhosts come from the
    /// configuration, or from the stored definitions that name them.)
    pub fn add_vhost(&self, name: &str) -> Arc<VHost> {
        if let Some(vhost) = self.vhost(name) {
            return vhost;
        }
        self.vhosts
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(VHost::new(name, Some(self.durability.clone()))))
            .clone()
    }

    pub fn durability(&self) -> &Arc<Durability> {
        &self.durability
    }

    /// Checks a user's password.
    pub fn authenticate(&self, user: &str, password: &str) -> bool {
        self.users.get(user).is_some_and(|p| p == password)
    }

    pub fn next_connection_id(&self) -> ConnectionId {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn register(&self, handle: ConnectionHandle) {
        self.connections.insert(handle.id, handle);
    }

    pub fn unregister(&self, id: ConnectionId) {
        self.connections.remove(&id);
    }

    pub fn register_reply_target(&self, key: String, target: ReplyTarget) {
        self.reply_targets.insert(key, target);
    }

    pub fn unregister_reply_target(&self, key: &str) {
        self.reply_targets.remove(key);
    }

    pub fn reply_target(&self, key: &str) -> Option<ReplyTarget> {
        self.reply_targets.get(key).map(|t| t.clone())
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Resolves once the broker begins shutting down.
    pub async fn stopping(signal: &mut watch::Receiver<bool>) {
        // The guard `wait_for` returns is dropped here, before any await in
        // the caller, so callers stay `Send`.
        let _ = signal.wait_for(|stopping| *stopping).await;
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Watches the disk alarm.
    pub fn disk_alarm(&self) -> watch::Receiver<bool> {
        self.disk_alarm.subscribe()
    }

    /// Checks free space on the data directory's disk and raises or clears
    /// the alarm. Returns whether it is raised.
    pub fn check_disk(&self) -> bool {
        let raised = match fs4::available_space(&self.config.data_dir) {
            Ok(free) => free < self.config.disk_free_limit,
            Err(e) => {
                tracing::warn!("cannot read free disk space: {e}");
                false
            }
        };
        let was = self.disk_alarm.send_replace(raised);
        if raised != was {
            if raised {
                tracing::warn!(
                    limit = self.config.disk_free_limit,
                    "disk alarm: free disk space below the limit; publishers are blocked"
                );
            } else {
                tracing::info!("disk alarm cleared; publishers are unblocked");
            }
        }
        raised
    }

    /// Tells every connection to close with 320 CONNECTION_FORCED.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}
