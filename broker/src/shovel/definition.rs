//! A dynamic shovel's definition: the JSON value of a `shovel` runtime
//! parameter, checked as RabbitMQ 3.10's shovel plugin checks it (same
//! keys, same validation messages) and turned into what the mover needs.
//!
//! Warren's shovels move messages within this broker: the URIs name a
//! vhost of this broker (`amqp://` for `/`, `amqp:///vhost`); a URI with a
//! host is refused with a message that says so.

use serde_json::{Map, Value};

use crate::erlang::erlang_term;

/// Where messages are taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Queue(String),
    /// A queue of the shovel's own, bound to the exchange with the key.
    Exchange {
        name: String,
        key: String,
    },
}

/// Where messages are published to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// Through the default exchange, to this queue.
    Queue(String),
    /// To an exchange, with this routing key (the message's own if None).
    Exchange { name: String, key: Option<String> },
    /// To the exchange the message was published to, with its routing key.
    Original,
}

/// When the shovel deletes itself (`src-delete-after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeleteAfter {
    Never,
    /// After moving as many messages as the source held when it started.
    QueueLength,
    /// After moving this many.
    Count(u64),
}

/// A checked definition.
#[derive(Debug, Clone)]
pub(crate) struct Definition {
    pub source_vhost: String,
    pub source: Source,
    pub destination_vhost: String,
    pub destination: Destination,
    pub delete_after: DeleteAfter,
    /// How many messages are moved in one batch (`src-prefetch-count`).
    pub batch: usize,
    pub add_forward_headers: bool,
    pub add_timestamp_header: bool,
    /// `src-predeclared`/`dest-predeclared` (RabbitMQ 3.12+): the queues
    /// must exist; the shovel declares nothing.
    pub source_predeclared: bool,
    pub destination_predeclared: bool,
    /// `dest-publish-properties`: properties set on every message moved.
    pub publish_properties: Map<String, Value>,
    /// The value as given, for the API.
    pub value: Map<String, Value>,
}

/// Keys RabbitMQ 3.10's shovel accepts for AMQP 0-9-1 shovels.
const KNOWN: &[&str] = &[
    "src-uri",
    "src-protocol",
    "src-queue",
    "src-exchange",
    "src-exchange-key",
    "src-prefetch-count",
    "src-delete-after",
    "src-consumer-args",
    "src-predeclared",
    "dest-uri",
    "dest-protocol",
    "dest-queue",
    "dest-exchange",
    "dest-exchange-key",
    "dest-add-forward-headers",
    "dest-add-timestamp-header",
    "dest-publish-properties",
    "dest-queue-args",
    "dest-predeclared",
    "ack-mode",
    "reconnect-delay",
    "add-forward-headers",
    "add-timestamp-header",
    "publish-properties",
    "publish-fields",
    "delete-after",
    "prefetch-count",
];

/// The most messages moved in one batch, whatever the prefetch says.
const MAX_BATCH: usize = 1000;

fn failed(message: String) -> String {
    format!("Validation failed\n\n{message}\n")
}

fn text<'a>(value: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match value.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(failed(format!(
            "{key} should be binary, actually was {}",
            erlang_term(other)
        ))),
    }
}

fn flag(value: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match value.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(failed(format!(
            "{key} should be boolean, actually was {}",
            erlang_term(other)
        ))),
    }
}

/// The vhost a URI names on this broker.
fn local_vhost(key: &str, value: &Map<String, Value>, name: &str) -> Result<String, String> {
    let uri = match value.get(key) {
        None => return Err(failed(format!("Key \"{key}\" not found in {name}"))),
        Some(Value::String(uri)) => uri.as_str(),
        Some(Value::Array(uris)) => match uris.first() {
            Some(Value::String(uri)) => uri.as_str(),
            _ => return Err(failed(format!("{key} should be a URI or a list of URIs"))),
        },
        Some(other) => {
            return Err(failed(format!(
                "{key} should be binary, actually was {}",
                erlang_term(other)
            )))
        }
    };
    let (scheme, rest) = uri.split_once("://").unwrap_or((uri, ""));
    if scheme != "amqp" && scheme != "amqps" {
        return Err(failed(format!(
            "\"{uri}\" not a valid URI: {{{{unexpected_uri_scheme,\"{scheme}\"}},\"{uri}\"}}"
        )));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.split(['?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if !host.is_empty() {
        return Err(failed(format!(
            "{key} \"{uri}\" names another host: Warren's shovels move messages within this broker \
             (use amqp:// for the vhost \"/\", or amqp:///vhost)"
        )));
    }
    if path.is_empty() {
        return Ok("/".to_string());
    }
    percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| failed(format!("\"{uri}\" not a valid URI: the vhost is not UTF-8")))
}

fn delete_after(value: &Value) -> Result<DeleteAfter, String> {
    match value {
        Value::String(s) if s == "never" => Ok(DeleteAfter::Never),
        Value::String(s) if s == "queue-length" => Ok(DeleteAfter::QueueLength),
        Value::Number(n) if n.as_u64().is_some() => Ok(DeleteAfter::Count(n.as_u64().unwrap_or(0))),
        other => Err(failed(format!(
            "src-delete-after should be a number greater than or equal to 0, \"never\" or \"queue-length\", \
             actually was {}",
            erlang_term(other)
        ))),
    }
}

impl Definition {
    /// Checks the value of the shovel `name`; the error is RabbitMQ's.
    pub(crate) fn parse(name: &str, value: &Map<String, Value>) -> Result<Definition, String> {
        let source_vhost = local_vhost("src-uri", value, name)?;
        let destination_vhost = local_vhost("dest-uri", value, name)?;
        for key in ["src-protocol", "dest-protocol"] {
            match text(value, key)? {
                None | Some("amqp091") => {}
                Some(other) => {
                    return Err(failed(format!(
                        "{key} \"{other}\" is not supported: Warren's shovels speak AMQP 0-9-1 (amqp091)"
                    )))
                }
            }
        }
        let source = match (text(value, "src-queue")?, text(value, "src-exchange")?) {
            (Some(_), Some(_)) => return Err(failed("Cannot specify 'src-exchange' and 'src-queue'".into())),
            (None, None) => return Err(failed("Must specify 'src-exchange' or 'src-queue'".into())),
            (Some(queue), None) => Source::Queue(queue.to_string()),
            (None, Some(exchange)) => Source::Exchange {
                name: exchange.to_string(),
                key: text(value, "src-exchange-key")?.unwrap_or("#").to_string(),
            },
        };
        let destination = match (text(value, "dest-queue")?, text(value, "dest-exchange")?) {
            (Some(_), Some(_)) => return Err(failed("Cannot specify 'dest-exchange' and 'dest-queue'".into())),
            (Some(queue), None) => Destination::Queue(queue.to_string()),
            (None, Some(exchange)) => Destination::Exchange {
                name: exchange.to_string(),
                key: text(value, "dest-exchange-key")?.map(str::to_string),
            },
            (None, None) => Destination::Original,
        };
        let delete_after = match value.get("src-delete-after").or_else(|| value.get("delete-after")) {
            None => DeleteAfter::Never,
            Some(v) => delete_after(v)?,
        };
        if let Some(mode) = value.get("ack-mode") {
            if !matches!(mode.as_str(), Some("no-ack" | "on-publish" | "on-confirm")) {
                return Err(failed(format!(
                    "ack-mode should be one of [<<\"no-ack\">>,<<\"on-publish\">>,<<\"on-confirm\">>], actually was {}",
                    erlang_term(mode)
                )));
            }
        }
        let prefetch = value
            .get("src-prefetch-count")
            .or_else(|| value.get("prefetch-count"))
            .and_then(Value::as_u64)
            .unwrap_or(MAX_BATCH as u64);
        let add_forward_headers = flag(value, "dest-add-forward-headers")? || flag(value, "add-forward-headers")?;
        let add_timestamp_header = flag(value, "dest-add-timestamp-header")? || flag(value, "add-timestamp-header")?;
        let publish_properties = match value
            .get("dest-publish-properties")
            .or_else(|| value.get("publish-properties"))
        {
            None => Map::new(),
            Some(Value::Object(p)) => p.clone(),
            Some(other) => {
                return Err(failed(format!(
                    "dest-publish-properties should be an object, actually was {}",
                    erlang_term(other)
                )))
            }
        };
        let unknown: Vec<String> = value
            .iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
            .map(|(k, v)| format!("{{<<\"{k}\">>,{}}}", erlang_term(v)))
            .collect();
        if !unknown.is_empty() {
            return Err(failed(format!("Unrecognised terms [{}] in {name}", unknown.join(","))));
        }
        Ok(Definition {
            source_vhost,
            source,
            destination_vhost,
            destination,
            delete_after,
            batch: (prefetch as usize).clamp(1, MAX_BATCH),
            add_forward_headers,
            add_timestamp_header,
            source_predeclared: flag(value, "src-predeclared")?,
            destination_predeclared: flag(value, "dest-predeclared")?,
            publish_properties,
            value: value.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Definition, String> {
        Definition::parse("s", value.as_object().unwrap())
    }

    #[test]
    fn a_move_between_local_queues_parses() {
        let d = parse(
            json!({"src-uri": "amqp://", "src-queue": "dlq", "dest-uri": "amqp:///%2F",
            "dest-queue": "work", "src-delete-after": "queue-length", "ack-mode": "on-confirm"}),
        )
        .unwrap();
        assert_eq!(d.source, Source::Queue("dlq".into()));
        assert_eq!(d.destination, Destination::Queue("work".into()));
        assert_eq!((d.source_vhost.as_str(), d.destination_vhost.as_str()), ("/", "/"));
        assert_eq!(d.delete_after, DeleteAfter::QueueLength);
        let d = parse(
            json!({"src-uri": "amqp:///v%201", "src-exchange": "x", "dest-uri": "amqp://",
            "dest-exchange": "y", "src-delete-after": 5}),
        )
        .unwrap();
        assert_eq!(d.source_vhost, "v 1");
        assert_eq!(
            d.source,
            Source::Exchange {
                name: "x".into(),
                key: "#".into()
            }
        );
        assert_eq!(d.delete_after, DeleteAfter::Count(5));
    }

    #[test]
    fn errors_read_as_rabbitmq_writes_them() {
        let err = |v: Value| parse(v).unwrap_err();
        assert_eq!(
            err(json!({"src-queue": "q", "dest-uri": "amqp://"})),
            "Validation failed\n\nKey \"src-uri\" not found in s\n"
        );
        assert_eq!(
            err(json!({"src-uri": "amqp://", "dest-uri": "amqp://"})),
            "Validation failed\n\nMust specify 'src-exchange' or 'src-queue'\n"
        );
        assert_eq!(
            err(json!({"src-uri": "foo://bar", "src-queue": "q", "dest-uri": "amqp://"})),
            "Validation failed\n\n\"foo://bar\" not a valid URI: {{unexpected_uri_scheme,\"foo\"},\"foo://bar\"}\n"
        );
        assert_eq!(
            err(json!({"src-uri": "amqp://", "src-queue": "q", "dest-uri": "amqp://", "src-delete-after": "x"})),
            "Validation failed\n\nsrc-delete-after should be a number greater than or equal to 0, \"never\" \
             or \"queue-length\", actually was <<\"x\">>\n"
        );
        assert_eq!(
            err(json!({"src-uri": "amqp://", "src-queue": "q", "dest-uri": "amqp://", "bogus": 1})),
            "Validation failed\n\nUnrecognised terms [{<<\"bogus\">>,1}] in s\n"
        );
        assert!(
            err(json!({"src-uri": "amqp://h:5672", "src-queue": "q", "dest-uri": "amqp://"}))
                .contains("within this broker")
        );
    }
}
