//! Policies and operator policies through the admin interface. A change
//! applies at once to the vhost's queues and exchanges.

use serde_json::{Map, Value};

use super::{Admin, AdminError, AdminResult, PolicyView};
use crate::policy::{ApplyTo, Policy, PolicyKind};

fn kind(operator: bool) -> PolicyKind {
    if operator {
        PolicyKind::Operator
    } else {
        PolicyKind::User
    }
}

fn view(p: &Policy) -> PolicyView {
    PolicyView {
        vhost: p.vhost.clone(),
        name: p.name.clone(),
        pattern: p.pattern.clone(),
        apply_to: p.apply_to.as_str(),
        priority: p.priority,
        definition: p.definition.clone(),
    }
}

impl Admin {
    /// Policies (operator policies with `operator`), of one vhost or all.
    pub fn policies(&self, operator: bool, vhost: Option<&str>) -> AdminResult<Vec<PolicyView>> {
        if let Some(v) = vhost {
            self.vhost(v)?;
        }
        Ok(self
            .broker
            .policies
            .list(kind(operator), vhost)
            .iter()
            .map(|p| view(p))
            .collect())
    }

    pub fn policy(&self, operator: bool, vhost: &str, name: &str) -> AdminResult<PolicyView> {
        self.broker
            .policies
            .get(kind(operator), vhost, name)
            .map(|p| view(&p))
            .ok_or(AdminError::NotFound)
    }

    /// Adds or replaces a policy; true if it is new. `apply_to` defaults to
    /// "all" as in RabbitMQ.
    #[allow(clippy::too_many_arguments)]
    pub fn put_policy(
        &self,
        operator: bool,
        vhost: &str,
        name: &str,
        pattern: &str,
        apply_to: Option<&str>,
        priority: i64,
        definition: Map<String, Value>,
    ) -> AdminResult<bool> {
        self.vhost(vhost)?;
        let apply_to = match apply_to {
            None => ApplyTo::All,
            Some(text) => ApplyTo::parse(text).ok_or_else(|| {
                AdminError::BadRequest(format!(
                    "Validation failed\n\napply-to '{text}' unrecognised; should be 'queues', 'exchanges' or 'all'\n"
                ))
            })?,
        };
        let policy = Policy::new(kind(operator), vhost, name, pattern, apply_to, priority, definition)
            .map_err(AdminError::BadRequest)?;
        let created = self.broker.policies.put(policy);
        self.broker.policies_changed(vhost);
        Ok(created)
    }

    pub fn delete_policy(&self, operator: bool, vhost: &str, name: &str) -> AdminResult<()> {
        if !self.broker.policies.delete(kind(operator), vhost, name) {
            return Err(AdminError::NotFound);
        }
        self.broker.policies_changed(vhost);
        Ok(())
    }
}
