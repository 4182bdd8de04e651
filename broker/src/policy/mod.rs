//! Policies and operator policies: per vhost, a pattern over queue or
//! exchange names and a definition of settings (message TTL, length
//! limits, dead-lettering, alternate exchange...) that apply to the
//! matching queues and exchanges, live, as RabbitMQ's do.
//!
//! [`Policies`] keeps them in memory and in the store's settings. Which
//! policy applies to a queue or exchange is [`Policies::matching`]'s
//! answer: the highest-priority match of each kind. How a definition turns
//! into a queue's arguments is the queue's business (`queue/effective.rs`).

mod definition;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use warren_store::Store;

/// What a policy applies to (`apply-to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ApplyTo {
    #[serde(rename = "queues")]
    Queues,
    #[serde(rename = "classic_queues")]
    ClassicQueues,
    #[serde(rename = "quorum_queues")]
    QuorumQueues,
    #[serde(rename = "streams")]
    Streams,
    #[serde(rename = "exchanges")]
    Exchanges,
    #[serde(rename = "all")]
    All,
}

impl ApplyTo {
    pub(crate) fn parse(text: &str) -> Option<ApplyTo> {
        serde_json::from_value(Value::String(text.to_string())).ok()
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ApplyTo::Queues => "queues",
            ApplyTo::ClassicQueues => "classic_queues",
            ApplyTo::QuorumQueues => "quorum_queues",
            ApplyTo::Streams => "streams",
            ApplyTo::Exchanges => "exchanges",
            ApplyTo::All => "all",
        }
    }
}

/// Whether a policy is an operator's (whose numeric limits cap what
/// users and their policies set) or a user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum PolicyKind {
    User,
    Operator,
}

impl PolicyKind {
    fn key_prefix(self) -> &'static str {
        match self {
            PolicyKind::User => "policy",
            PolicyKind::Operator => "operator-policy",
        }
    }
}

/// What a policy can be applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A queue of this type ("classic", "quorum").
    Queue(&'static str),
    Exchange,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Policy {
    pub kind: PolicyKind,
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    #[serde(rename = "apply-to")]
    pub apply_to: ApplyTo,
    pub priority: i64,
    pub definition: Map<String, Value>,
    #[serde(skip)]
    compiled: Option<regex::Regex>,
}

impl Policy {
    /// A checked policy: its pattern compiles and its definition holds
    /// only keys its kind may set.
    pub(crate) fn new(
        kind: PolicyKind,
        vhost: &str,
        name: &str,
        pattern: &str,
        apply_to: ApplyTo,
        priority: i64,
        definition: Map<String, Value>,
    ) -> Result<Policy, String> {
        definition::validate(&definition, kind == PolicyKind::Operator)?;
        let definition = crate::json::sorted_by_key(definition);
        let compiled =
            regex::Regex::new(pattern).map_err(|e| format!("invalid regular expression '{pattern}': {e}"))?;
        Ok(Policy {
            kind,
            vhost: vhost.to_string(),
            name: name.to_string(),
            pattern: pattern.to_string(),
            apply_to,
            priority,
            definition,
            compiled: Some(compiled),
        })
    }

    fn applies_to(&self, target: Target, name: &str) -> bool {
        let kind_matches = matches!(
            (self.apply_to, target),
            (ApplyTo::All, _)
                | (ApplyTo::Exchanges, Target::Exchange)
                | (ApplyTo::Queues, Target::Queue(_))
                | (ApplyTo::ClassicQueues, Target::Queue("classic"))
                | (ApplyTo::QuorumQueues, Target::Queue("quorum"))
                | (ApplyTo::Streams, Target::Queue("stream"))
        );
        kind_matches && self.compiled.as_ref().is_some_and(|r| r.is_match(name))
    }
}

/// The policies that apply to one queue or exchange.
#[derive(Debug, Clone, Default)]
pub(crate) struct Applied {
    pub policy: Option<Arc<Policy>>,
    pub operator_policy: Option<Arc<Policy>>,
}

pub(crate) struct Policies {
    all: RwLock<BTreeMap<(PolicyKind, String, String), Arc<Policy>>>,
    store: Option<Arc<dyn Store>>,
}

fn store_key(kind: PolicyKind, vhost: &str, name: &str) -> String {
    format!("{}/{vhost}\u{0}{name}", kind.key_prefix())
}

impl Policies {
    /// The policies in the store's settings.
    pub(crate) fn load(store: Option<Arc<dyn Store>>, settings: &[(String, Vec<u8>)]) -> Policies {
        let mut all = BTreeMap::new();
        for (key, value) in settings {
            if !(key.starts_with("policy/") || key.starts_with("operator-policy/")) {
                continue;
            }
            let loaded = serde_json::from_slice::<Policy>(value)
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    Policy::new(
                        p.kind,
                        &p.vhost,
                        &p.name,
                        &p.pattern,
                        p.apply_to,
                        p.priority,
                        p.definition,
                    )
                });
            match loaded {
                Ok(p) => {
                    all.insert((p.kind, p.vhost.clone(), p.name.clone()), Arc::new(p));
                }
                Err(e) => tracing::error!("ignoring the stored policy {key:?}: {e}"),
            }
        }
        Policies {
            all: RwLock::new(all),
            store,
        }
    }

    /// Every policy of a kind (of one vhost, if named).
    pub(crate) fn list(&self, kind: PolicyKind, vhost: Option<&str>) -> Vec<Arc<Policy>> {
        self.all
            .read()
            .values()
            .filter(|p| p.kind == kind && vhost.is_none_or(|v| v == p.vhost))
            .cloned()
            .collect()
    }

    pub(crate) fn get(&self, kind: PolicyKind, vhost: &str, name: &str) -> Option<Arc<Policy>> {
        self.all
            .read()
            .get(&(kind, vhost.to_string(), name.to_string()))
            .cloned()
    }

    /// Adds or replaces a policy; true if it is new.
    pub(crate) fn put(&self, policy: Policy) -> bool {
        let key = store_key(policy.kind, &policy.vhost, &policy.name);
        let value = serde_json::to_vec(&policy).unwrap_or_default();
        let id = (policy.kind, policy.vhost.clone(), policy.name.clone());
        let created = self.all.write().insert(id, Arc::new(policy)).is_none();
        if let Some(store) = &self.store {
            if let Err(e) = store.save_setting(&key, &value) {
                tracing::error!("store write failed for {key:?}: {e}");
            }
        }
        created
    }

    /// Removes a policy; false if there was none.
    pub(crate) fn delete(&self, kind: PolicyKind, vhost: &str, name: &str) -> bool {
        let removed = self
            .all
            .write()
            .remove(&(kind, vhost.to_string(), name.to_string()))
            .is_some();
        if removed {
            if let Some(store) = &self.store {
                let key = store_key(kind, vhost, name);
                if let Err(e) = store.delete_setting(&key) {
                    tracing::error!("store write failed for {key:?}: {e}");
                }
            }
        }
        removed
    }

    /// Forgets every policy of a deleted vhost.
    pub(crate) fn delete_vhost(&self, vhost: &str) {
        let names: Vec<(PolicyKind, String)> = self
            .all
            .read()
            .values()
            .filter(|p| p.vhost == vhost)
            .map(|p| (p.kind, p.name.clone()))
            .collect();
        for (kind, name) in names {
            self.delete(kind, vhost, &name);
        }
    }

    /// The policy and the operator policy that apply to a queue or an
    /// exchange: of each kind, the matching one with the highest priority
    /// (ties go to the name that sorts first).
    pub(crate) fn matching(&self, vhost: &str, target: Target, name: &str) -> Applied {
        let all = self.all.read();
        let best = |kind: PolicyKind| {
            all.values()
                .filter(|p| p.kind == kind && p.vhost == vhost && p.applies_to(target, name))
                .fold(None::<&Arc<Policy>>, |best, p| match best {
                    Some(b) if b.priority >= p.priority => Some(b),
                    _ => Some(p),
                })
                .cloned()
        };
        Applied {
            policy: best(PolicyKind::User),
            operator_policy: best(PolicyKind::Operator),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, pattern: &str, apply_to: ApplyTo, priority: i64) -> Policy {
        let definition = json!({"message-ttl": 1000}).as_object().cloned().unwrap();
        Policy::new(PolicyKind::User, "/", name, pattern, apply_to, priority, definition).unwrap()
    }

    #[test]
    fn the_highest_priority_match_of_the_right_kind_applies() {
        let policies = Policies::load(None, &[]);
        policies.put(policy("low", "^orders", ApplyTo::Queues, 1));
        policies.put(policy("high", "^orders\\.", ApplyTo::All, 5));
        policies.put(policy("exchanges", ".*", ApplyTo::Exchanges, 9));
        policies.put(policy("quorum", ".*", ApplyTo::QuorumQueues, 7));
        let name = |a: Applied| a.policy.map(|p| p.name.clone());
        assert_eq!(
            name(policies.matching("/", Target::Queue("classic"), "orders.new")),
            Some("high".into())
        );
        assert_eq!(
            name(policies.matching("/", Target::Queue("classic"), "orders")),
            Some("low".into())
        );
        assert_eq!(
            name(policies.matching("/", Target::Queue("quorum"), "orders")),
            Some("quorum".into())
        );
        assert_eq!(
            name(policies.matching("/", Target::Exchange, "x")),
            Some("exchanges".into())
        );
        assert_eq!(name(policies.matching("other", Target::Exchange, "x")), None);
        assert!(policies.delete(PolicyKind::User, "/", "high"));
        assert_eq!(
            name(policies.matching("/", Target::Queue("classic"), "orders.new")),
            Some("low".into())
        );
    }
}
