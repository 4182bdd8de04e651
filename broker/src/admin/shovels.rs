//! Dynamic shovels through the admin interface: RabbitMQ's `shovel`
//! runtime parameters and the shovel status it lists.

use serde_json::{json, Map, Value};

use super::{Admin, AdminError, AdminResult};
pub use crate::shovel::{ShovelState, ShovelView};

impl Admin {
    /// Every shovel (of one vhost, which must exist, if named).
    pub fn shovels(&self, vhost: Option<&str>) -> AdminResult<Vec<ShovelView>> {
        if let Some(v) = vhost {
            self.vhost(v)?;
        }
        Ok(self.broker.shovels.list(vhost))
    }

    pub fn shovel(&self, vhost: &str, name: &str) -> AdminResult<ShovelView> {
        self.shovels(Some(vhost))?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or(AdminError::NotFound)
    }

    /// Defines (or redefines) a shovel and starts it; true if it is new.
    /// A value RabbitMQ would refuse is refused with its message.
    pub fn put_shovel(&self, vhost: &str, name: &str, value: &Value) -> AdminResult<bool> {
        self.vhost(vhost)?;
        let Some(value) = value.as_object() else {
            return Err(AdminError::BadRequest(format!(
                "Validation failed\n\nthe value of shovel {name} must be an object\n"
            )));
        };
        self.broker
            .shovels
            .put(vhost, name, value.clone())
            .map_err(AdminError::BadRequest)
    }

    /// Stops and deletes a shovel.
    pub fn delete_shovel(&self, vhost: &str, name: &str) -> AdminResult<()> {
        self.vhost(vhost)?;
        if self.broker.shovels.delete(vhost, name) {
            Ok(())
        } else {
            Err(AdminError::NotFound)
        }
    }

    /// Restarts a shovel's mover.
    pub fn restart_shovel(&self, vhost: &str, name: &str) -> AdminResult<()> {
        self.vhost(vhost)?;
        if self.broker.shovels.restart(vhost, name) {
            Ok(())
        } else {
            Err(AdminError::NotFound)
        }
    }

    /// The shovels as runtime parameters, as RabbitMQ lists them.
    pub fn shovel_parameters(&self, vhost: Option<&str>) -> AdminResult<Vec<Value>> {
        Ok(self
            .shovels(vhost)?
            .into_iter()
            .map(|s| shovel_parameter(&s.vhost, &s.name, s.value))
            .collect())
    }
}

/// One shovel as a runtime parameter object.
pub(crate) fn shovel_parameter(vhost: &str, name: &str, value: Map<String, Value>) -> Value {
    json!({ "value": value, "vhost": vhost, "component": "shovel", "name": name })
}
