//! The list_* commands: what each lists, from which endpoint, and the
//! rabbitmqctl column names mapped onto the API's fields.

use serde_json::{Map, Value};

use crate::api::{segment, Api};

/// A kind of object warrenctl lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listed {
    Queues,
    Exchanges,
    Bindings,
    Connections,
    Channels,
    Consumers,
    Users,
    Vhosts,
    Permissions,
    Policies,
    Parameters,
    Shovels,
}

impl Listed {
    /// rabbitmqctl's default columns.
    pub(crate) fn default_columns(self) -> &'static [&'static str] {
        match self {
            Listed::Queues => &["name", "messages"],
            Listed::Exchanges => &["name", "type"],
            Listed::Bindings => &[
                "source_name",
                "source_kind",
                "destination_name",
                "destination_kind",
                "routing_key",
                "arguments",
            ],
            Listed::Connections => &["user", "peer_host", "peer_port", "state"],
            Listed::Channels => &["name", "user", "consumer_count", "messages_unacknowledged"],
            Listed::Consumers => &[
                "queue_name",
                "channel_pid",
                "consumer_tag",
                "ack_required",
                "prefetch_count",
                "active",
                "arguments",
            ],
            Listed::Users => &["user", "tags"],
            Listed::Vhosts => &["name"],
            Listed::Permissions => &["user", "configure", "write", "read"],
            Listed::Policies => &["vhost", "name", "pattern", "apply-to", "definition", "priority"],
            Listed::Parameters => &["component", "name", "value"],
            Listed::Shovels => &[
                "name",
                "vhost",
                "type",
                "state",
                "source",
                "destination",
                "last_changed",
            ],
        }
    }

    /// What the listing says it lists, as rabbitmqctl's info line does.
    pub(crate) fn title(self, vhost: &str) -> String {
        match self {
            Listed::Queues => format!("Listing queues for vhost {vhost} ..."),
            Listed::Exchanges => format!("Listing exchanges for vhost {vhost} ..."),
            Listed::Bindings => format!("Listing bindings for vhost {vhost}..."),
            Listed::Connections => "Listing connections ...".into(),
            Listed::Channels => "Listing channels ...".into(),
            Listed::Consumers => format!("Listing consumers in vhost {vhost} ..."),
            Listed::Users => "Listing users ...".into(),
            Listed::Vhosts => "Listing vhosts ...".into(),
            Listed::Permissions => format!("Listing permissions for vhost \"{vhost}\" ..."),
            Listed::Policies => format!("Listing policies for vhost \"{vhost}\" ..."),
            Listed::Parameters => "Listing runtime parameters ...".into(),
            Listed::Shovels => "Shovel status on node ...".into(),
        }
    }

    fn path(self, vhost: &str) -> String {
        let v = segment(vhost);
        match self {
            Listed::Queues => format!("queues/{v}"),
            Listed::Exchanges => format!("exchanges/{v}"),
            Listed::Bindings => format!("bindings/{v}"),
            Listed::Connections => "connections".into(),
            Listed::Channels => "channels".into(),
            Listed::Consumers => format!("consumers/{v}"),
            Listed::Users => "users".into(),
            Listed::Vhosts => "vhosts".into(),
            Listed::Permissions => format!("vhosts/{v}/permissions"),
            Listed::Policies => format!("policies/{v}"),
            Listed::Parameters => format!("parameters/shovel/{v}"),
            Listed::Shovels => format!("shovels/{v}"),
        }
    }

    /// An API object with rabbitmqctl's column names added.
    fn columns_of(self, mut object: Map<String, Value>) -> Map<String, Value> {
        let get = |o: &Map<String, Value>, path: &[&str]| -> Value {
            path.iter()
                .try_fold(&Value::Object(o.clone()), |v, k| v.get(*k))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let aliases: Vec<(&str, Value)> = match self {
            Listed::Bindings => vec![
                ("source_name", get(&object, &["source"])),
                ("source_kind", Value::from("exchange")),
                ("destination_name", get(&object, &["destination"])),
                ("destination_kind", get(&object, &["destination_type"])),
            ],
            Listed::Consumers => vec![
                ("queue_name", get(&object, &["queue", "name"])),
                ("channel_pid", get(&object, &["channel_details", "name"])),
            ],
            Listed::Users => vec![("user", get(&object, &["name"]))],
            Listed::Channels => vec![("connection", get(&object, &["connection_details", "name"]))],
            Listed::Shovels => {
                let either = |a: &str, b: &str| {
                    let first = get(&object, &[a]);
                    if first.is_null() {
                        get(&object, &[b])
                    } else {
                        first
                    }
                };
                vec![
                    ("source", either("src_queue", "src_exchange")),
                    ("destination", either("dest_queue", "dest_exchange")),
                    ("last_changed", get(&object, &["timestamp"])),
                ]
            }
            _ => Vec::new(),
        };
        for (name, value) in aliases {
            object.entry(name.to_string()).or_insert(value);
        }
        object
    }

    /// The rows to print.
    pub(crate) fn rows(self, api: &Api, vhost: &str) -> Result<Vec<Map<String, Value>>, String> {
        let listed = api.get(&self.path(vhost))?;
        let items = listed.as_array().cloned().unwrap_or_default();
        Ok(items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(o) => Some(o),
                _ => None,
            })
            .filter(|o| match self {
                // rabbitmqctl lists one vhost's connections only with -p.
                Listed::Connections | Listed::Channels => true,
                _ => o.get("vhost").and_then(Value::as_str).is_none_or(|v| v == vhost) || self == Listed::Users,
            })
            .map(|o| self.columns_of(o))
            .collect())
    }
}
