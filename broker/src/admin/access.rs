//! Users, vhosts and permissions through the admin interface.

use std::sync::Arc;

use super::{Admin, AdminError, AdminResult, PermissionView, TopicPermissionView, UserView, VhostView};
use crate::access::{HashingAlgorithm, PasswordHash, Pattern, Permissions, TopicPermissions, User, UserTag, VhostMeta};
use crate::replication::MetadataChange;

/// How a user's password is given.
#[derive(Debug, Clone)]
pub enum PasswordSpec {
    /// In clear; Warren hashes it (SHA-256, as RabbitMQ's default).
    Plain(String),
    /// Already hashed, as definitions files and `password_hash` carry it;
    /// the algorithm is RabbitMQ's name for it (None: SHA-256).
    Hash { hash: String, algorithm: Option<String> },
    /// No password: the user cannot log in with one.
    None,
}

fn user_view(user: &User) -> UserView {
    UserView {
        name: user.name.clone(),
        password_hash: user.password_hash.0.clone(),
        hashing_algorithm: user.hashing_algorithm.as_str(),
        tags: user.tags.iter().map(|t| t.as_str().to_string()).collect(),
    }
}

fn pattern(source: &str) -> AdminResult<Pattern> {
    Pattern::new(source).map_err(AdminError::BadRequest)
}

impl Admin {
    pub fn users(&self) -> Vec<UserView> {
        self.broker.access.users().iter().map(|u| user_view(u)).collect()
    }

    pub fn user(&self, name: &str) -> Option<UserView> {
        self.broker.access.user(name).map(|u| user_view(&u))
    }

    /// Creates or replaces a user; true if it is new. `tags` is RabbitMQ's
    /// list of words (comma-separated or given one by one).
    pub fn put_user(&self, name: &str, password: PasswordSpec, tags: &[String]) -> AdminResult<bool> {
        if name.is_empty() {
            return Err(AdminError::BadRequest("user name must not be empty".into()));
        }
        let tags = UserTag::parse_list(&tags.join(","));
        let (password_hash, hashing_algorithm) = match password {
            PasswordSpec::Plain(p) => (
                PasswordHash::new(HashingAlgorithm::Sha256, &p),
                HashingAlgorithm::Sha256,
            ),
            PasswordSpec::Hash { hash, algorithm } => {
                let algorithm = match algorithm.as_deref() {
                    None | Some("") => HashingAlgorithm::Sha256,
                    Some(name) => HashingAlgorithm::parse(name)
                        .ok_or_else(|| AdminError::BadRequest(format!("unknown hashing algorithm: {name}")))?,
                };
                let hash = PasswordHash(hash);
                if !hash.is_well_formed() {
                    return Err(AdminError::BadRequest("password_hash is not a valid hash".into()));
                }
                (hash, algorithm)
            }
            PasswordSpec::None => (PasswordHash::default(), HashingAlgorithm::Sha256),
        };
        let created = self.broker.access.user(name).is_none();
        self.change(MetadataChange::PutUser {
            name: name.to_string(),
            password_hash: password_hash.0,
            hashing_algorithm: hashing_algorithm.as_str().to_string(),
            tags: tags.iter().map(|t| t.as_str().to_string()).collect(),
        })?;
        Ok(created)
    }

    pub(super) fn apply_put_user(&self, name: &str, password_hash: &str, hashing_algorithm: &str, tags: &[String]) {
        self.broker.access.put_user(User {
            name: name.to_string(),
            password_hash: PasswordHash(password_hash.to_string()),
            hashing_algorithm: HashingAlgorithm::parse(hashing_algorithm).unwrap_or(HashingAlgorithm::Sha256),
            tags: UserTag::parse_list(&tags.join(",")),
        });
    }

    /// Deletes a user and its permissions, and closes its connections.
    pub fn delete_user(&self, name: &str) -> AdminResult<()> {
        if self.broker.access.user(name).is_none() {
            return Err(AdminError::NotFound);
        }
        self.change(MetadataChange::DeleteUser { name: name.to_string() })
    }

    pub(super) fn apply_delete_user(&self, name: &str) {
        if self.broker.access.delete_user(name) {
            self.broker
                .connections
                .close_where(|c| c.user == name, &format!("user '{name}' is deleted"));
        }
    }

    pub fn vhosts(&self) -> Vec<VhostView> {
        let mut names = self.broker.vhost_names();
        names.sort();
        names.iter().filter_map(|n| self.vhost_view(n)).collect()
    }

    pub fn vhost_view(&self, name: &str) -> Option<VhostView> {
        self.broker.vhost(name)?;
        let meta = self.broker.access.vhost_meta(name).unwrap_or_default();
        Some(VhostView {
            name: name.to_string(),
            description: meta.description,
            tags: meta.tags,
            default_queue_type: meta.default_queue_type,
        })
    }

    /// Creates a vhost (with the `amq.*` exchanges), or updates its
    /// metadata; true if it is new. A new vhost's `creator` gets every
    /// permission on it, as RabbitMQ's management API gives them.
    pub fn put_vhost(
        &self,
        name: &str,
        description: Option<String>,
        tags: Option<Vec<String>>,
        default_queue_type: Option<String>,
        creator: Option<&str>,
    ) -> AdminResult<bool> {
        if name.is_empty() {
            return Err(AdminError::BadRequest("vhost name must not be empty".into()));
        }
        let existing = self.broker.access.vhost_meta(name);
        let created = self.broker.vhost(name).is_none();
        let old = existing.unwrap_or_default();
        self.change(MetadataChange::PutVhost {
            name: name.to_string(),
            description: description.unwrap_or(old.description),
            tags: tags.unwrap_or(old.tags),
            default_queue_type: default_queue_type.or(old.default_queue_type),
            creator: creator.filter(|_| created).map(String::from),
        })?;
        Ok(created)
    }

    pub(super) fn apply_put_vhost(&self, name: &str, meta: VhostMeta, creator: Option<&str>) -> AdminResult<()> {
        let created = self.broker.vhost(name).is_none();
        self.broker.create_vhost(name, meta)?;
        if let (true, Some(user)) = (created, creator) {
            self.broker.access.set_permissions(name, user, Permissions::full());
        }
        Ok(())
    }

    /// Deletes a vhost: its connections are closed (320), its queues and
    /// exchanges deleted, its permissions cleared.
    pub fn delete_vhost(&self, name: &str) -> AdminResult<()> {
        if self.broker.vhost(name).is_none() {
            return Err(AdminError::NotFound);
        }
        self.change(MetadataChange::DeleteVhost { name: name.to_string() })
    }

    pub fn permissions(&self) -> Vec<PermissionView> {
        self.broker
            .access
            .all_permissions()
            .into_iter()
            .map(|(vhost, user, p)| permission_view(vhost, user, &p))
            .collect()
    }

    pub fn permission(&self, vhost: &str, user: &str) -> Option<PermissionView> {
        let p = self.broker.access.permissions(vhost, user)?;
        Some(permission_view(vhost.to_string(), user.to_string(), &p))
    }

    /// Sets a user's permissions in a vhost; true if it had none.
    pub fn set_permissions(
        &self,
        vhost: &str,
        user: &str,
        configure: &str,
        write: &str,
        read: &str,
    ) -> AdminResult<bool> {
        if self.broker.vhost(vhost).is_none() || self.broker.access.user(user).is_none() {
            return Err(AdminError::BadRequest("vhost_or_user_not_found".into()));
        }
        for source in [configure, write, read] {
            pattern(source)?;
        }
        let created = self.broker.access.permissions(vhost, user).is_none();
        self.change(MetadataChange::SetPermissions {
            vhost: vhost.to_string(),
            user: user.to_string(),
            configure: configure.to_string(),
            write: write.to_string(),
            read: read.to_string(),
        })?;
        Ok(created)
    }

    pub(super) fn apply_set_permissions(
        &self,
        vhost: &str,
        user: &str,
        configure: &str,
        write: &str,
        read: &str,
    ) -> AdminResult<()> {
        let permissions = Permissions {
            configure: pattern(configure)?,
            write: pattern(write)?,
            read: pattern(read)?,
        };
        self.broker.access.set_permissions(vhost, user, permissions);
        Ok(())
    }

    pub fn clear_permissions(&self, vhost: &str, user: &str) -> AdminResult<()> {
        if self.broker.access.permissions(vhost, user).is_none() {
            return Err(AdminError::NotFound);
        }
        self.change(MetadataChange::ClearPermissions {
            vhost: vhost.to_string(),
            user: user.to_string(),
        })
    }

    pub fn topic_permissions(&self) -> Vec<TopicPermissionView> {
        self.broker
            .access
            .all_topic_permissions()
            .into_iter()
            .map(|(vhost, user, p)| TopicPermissionView {
                user,
                vhost,
                exchange: p.exchange,
                write: p.write,
                read: p.read,
            })
            .collect()
    }

    /// Sets a user's topic permissions on one exchange of a vhost.
    pub fn set_topic_permissions(
        &self,
        vhost: &str,
        user: &str,
        exchange: &str,
        write: &str,
        read: &str,
    ) -> AdminResult<bool> {
        if self.broker.vhost(vhost).is_none() || self.broker.access.user(user).is_none() {
            return Err(AdminError::BadRequest("vhost_or_user_not_found".into()));
        }
        // The variables expand per connection; checked with them filled in.
        for source in [write, read] {
            let filled = source
                .replace("{username}", "u")
                .replace("{vhost}", "v")
                .replace("{client_id}", "c");
            pattern(&filled)?;
        }
        let created = !self
            .broker
            .access
            .topic_permissions(vhost, user)
            .iter()
            .any(|p| p.exchange == exchange);
        self.change(MetadataChange::SetTopicPermissions {
            vhost: vhost.to_string(),
            user: user.to_string(),
            exchange: exchange.to_string(),
            write: write.to_string(),
            read: read.to_string(),
        })?;
        Ok(created)
    }

    pub(super) fn apply_set_topic_permissions(&self, vhost: &str, user: &str, exchange: &str, write: &str, read: &str) {
        self.broker.access.set_topic_permissions(
            vhost,
            user,
            TopicPermissions {
                exchange: exchange.to_string(),
                write: write.to_string(),
                read: read.to_string(),
            },
        );
    }

    pub fn clear_topic_permissions(&self, vhost: &str, user: &str, exchange: Option<&str>) -> AdminResult<()> {
        let held = self.broker.access.topic_permissions(vhost, user);
        if !held.iter().any(|p| exchange.is_none_or(|x| p.exchange == x)) {
            return Err(AdminError::NotFound);
        }
        self.change(MetadataChange::ClearTopicPermissions {
            vhost: vhost.to_string(),
            user: user.to_string(),
            exchange: exchange.map(String::from),
        })
    }
}

fn permission_view(vhost: String, user: String, p: &Arc<Permissions>) -> PermissionView {
    PermissionView {
        user,
        vhost,
        configure: p.configure.as_str().to_string(),
        write: p.write.as_str().to_string(),
        read: p.read.as_str().to_string(),
    }
}
