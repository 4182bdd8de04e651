//! Who may do what: users, their permissions per vhost and per topic
//! exchange, and the vhosts' metadata, as RabbitMQ's internal database
//! keeps them.
//!
//! [`Access`] holds them in memory behind one lock (they change rarely and
//! are read at connection.open and when a connection's cached view is
//! stale) and writes every change to the store's settings. A data
//! directory that never changed them stores nothing: the defaults (the
//! default user, an administrator with every permission on the default
//! vhost) are made again at each start, so a test suite's broker never
//! opens the store for them. The first change writes the whole state, and
//! from then on the store's records are the truth.
//!
//! Each change bumps a generation; connections compare it with the one
//! their cached [`Grant`] was made under before trusting it.

mod grant;
mod limits;
mod password;
mod permission;
mod user;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use warren_store::Store;

pub(crate) use grant::Grant;
pub(crate) use limits::{validate as validate_limit, LimitScope, Limits};
pub(crate) use password::{HashingAlgorithm, PasswordHash};
pub(crate) use permission::{Operation, Pattern, Permissions, ResourceKind, TopicContext, TopicPermissions};
pub(crate) use user::{User, UserTag};

/// The key that says the store holds the access state.
const INITIALISED: &str = "access/initialised";

/// A vhost's metadata (RabbitMQ 3.8+).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct VhostMeta {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub default_queue_type: Option<String>,
}

/// A permission as stored: whose, where, and what.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PermissionRecord {
    user: String,
    vhost: String,
    #[serde(flatten)]
    permissions: Permissions,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicPermissionRecord {
    user: String,
    vhost: String,
    #[serde(flatten)]
    permissions: TopicPermissions,
}

/// Why a login was refused (for the log; the client hears less).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoginRefusal {
    InvalidCredentials,
    LoopbackOnly,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, Arc<User>>,
    /// (vhost, user) -> permissions.
    permissions: BTreeMap<(String, String), Arc<Permissions>>,
    /// (vhost, user) -> per exchange.
    topic_permissions: BTreeMap<(String, String), Vec<TopicPermissions>>,
    vhosts: BTreeMap<String, VhostMeta>,
    vhost_limits: BTreeMap<String, Limits>,
    user_limits: BTreeMap<String, Limits>,
}

pub(crate) struct Access {
    state: RwLock<State>,
    generation: AtomicU64,
    /// The store holds the access state (it was changed at least once).
    stored: AtomicBool,
    store: Option<Arc<dyn Store>>,
    loopback_users: Vec<String>,
}

fn permission_key(vhost: &str, user: &str) -> String {
    format!("permission/{vhost}\u{0}{user}")
}

fn topic_permission_key(vhost: &str, user: &str, exchange: &str) -> String {
    format!("topic-permission/{vhost}\u{0}{user}\u{0}{exchange}")
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// What the defaults are when the store holds no access state.
pub(crate) struct Defaults<'a> {
    pub user: &'a str,
    pub password: &'a str,
    /// The default user gets every permission on each.
    pub vhosts: &'a [String],
}

impl Access {
    /// The access state from the store's settings, or the defaults when
    /// it holds none.
    pub(crate) fn load(
        store: Option<Arc<dyn Store>>,
        settings: &[(String, Vec<u8>)],
        defaults: Defaults<'_>,
        loopback_users: Vec<String>,
    ) -> Access {
        let mut state = State::default();
        let stored = settings.iter().any(|(k, _)| k == INITIALISED);
        if stored {
            for (key, value) in settings {
                let (kind, _) = key.split_once('/').unwrap_or((key, ""));
                let loaded = match kind {
                    "user" => serde_json::from_slice::<User>(value).map(|u| {
                        state.users.insert(u.name.clone(), Arc::new(u));
                    }),
                    "permission" => serde_json::from_slice::<PermissionRecord>(value).map(|p| {
                        state.permissions.insert((p.vhost, p.user), Arc::new(p.permissions));
                    }),
                    "topic-permission" => serde_json::from_slice::<TopicPermissionRecord>(value).map(|p| {
                        state
                            .topic_permissions
                            .entry((p.vhost, p.user))
                            .or_default()
                            .push(p.permissions);
                    }),
                    "vhost" => serde_json::from_slice::<VhostMeta>(value).map(|m| {
                        let name = key["vhost/".len()..].to_string();
                        state.vhosts.insert(name, m);
                    }),
                    "vhost-limits" => serde_json::from_slice::<Limits>(value).map(|l| {
                        state.vhost_limits.insert(key["vhost-limits/".len()..].to_string(), l);
                    }),
                    "user-limits" => serde_json::from_slice::<Limits>(value).map(|l| {
                        state.user_limits.insert(key["user-limits/".len()..].to_string(), l);
                    }),
                    _ => Ok(()),
                };
                if let Err(e) = loaded {
                    tracing::error!("ignoring the stored access record {key:?}: {e}");
                }
            }
        } else {
            let user = User::with_password(defaults.user, defaults.password, vec![UserTag::Administrator]);
            state.users.insert(user.name.clone(), Arc::new(user));
            for vhost in defaults.vhosts {
                state.vhosts.insert(vhost.clone(), VhostMeta::default());
                state.permissions.insert(
                    (vhost.clone(), defaults.user.to_string()),
                    Arc::new(Permissions::full()),
                );
            }
        }
        Access {
            state: RwLock::new(state),
            generation: AtomicU64::new(1),
            stored: AtomicBool::new(stored),
            store,
            loopback_users,
        }
    }

    /// Bumped by every change.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Checks a login. `loopback` says whether the peer is on this host.
    pub(crate) fn authenticate(&self, name: &str, password: &str, loopback: bool) -> Result<Arc<User>, LoginRefusal> {
        let user = self
            .user(name)
            .filter(|u| u.password_matches(password))
            .ok_or(LoginRefusal::InvalidCredentials)?;
        if !loopback && self.loopback_users.iter().any(|u| u == name) {
            return Err(LoginRefusal::LoopbackOnly);
        }
        Ok(user)
    }

    pub(crate) fn user(&self, name: &str) -> Option<Arc<User>> {
        self.state.read().users.get(name).cloned()
    }

    pub(crate) fn users(&self) -> Vec<Arc<User>> {
        self.state.read().users.values().cloned().collect()
    }

    /// A user's permissions in a vhost; None: no access to it.
    pub(crate) fn permissions(&self, vhost: &str, user: &str) -> Option<Arc<Permissions>> {
        self.state
            .read()
            .permissions
            .get(&(vhost.to_string(), user.to_string()))
            .cloned()
    }

    /// Every permission, as (vhost, user, permissions).
    pub(crate) fn all_permissions(&self) -> Vec<(String, String, Arc<Permissions>)> {
        let state = self.state.read();
        state
            .permissions
            .iter()
            .map(|((v, u), p)| (v.clone(), u.clone(), p.clone()))
            .collect()
    }

    pub(crate) fn topic_permissions(&self, vhost: &str, user: &str) -> Vec<TopicPermissions> {
        self.state
            .read()
            .topic_permissions
            .get(&(vhost.to_string(), user.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn all_topic_permissions(&self) -> Vec<(String, String, TopicPermissions)> {
        let state = self.state.read();
        state
            .topic_permissions
            .iter()
            .flat_map(|((v, u), list)| list.iter().map(move |p| (v.clone(), u.clone(), p.clone())))
            .collect()
    }

    pub(crate) fn vhost_meta(&self, vhost: &str) -> Option<VhostMeta> {
        self.state.read().vhosts.get(vhost).cloned()
    }

    /// The vhosts the access state knows (the broker creates them at start).
    pub(crate) fn vhost_names(&self) -> Vec<String> {
        self.state.read().vhosts.keys().cloned().collect()
    }

    /// Applies a change and writes what it touched. The first change
    /// writes the whole state.
    fn change(&self, apply: impl FnOnce(&mut State) -> Vec<(String, Option<Vec<u8>>)>) {
        let mut state = self.state.write();
        let writes = apply(&mut state);
        self.generation.fetch_add(1, Ordering::AcqRel);
        let Some(store) = &self.store else {
            return;
        };
        let writes = if self.stored.swap(true, Ordering::AcqRel) {
            writes
        } else {
            let mut all = whole_state(&state);
            all.push((INITIALISED.to_string(), Some(b"1".to_vec())));
            // Deletions among the changes still apply (the whole state
            // already lacks what they removed).
            all.extend(writes.into_iter().filter(|(_, v)| v.is_none()));
            all
        };
        for (key, value) in writes {
            let written = match value {
                Some(value) => store.save_setting(&key, &value),
                None => store.delete_setting(&key),
            };
            if let Err(e) = written {
                tracing::error!("store write failed for {key:?}: {e}");
            }
        }
    }

    pub(crate) fn put_user(&self, user: User) {
        self.change(|state| {
            let key = format!("user/{}", user.name);
            let value = encode(&user);
            state.users.insert(user.name.clone(), Arc::new(user));
            vec![(key, Some(value))]
        });
    }

    /// Deletes a user and its permissions; false if there was none.
    pub(crate) fn delete_user(&self, name: &str) -> bool {
        if self.user(name).is_none() {
            return false;
        }
        self.change(|state| {
            state.users.remove(name);
            let mut writes = vec![(format!("user/{name}"), None)];
            if state.user_limits.remove(name).is_some() {
                writes.push((format!("user-limits/{name}"), None));
            }
            state.permissions.retain(|(vhost, user), _| {
                let keep = user != name;
                if !keep {
                    writes.push((permission_key(vhost, user), None));
                }
                keep
            });
            state.topic_permissions.retain(|(vhost, user), list| {
                let keep = user != name;
                if !keep {
                    for p in list.iter() {
                        writes.push((topic_permission_key(vhost, user, &p.exchange), None));
                    }
                }
                keep
            });
            writes
        });
        true
    }

    pub(crate) fn set_permissions(&self, vhost: &str, user: &str, permissions: Permissions) {
        self.change(|state| {
            let record = PermissionRecord {
                user: user.to_string(),
                vhost: vhost.to_string(),
                permissions: permissions.clone(),
            };
            state
                .permissions
                .insert((vhost.to_string(), user.to_string()), Arc::new(permissions));
            vec![(permission_key(vhost, user), Some(encode(&record)))]
        });
    }

    /// False if there were none.
    pub(crate) fn clear_permissions(&self, vhost: &str, user: &str) -> bool {
        if self.permissions(vhost, user).is_none() {
            return false;
        }
        self.change(|state| {
            state.permissions.remove(&(vhost.to_string(), user.to_string()));
            vec![(permission_key(vhost, user), None)]
        });
        true
    }

    pub(crate) fn set_topic_permissions(&self, vhost: &str, user: &str, permissions: TopicPermissions) {
        self.change(|state| {
            let key = topic_permission_key(vhost, user, &permissions.exchange);
            let record = TopicPermissionRecord {
                user: user.to_string(),
                vhost: vhost.to_string(),
                permissions: permissions.clone(),
            };
            let list = state
                .topic_permissions
                .entry((vhost.to_string(), user.to_string()))
                .or_default();
            list.retain(|p| p.exchange != permissions.exchange);
            list.push(permissions);
            vec![(key, Some(encode(&record)))]
        });
    }

    /// Clears a user's topic permissions in a vhost (on one exchange, or
    /// all); false if there were none.
    pub(crate) fn clear_topic_permissions(&self, vhost: &str, user: &str, exchange: Option<&str>) -> bool {
        let existing = self.topic_permissions(vhost, user);
        let removed: Vec<String> = existing
            .iter()
            .filter(|p| exchange.is_none_or(|e| e == p.exchange))
            .map(|p| p.exchange.clone())
            .collect();
        if removed.is_empty() {
            return false;
        }
        self.change(|state| {
            let id = (vhost.to_string(), user.to_string());
            if let Some(list) = state.topic_permissions.get_mut(&id) {
                list.retain(|p| !removed.contains(&p.exchange));
                if list.is_empty() {
                    state.topic_permissions.remove(&id);
                }
            }
            removed
                .iter()
                .map(|e| (topic_permission_key(vhost, user, e), None))
                .collect()
        });
        true
    }

    /// Records a vhost (new, or its metadata changed).
    pub(crate) fn put_vhost(&self, name: &str, meta: VhostMeta) {
        self.change(|state| {
            let value = encode(&meta);
            state.vhosts.insert(name.to_string(), meta);
            vec![(format!("vhost/{name}"), Some(value))]
        });
    }

    /// The limits of a vhost or a user.
    pub(crate) fn limits(&self, scope: LimitScope, name: &str) -> Limits {
        let state = self.state.read();
        let map = match scope {
            LimitScope::Vhost => &state.vhost_limits,
            LimitScope::User => &state.user_limits,
        };
        map.get(name).cloned().unwrap_or_default()
    }

    /// Every vhost's (or user's) limits that are set.
    pub(crate) fn all_limits(&self, scope: LimitScope) -> Vec<(String, Limits)> {
        let state = self.state.read();
        let map = match scope {
            LimitScope::Vhost => &state.vhost_limits,
            LimitScope::User => &state.user_limits,
        };
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Sets (`Some`) or clears (`None`) one limit of a vhost or a user.
    pub(crate) fn set_limit(&self, scope: LimitScope, name: &str, limit: &str, value: Option<i64>) {
        self.change(|state| {
            let (map, prefix) = match scope {
                LimitScope::Vhost => (&mut state.vhost_limits, "vhost-limits"),
                LimitScope::User => (&mut state.user_limits, "user-limits"),
            };
            let limits = map.entry(name.to_string()).or_default();
            match value {
                Some(v) => limits.set(limit, v),
                None => limits.clear(limit),
            }
            let key = format!("{prefix}/{name}");
            if limits.is_empty() {
                map.remove(name);
                vec![(key, None)]
            } else {
                vec![(key, Some(encode(&*limits)))]
            }
        });
    }

    /// Forgets a vhost and every permission in it.
    pub(crate) fn delete_vhost(&self, name: &str) {
        self.change(|state| {
            state.vhosts.remove(name);
            let mut writes = vec![(format!("vhost/{name}"), None)];
            if state.vhost_limits.remove(name).is_some() {
                writes.push((format!("vhost-limits/{name}"), None));
            }
            state.permissions.retain(|(vhost, user), _| {
                let keep = vhost != name;
                if !keep {
                    writes.push((permission_key(vhost, user), None));
                }
                keep
            });
            state.topic_permissions.retain(|(vhost, user), list| {
                let keep = vhost != name;
                if !keep {
                    for p in list.iter() {
                        writes.push((topic_permission_key(vhost, user, &p.exchange), None));
                    }
                }
                keep
            });
            writes
        });
    }
}

/// Every record of the state, for the first write.
fn whole_state(state: &State) -> Vec<(String, Option<Vec<u8>>)> {
    let mut all = Vec::new();
    for user in state.users.values() {
        all.push((format!("user/{}", user.name), Some(encode(user.as_ref()))));
    }
    for ((vhost, user), permissions) in &state.permissions {
        let record = PermissionRecord {
            user: user.clone(),
            vhost: vhost.clone(),
            permissions: permissions.as_ref().clone(),
        };
        all.push((permission_key(vhost, user), Some(encode(&record))));
    }
    for ((vhost, user), list) in &state.topic_permissions {
        for permissions in list {
            let record = TopicPermissionRecord {
                user: user.clone(),
                vhost: vhost.clone(),
                permissions: permissions.clone(),
            };
            all.push((
                topic_permission_key(vhost, user, &permissions.exchange),
                Some(encode(&record)),
            ));
        }
    }
    for (name, meta) in &state.vhosts {
        all.push((format!("vhost/{name}"), Some(encode(meta))));
    }
    for (name, limits) in &state.vhost_limits {
        all.push((format!("vhost-limits/{name}"), Some(encode(limits))));
    }
    for (name, limits) in &state.user_limits {
        all.push((format!("user-limits/{name}"), Some(encode(limits))));
    }
    all
}
