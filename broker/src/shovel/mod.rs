//! Dynamic shovels: RabbitMQ's `shovel` runtime parameters, which move
//! messages from a queue (or an exchange) to a queue or an exchange of this
//! broker, e.g. to replay a dead-letter queue once its bug is fixed.
//!
//! [`Shovels`] keeps the definitions (in memory and in the store's
//! settings, so a shovel resumes after a restart) and one running mover
//! per definition (`mover.rs`); `definition.rs` checks what is asked for
//! as RabbitMQ does. A shovel that was told to stop after a number of
//! messages (`src-delete-after`) deletes its own definition when done, as
//! RabbitMQ's does.

mod definition;
mod mover;

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value};
use tokio::sync::watch;
use warren_store::Store;

pub(crate) use definition::{Definition, DeleteAfter, Destination, Source};

use crate::durability::Durability;
use crate::vhost::VHost;

/// What shovels need of the broker they run in (which holds them, so
/// they reach it through this, not its type).
pub(crate) trait ShovelHost: Send + Sync {
    fn vhost(&self, name: &str) -> Option<Arc<VHost>>;
    fn durability(&self) -> &Arc<Durability>;
    /// Flips to true when the broker shuts down.
    fn shutdown_signal(&self) -> watch::Receiver<bool>;
}

/// What a shovel is doing (RabbitMQ's `state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShovelState {
    Starting,
    Running,
    /// Stopped by an error; the reason, as RabbitMQ gives it.
    Terminated(String),
}

impl ShovelState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ShovelState::Starting => "starting",
            ShovelState::Running => "running",
            ShovelState::Terminated(_) => "terminated",
        }
    }
}

/// A running shovel's state and counts, shared with its mover.
#[derive(Debug)]
pub(crate) struct Status {
    pub state: Mutex<ShovelState>,
    /// Since when it is in that state.
    pub since: Mutex<SystemTime>,
    /// Messages moved since it started.
    pub moved: std::sync::atomic::AtomicU64,
}

impl Status {
    fn new() -> Status {
        Status {
            state: Mutex::new(ShovelState::Starting),
            since: Mutex::new(SystemTime::now()),
            moved: Default::default(),
        }
    }

    pub(crate) fn set(&self, state: ShovelState) {
        *self.state.lock() = state;
        *self.since.lock() = SystemTime::now();
    }
}

/// One shovel: its definition, status and how to stop its mover.
struct Shovel {
    definition: Arc<Definition>,
    status: Arc<Status>,
    stop: watch::Sender<bool>,
}

/// A snapshot of one shovel.
#[derive(Debug, Clone)]
pub struct ShovelView {
    pub vhost: String,
    pub name: String,
    /// The definition as given.
    pub value: Map<String, Value>,
    pub state: ShovelState,
    pub since: SystemTime,
    pub moved: u64,
}

type Key = (String, String);

pub(crate) struct Shovels {
    all: RwLock<BTreeMap<Key, Shovel>>,
    /// Definitions loaded from the store, started once the broker runs.
    loaded: Mutex<Vec<(Key, Map<String, Value>)>>,
    store: Option<Arc<dyn Store>>,
    host: RwLock<Option<Weak<dyn ShovelHost>>>,
    /// Itself, for the movers to report back to.
    me: Weak<Shovels>,
}

fn store_key(vhost: &str, name: &str) -> String {
    format!("shovel/{vhost}\u{0}{name}")
}

impl Shovels {
    /// The definitions in the store's settings (started by [`Self::start`]).
    pub(crate) fn load(store: Option<Arc<dyn Store>>, settings: &[(String, Vec<u8>)]) -> Arc<Shovels> {
        let mut loaded = Vec::new();
        for (key, value) in settings {
            let Some(rest) = key.strip_prefix("shovel/") else {
                continue;
            };
            let Some((vhost, name)) = rest.split_once('\u{0}') else {
                continue;
            };
            match serde_json::from_slice::<Map<String, Value>>(value) {
                Ok(value) => loaded.push(((vhost.to_string(), name.to_string()), value)),
                Err(e) => tracing::error!("ignoring the stored shovel {key:?}: {e}"),
            }
        }
        Arc::new_cyclic(|me| Shovels {
            all: RwLock::new(BTreeMap::new()),
            loaded: Mutex::new(loaded),
            store,
            host: RwLock::new(None),
            me: me.clone(),
        })
    }

    /// Starts the shovels that were defined before the restart (on the
    /// runtime, once the broker is open).
    pub(crate) fn start(&self, host: Weak<dyn ShovelHost>) {
        *self.host.write() = Some(host);
        let loaded = std::mem::take(&mut *self.loaded.lock());
        for ((vhost, name), value) in loaded {
            if let Err(e) = self.put(&vhost, &name, value) {
                tracing::error!(vhost, name, "a stored shovel no longer validates: {e}");
            }
        }
    }

    /// Adds or replaces a shovel and starts it; true if it is new. The
    /// error is RabbitMQ's validation message.
    pub(crate) fn put(&self, vhost: &str, name: &str, value: Map<String, Value>) -> Result<bool, String> {
        let value = crate::json::sorted_by_key(value);
        let definition = Arc::new(Definition::parse(name, &value)?);
        let key = (vhost.to_string(), name.to_string());
        let status = Arc::new(Status::new());
        let (stop, stopped) = watch::channel(false);
        let previous = self.all.write().insert(
            key.clone(),
            Shovel {
                definition: definition.clone(),
                status: status.clone(),
                stop,
            },
        );
        if let Some(previous) = &previous {
            let _ = previous.stop.send(true);
        }
        self.save(vhost, name, &value);
        let host = self.host.read().as_ref().and_then(Weak::upgrade);
        match host {
            Some(host) => {
                let run = mover::Run {
                    host,
                    shovels: self.me.clone(),
                    vhost: vhost.to_string(),
                    name: name.to_string(),
                    definition,
                    status,
                };
                tokio::spawn(run.run(stopped));
            }
            None => tracing::warn!(
                vhost,
                name,
                "shovel defined before the broker started; it starts with it"
            ),
        }
        Ok(previous.is_none())
    }

    fn save(&self, vhost: &str, name: &str, value: &Map<String, Value>) {
        if let Some(store) = &self.store {
            let key = store_key(vhost, name);
            let bytes = serde_json::to_vec(value).unwrap_or_default();
            if let Err(e) = store.save_setting(&key, &bytes) {
                tracing::error!("store write failed for {key:?}: {e}");
            }
        }
    }

    /// Stops and forgets a shovel; false if there was none.
    pub(crate) fn delete(&self, vhost: &str, name: &str) -> bool {
        let removed = self.all.write().remove(&(vhost.to_string(), name.to_string()));
        let Some(shovel) = removed else {
            return false;
        };
        let _ = shovel.stop.send(true);
        if let Some(store) = &self.store {
            let key = store_key(vhost, name);
            if let Err(e) = store.delete_setting(&key) {
                tracing::error!("store write failed for {key:?}: {e}");
            }
        }
        true
    }

    /// A mover that finished deletes its shovel, unless it was replaced
    /// since (by a new definition under the same name).
    pub(crate) fn finished(&self, vhost: &str, name: &str, status: &Arc<Status>) {
        let current = self
            .all
            .read()
            .get(&(vhost.to_string(), name.to_string()))
            .is_some_and(|s| Arc::ptr_eq(&s.status, status));
        if current {
            self.delete(vhost, name);
        }
    }

    /// Restarts a shovel's mover (RabbitMQ's restart endpoint); false if
    /// there is none.
    pub(crate) fn restart(&self, vhost: &str, name: &str) -> bool {
        let value = self
            .all
            .read()
            .get(&(vhost.to_string(), name.to_string()))
            .map(|s| s.definition.value.clone());
        match value {
            Some(value) => self.put(vhost, name, value).is_ok(),
            None => false,
        }
    }

    /// Every shovel (of one vhost, if named).
    pub(crate) fn list(&self, vhost: Option<&str>) -> Vec<ShovelView> {
        self.all
            .read()
            .iter()
            .filter(|((v, _), _)| vhost.is_none_or(|want| want == v))
            .map(|((vhost, name), s)| ShovelView {
                vhost: vhost.clone(),
                name: name.clone(),
                value: s.definition.value.clone(),
                state: s.status.state.lock().clone(),
                since: *s.status.since.lock(),
                moved: s.status.moved.load(std::sync::atomic::Ordering::Relaxed),
            })
            .collect()
    }

    /// Forgets every shovel of a deleted vhost.
    pub(crate) fn delete_vhost(&self, vhost: &str) {
        let names: Vec<String> = self.list(Some(vhost)).into_iter().map(|s| s.name).collect();
        for name in names {
            self.delete(vhost, &name);
        }
    }
}
