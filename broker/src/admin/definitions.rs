//! RabbitMQ's definitions format (the JSON of `rabbitmqctl
//! export_definitions`, `GET /api/definitions` and `load_definitions`):
//! exported from the broker's state and imported into it, merging with
//! what is there.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::access::PasswordSpec;
use super::{Admin, AdminError, DestinationKind};

/// Why definitions could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DefinitionsError(pub String);

/// User tags: a list (3.9+) or one comma-separated string (older files).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Tags {
    List(Vec<String>),
    Text(String),
}

impl Tags {
    fn words(&self) -> Vec<String> {
        match self {
            Tags::List(words) => words.clone(),
            Tags::Text(text) => text
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserDef {
    name: String,
    #[serde(default)]
    password_hash: String,
    #[serde(default)]
    hashing_algorithm: Option<String>,
    #[serde(default = "no_tags")]
    tags: Tags,
    #[serde(default)]
    limits: Map<String, Value>,
}

fn no_tags() -> Tags {
    Tags::List(Vec::new())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct VhostDef {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_queue_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    limits: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PermissionDef {
    user: String,
    vhost: String,
    configure: String,
    write: String,
    read: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicPermissionDef {
    user: String,
    vhost: String,
    exchange: String,
    write: String,
    read: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PolicyDef {
    #[serde(default)]
    vhost: String,
    name: String,
    pattern: String,
    #[serde(rename = "apply-to", default = "apply_to_all")]
    apply_to: String,
    definition: Map<String, Value>,
    #[serde(default)]
    priority: i64,
}

fn apply_to_all() -> String {
    "all".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueueDef {
    name: String,
    #[serde(default)]
    vhost: String,
    #[serde(default = "yes")]
    durable: bool,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    arguments: Map<String, Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExchangeDef {
    name: String,
    #[serde(default)]
    vhost: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "yes")]
    durable: bool,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    arguments: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BindingDef {
    source: String,
    #[serde(default)]
    vhost: String,
    destination: String,
    destination_type: String,
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    arguments: Map<String, Value>,
}

/// A whole definitions file. Runtime parameters of the `shovel`
/// component are Warren's shovels; those of other components (federation)
/// are skipped on import, with a log line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Definitions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rabbit_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rabbitmq_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    product_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    users: Option<Vec<UserDef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vhosts: Option<Vec<VhostDef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    permissions: Option<Vec<PermissionDef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic_permissions: Option<Vec<TopicPermissionDef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parameters: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    global_parameters: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policies: Option<Vec<PolicyDef>>,
    #[serde(default)]
    queues: Vec<QueueDef>,
    #[serde(default)]
    exchanges: Vec<ExchangeDef>,
    #[serde(default)]
    bindings: Vec<BindingDef>,
}

/// The version the export says it comes from: RabbitMQ's, as Warren
/// answers clients as RabbitMQ 3.13 by default (RabbitMQ checks nothing
/// but that it parses).
const EXPORTED_VERSION: &str = "3.13.7";

impl Admin {
    fn limit_map(&self, vhost: bool, name: &str) -> Map<String, Value> {
        self.limits(vhost, Some(name))
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(_, limits)| limits)
            .map(|(k, v)| (k, Value::from(v)))
            .collect()
    }

    /// Everything (`vhost` None), or one vhost's queues, exchanges and
    /// bindings, as a RabbitMQ definitions document.
    pub fn export_definitions(&self, vhost: Option<&str>) -> Result<Value, AdminError> {
        let mut defs = Definitions {
            rabbit_version: Some(EXPORTED_VERSION.into()),
            rabbitmq_version: Some(EXPORTED_VERSION.into()),
            product_name: Some("RabbitMQ".into()),
            product_version: Some(EXPORTED_VERSION.into()),
            parameters: Some(self.shovel_parameters(vhost)?),
            policies: Some(
                self.policies(false, vhost)?
                    .into_iter()
                    .map(|p| PolicyDef {
                        vhost: p.vhost,
                        name: p.name,
                        pattern: p.pattern,
                        apply_to: p.apply_to.to_string(),
                        definition: p.definition,
                        priority: p.priority,
                    })
                    .collect(),
            ),
            ..Definitions::default()
        };
        if vhost.is_none() {
            defs.users = Some(
                self.users()
                    .into_iter()
                    .map(|u| UserDef {
                        name: u.name.clone(),
                        password_hash: u.password_hash,
                        hashing_algorithm: Some(u.hashing_algorithm.to_string()),
                        limits: self.limit_map(false, &u.name),
                        tags: Tags::List(u.tags),
                    })
                    .collect(),
            );
            defs.vhosts = Some(
                self.vhosts()
                    .into_iter()
                    .map(|v| {
                        let mut metadata = Map::new();
                        metadata.insert("description".into(), Value::String(v.description.clone()));
                        metadata.insert("tags".into(), Value::from(v.tags.clone()));
                        VhostDef {
                            name: v.name.clone(),
                            description: None,
                            tags: None,
                            default_queue_type: v.default_queue_type,
                            metadata: Some(metadata),
                            limits: self.limit_map(true, &v.name),
                        }
                    })
                    .collect(),
            );
            defs.permissions = Some(
                self.permissions()
                    .into_iter()
                    .map(|p| PermissionDef {
                        user: p.user,
                        vhost: p.vhost,
                        configure: p.configure,
                        write: p.write,
                        read: p.read,
                    })
                    .collect(),
            );
            defs.topic_permissions = Some(
                self.topic_permissions()
                    .into_iter()
                    .map(|p| TopicPermissionDef {
                        user: p.user,
                        vhost: p.vhost,
                        exchange: p.exchange,
                        write: p.write,
                        read: p.read,
                    })
                    .collect(),
            );
            defs.global_parameters = Some(Vec::new());
        }
        for q in self.queues(vhost)? {
            if q.exclusive {
                continue;
            }
            defs.queues.push(QueueDef {
                name: q.name,
                vhost: q.vhost,
                durable: q.durable,
                auto_delete: q.auto_delete,
                arguments: q.arguments,
            });
        }
        for x in self.exchanges(vhost)? {
            if x.name.is_empty() || x.name.starts_with("amq.") {
                continue;
            }
            defs.exchanges.push(ExchangeDef {
                name: x.name,
                vhost: x.vhost,
                kind: x.kind.to_string(),
                durable: x.durable,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: x.arguments,
            });
        }
        let exclusive: Vec<(String, String)> = self
            .queues(vhost)?
            .into_iter()
            .filter(|q| q.exclusive)
            .map(|q| (q.vhost, q.name))
            .collect();
        for b in self.bindings(vhost)? {
            let to_exclusive = b.destination_kind == DestinationKind::Queue
                && exclusive.iter().any(|(v, n)| *v == b.vhost && *n == b.destination);
            if b.source.is_empty() || to_exclusive {
                continue;
            }
            defs.bindings.push(BindingDef {
                source: b.source,
                vhost: b.vhost,
                destination: b.destination,
                destination_type: b.destination_kind.as_str().to_string(),
                routing_key: b.routing_key,
                arguments: b.arguments,
            });
        }
        serde_json::to_value(defs).map_err(|e| AdminError::BadRequest(e.to_string()))
    }

    /// Imports a definitions document, merging with what exists. With
    /// `vhost` given, the document's queues, exchanges and bindings all go
    /// to that vhost (RabbitMQ's per-vhost import).
    pub fn import_definitions(&self, document: &Value, vhost: Option<&str>) -> Result<(), DefinitionsError> {
        let defs: Definitions =
            serde_json::from_value(document.clone()).map_err(|e| DefinitionsError(format!("bad definitions: {e}")))?;
        let fail = |what: String, e: AdminError| DefinitionsError(format!("{what}: {e}"));
        for u in defs.users.iter().flatten() {
            let password = if u.password_hash.is_empty() {
                PasswordSpec::None
            } else {
                PasswordSpec::Hash {
                    hash: u.password_hash.clone(),
                    algorithm: u.hashing_algorithm.clone(),
                }
            };
            self.put_user(&u.name, password, &u.tags.words())
                .map_err(|e| fail(format!("user '{}'", u.name), e))?;
            for (limit, value) in &u.limits {
                self.set_limit(false, &u.name, limit, value)
                    .map_err(|e| fail(format!("limit of user '{}'", u.name), e))?;
            }
        }
        for v in defs.vhosts.iter().flatten() {
            let meta = v.metadata.as_ref();
            let description = v
                .description
                .clone()
                .or_else(|| meta.and_then(|m| m.get("description")?.as_str().map(String::from)));
            let tags = v.tags.clone().or_else(|| {
                meta.and_then(|m| {
                    m.get("tags")?
                        .as_array()
                        .map(|a| a.iter().filter_map(|t| t.as_str().map(String::from)).collect())
                })
            });
            self.put_vhost(&v.name, description, tags, v.default_queue_type.clone(), None)
                .map_err(|e| fail(format!("vhost '{}'", v.name), e))?;
            for (limit, value) in &v.limits {
                self.set_limit(true, &v.name, limit, value)
                    .map_err(|e| fail(format!("limit of vhost '{}'", v.name), e))?;
            }
        }
        for p in defs.permissions.iter().flatten() {
            self.set_permissions(&p.vhost, &p.user, &p.configure, &p.write, &p.read)
                .map_err(|e| fail(format!("permissions of '{}' in vhost '{}'", p.user, p.vhost), e))?;
        }
        for p in defs.topic_permissions.iter().flatten() {
            self.set_topic_permissions(&p.vhost, &p.user, &p.exchange, &p.write, &p.read)
                .map_err(|e| fail(format!("topic permissions of '{}' in vhost '{}'", p.user, p.vhost), e))?;
        }
        // Per-vhost documents leave the vhost out of their objects.
        let target = |v: &str| match (vhost, v) {
            (Some(forced), _) => forced.to_string(),
            (None, "") => "/".to_string(),
            (None, v) => v.to_string(),
        };
        for p in defs.policies.iter().flatten() {
            let v = target(&p.vhost);
            self.put_policy(
                false,
                &v,
                &p.name,
                &p.pattern,
                Some(&p.apply_to),
                p.priority,
                p.definition.clone(),
            )
            .map_err(|e| fail(format!("policy '{}' in vhost '{v}'", p.name), e))?;
        }
        for x in &defs.exchanges {
            let v = target(&x.vhost);
            self.declare_exchange(&v, &x.name, &x.kind, x.durable, x.auto_delete, x.internal, &x.arguments)
                .map_err(|e| fail(format!("exchange '{}' in vhost '{v}'", x.name), e))?;
        }
        for q in &defs.queues {
            let v = target(&q.vhost);
            self.declare_queue(&v, &q.name, q.durable, q.auto_delete, &q.arguments)
                .map_err(|e| fail(format!("queue '{}' in vhost '{v}'", q.name), e))?;
        }
        for b in &defs.bindings {
            let v = target(&b.vhost);
            let kind = match b.destination_type.as_str() {
                "queue" => DestinationKind::Queue,
                "exchange" => DestinationKind::Exchange,
                other => return Err(DefinitionsError(format!("unknown destination_type '{other}'"))),
            };
            self.bind(&v, &b.source, kind, &b.destination, &b.routing_key, &b.arguments)
                .map_err(|e| {
                    fail(
                        format!("binding from '{}' to '{}' in vhost '{v}'", b.source, b.destination),
                        e,
                    )
                })?;
        }
        // Runtime parameters last: a shovel's queues exist by now.
        for p in defs.parameters.iter().flatten() {
            let field = |key: &str| p.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
            let (component, name) = (field("component"), field("name"));
            let v = target(&field("vhost"));
            match component.as_str() {
                "shovel" => {
                    let value = p.get("value").cloned().unwrap_or(Value::Null);
                    self.put_shovel(&v, &name, &value)
                        .map_err(|e| fail(format!("shovel '{name}' in vhost '{v}'"), e))?;
                }
                other => tracing::warn!(
                    component = other,
                    name,
                    "definitions: a runtime parameter of a component Warren does not have was skipped"
                ),
            }
        }
        Ok(())
    }
}
