//! Policies and operator policies through the admin interface. A change
//! applies at once to the vhost's queues and exchanges.

use serde_json::{Map, Value};

use super::{Admin, AdminError, AdminResult, PolicyView};
use crate::policy::{ApplyTo, Policy, PolicyKind};
use crate::replication::MetadataChange;

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
        // Checked here, so that every node accepts what is proposed.
        let text = Value::Object(definition.clone()).to_string();
        Policy::new(kind(operator), vhost, name, pattern, apply_to, priority, definition)
            .map_err(AdminError::BadRequest)?;
        let created = self.broker.policies.get(kind(operator), vhost, name).is_none();
        self.change(MetadataChange::PutPolicy {
            operator,
            vhost: vhost.to_string(),
            name: name.to_string(),
            pattern: pattern.to_string(),
            apply_to: apply_to.as_str().to_string(),
            priority,
            definition: text,
        })?;
        Ok(created)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_put_policy(
        &self,
        operator: bool,
        vhost: &str,
        name: &str,
        pattern: &str,
        apply_to: &str,
        priority: i64,
        definition: &str,
    ) -> AdminResult<()> {
        let definition = match serde_json::from_str(definition) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(AdminError::BadRequest(format!(
                    "policy '{name}': a definition that is not an object"
                )))
            }
        };
        let apply_to = ApplyTo::parse(apply_to).unwrap_or(ApplyTo::All);
        let policy = Policy::new(kind(operator), vhost, name, pattern, apply_to, priority, definition)
            .map_err(AdminError::BadRequest)?;
        self.broker.policies.put(policy);
        self.broker.policies_changed(vhost);
        Ok(())
    }

    pub fn delete_policy(&self, operator: bool, vhost: &str, name: &str) -> AdminResult<()> {
        if self.broker.policies.get(kind(operator), vhost, name).is_none() {
            return Err(AdminError::NotFound);
        }
        self.change(MetadataChange::DeletePolicy {
            operator,
            vhost: vhost.to_string(),
            name: name.to_string(),
        })
    }

    pub(super) fn apply_delete_policy(&self, operator: bool, vhost: &str, name: &str) {
        if self.broker.policies.delete(kind(operator), vhost, name) {
            self.broker.policies_changed(vhost);
        }
    }
}
