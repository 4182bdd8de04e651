//! A connection's view of what its user may do in its vhost: resolved at
//! connection.open and again only when the access state changed since
//! (one atomic read per check otherwise), so permission checks cost next
//! to nothing on the publish path.

use std::sync::Arc;

use super::{Access, Operation, Permissions, ResourceKind, TopicContext, TopicPermissions, User, UserTag};
use crate::error::AmqpError;

pub(crate) struct Grant {
    access: Arc<Access>,
    user: Arc<User>,
    vhost: String,
    generation: u64,
    permissions: Option<Arc<Permissions>>,
    topic: Vec<TopicPermissions>,
    /// The client's `client_id` property, for topic permission expansion.
    client_id: Option<String>,
}

impl Grant {
    /// The user's access to `vhost`; None when it has none (530 at
    /// connection.open).
    pub(crate) fn new(access: Arc<Access>, user: Arc<User>, vhost: &str, client_id: Option<String>) -> Option<Grant> {
        let mut grant = Grant {
            access,
            user,
            vhost: vhost.to_string(),
            generation: 0,
            permissions: None,
            topic: Vec::new(),
            client_id,
        };
        grant.refresh();
        grant.permissions.is_some().then_some(grant)
    }

    fn refresh(&mut self) {
        let generation = self.access.generation();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        if let Some(user) = self.access.user(&self.user.name) {
            self.user = user;
        }
        self.permissions = self.access.permissions(&self.vhost, &self.user.name);
        self.topic = self.access.topic_permissions(&self.vhost, &self.user.name);
    }

    /// Checks `operation` on a resource; refused with RabbitMQ's 403 text.
    pub(crate) fn check(&mut self, operation: Operation, kind: ResourceKind, name: &str) -> Result<(), AmqpError> {
        self.refresh();
        // The default exchange is checked under RabbitMQ's name for it.
        let name = if kind == ResourceKind::Exchange && name.is_empty() {
            "amq.default"
        } else {
            name
        };
        match &self.permissions {
            Some(p) if p.allows(operation, name) => Ok(()),
            // RabbitMQ 3.x does not say which of the three was refused.
            _ => Err(AmqpError::access_refused(format!(
                "access to {} '{}' in vhost '{}' refused for user '{}'",
                kind.as_str(),
                name,
                self.vhost,
                self.user.name
            ))),
        }
    }

    /// Checks a routing key against the topic permissions of a topic
    /// exchange (none set for it: allowed, as in RabbitMQ).
    pub(crate) fn check_topic(
        &mut self,
        operation: Operation,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), AmqpError> {
        self.refresh();
        let Some(permissions) = self.topic.iter().find(|p| p.exchange == exchange) else {
            return Ok(());
        };
        let context = TopicContext {
            username: &self.user.name,
            vhost: &self.vhost,
            client_id: self.client_id.as_deref(),
        };
        if permissions.allows(operation, routing_key, &context) {
            return Ok(());
        }
        Err(AmqpError::access_refused(format!(
            "access to topic '{}' in exchange '{}' in vhost '{}' refused for user '{}'",
            routing_key, exchange, self.vhost, self.user.name
        )))
    }

    /// Whether the user may publish with another user's `user_id`.
    pub(crate) fn may_impersonate(&self) -> bool {
        self.user.has_tag(&UserTag::Impersonator)
    }
}
