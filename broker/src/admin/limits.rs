//! Vhost and user limits through the admin interface.

use serde_json::Value;

use super::{Admin, AdminError, AdminResult};
use crate::access::{self, LimitScope};
use crate::replication::MetadataChange;

/// One vhost's or user's limits, the most recently set first.
pub type LimitsView = Vec<(String, i64)>;

impl Admin {
    fn scope(vhost: bool) -> LimitScope {
        if vhost {
            LimitScope::Vhost
        } else {
            LimitScope::User
        }
    }

    /// The limits set on vhosts (`vhost`) or users, of one or all.
    pub fn limits(&self, vhost: bool, name: Option<&str>) -> AdminResult<Vec<(String, LimitsView)>> {
        let scope = Self::scope(vhost);
        if let Some(name) = name {
            let exists = if vhost {
                self.broker.vhost(name).is_some()
            } else {
                self.broker.access.user(name).is_some()
            };
            if !exists {
                return Err(AdminError::NotFound);
            }
            let limits = self.broker.access.limits(scope, name);
            return Ok(if limits.is_empty() {
                Vec::new()
            } else {
                vec![(name.to_string(), limits.0)]
            });
        }
        Ok(self
            .broker
            .access
            .all_limits(scope)
            .into_iter()
            .map(|(n, l)| (n, l.0))
            .collect())
    }

    /// Sets a limit (`max-connections`, `max-queues` on vhosts;
    /// `max-connections`, `max-channels` on users); negative: no limit.
    pub fn set_limit(&self, vhost: bool, name: &str, limit: &str, value: &Value) -> AdminResult<()> {
        let scope = Self::scope(vhost);
        let exists = if vhost {
            self.broker.vhost(name).is_some()
        } else {
            self.broker.access.user(name).is_some()
        };
        if !exists {
            return Err(AdminError::NotFound);
        }
        let value = access::validate_limit(scope, limit, value).map_err(AdminError::BadRequest)?;
        self.change(MetadataChange::SetLimit {
            vhost,
            name: name.to_string(),
            limit: limit.to_string(),
            value: Some(value),
        })
    }

    pub fn clear_limit(&self, vhost: bool, name: &str, limit: &str) -> AdminResult<()> {
        self.change(MetadataChange::SetLimit {
            vhost,
            name: name.to_string(),
            limit: limit.to_string(),
            value: None,
        })
    }

    pub(super) fn apply_set_limit(&self, vhost: bool, name: &str, limit: &str, value: Option<i64>) {
        self.broker.access.set_limit(Self::scope(vhost), name, limit, value);
    }
}
