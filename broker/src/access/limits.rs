//! Vhost limits (max-connections, max-queues) and user limits
//! (max-connections, max-channels): named integers, a negative one meaning
//! no limit, checked as RabbitMQ 3.10 checks them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitScope {
    Vhost,
    User,
}

impl LimitScope {
    fn names(self) -> &'static [&'static str] {
        match self {
            LimitScope::Vhost => &["max-connections", "max-queues"],
            LimitScope::User => &["max-connections", "max-channels"],
        }
    }
}

/// One vhost's or user's limits, the most recently set first (the order
/// RabbitMQ lists them in).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Limits(pub Vec<(String, i64)>);

impl Limits {
    pub(crate) fn set(&mut self, name: &str, value: i64) {
        self.0.retain(|(n, _)| n != name);
        self.0.insert(0, (name.to_string(), value));
    }

    pub(crate) fn clear(&mut self, name: &str) {
        self.0.retain(|(n, _)| n != name);
    }

    /// The limit named `name`, if one is set and not negative.
    pub(crate) fn get(&self, name: &str) -> Option<u64> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| u64::try_from(*v).ok())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks a limit as set over the API; the error is RabbitMQ's message.
pub(crate) fn validate(scope: LimitScope, name: &str, value: &Value) -> Result<i64, String> {
    if !scope.names().contains(&name) {
        return Err(format!(
            "Validation failed\n\nUnrecognised terms [{{<<\"{name}\">>,{value}}}] in limits\n"
        ));
    }
    value.as_i64().ok_or_else(|| {
        let shown = match value {
            Value::String(s) => format!("<<\"{s}\">>"),
            other => other.to_string(),
        };
        format!("Validation failed\n\n{name} should be a number, actually was {shown}\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits_keep_the_newest_first_and_negative_means_none() {
        let mut limits = Limits::default();
        limits.set("max-connections", 2);
        limits.set("max-queues", -1);
        assert_eq!(limits.0[0].0, "max-queues");
        assert_eq!(limits.get("max-connections"), Some(2));
        assert_eq!(limits.get("max-queues"), None);
        assert!(validate(LimitScope::Vhost, "max-widgets", &json!(2)).is_err());
        assert!(validate(LimitScope::User, "max-channels", &json!("many")).is_err());
        assert_eq!(validate(LimitScope::User, "max-channels", &json!(3)), Ok(3));
    }
}
