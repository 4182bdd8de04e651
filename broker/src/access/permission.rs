//! Permissions: what a user may do in a vhost (configure, write and read
//! regular expressions over resource names) and on topic exchanges (write
//! and read expressions over routing keys), checked as RabbitMQ's internal
//! authorisation backend checks them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The three kinds of access RabbitMQ distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Operation {
    /// Create, delete or change a resource.
    Configure,
    /// Put messages into it (publish, bind to it as destination).
    Write,
    /// Take messages out of it (consume, get, purge, bind from it).
    Read,
}

/// What a permission is checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ResourceKind {
    Exchange,
    Queue,
}

impl ResourceKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Exchange => "exchange",
            ResourceKind::Queue => "queue",
        }
    }
}

/// A regular expression over names, kept with its source text. As in
/// RabbitMQ, it matches anywhere in the name (anchor it with `^...$`), and
/// the empty expression matches only the empty name.
#[derive(Clone)]
pub(crate) struct Pattern {
    source: String,
    /// None for ".*" and "^.*" and the like, which match every name: the
    /// common case, checked without running a regex.
    regex: Option<regex::Regex>,
}

impl Pattern {
    pub(crate) fn new(source: &str) -> Result<Pattern, String> {
        let effective = if source.is_empty() { "^$" } else { source };
        let regex = if matches!(effective, ".*" | "^.*" | ".*$" | "^.*$") {
            None
        } else {
            Some(regex::Regex::new(effective).map_err(|e| format!("invalid regular expression '{source}': {e}"))?)
        };
        Ok(Pattern {
            source: source.to_string(),
            regex,
        })
    }

    /// Matches everything.
    pub(crate) fn all() -> Pattern {
        Pattern {
            source: ".*".to_string(),
            regex: None,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        self.regex.as_ref().is_none_or(|r| r.is_match(name))
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Pattern::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A user's permissions in one vhost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Permissions {
    pub configure: Pattern,
    pub write: Pattern,
    pub read: Pattern,
}

impl Permissions {
    /// ".*" for all three: what the default user gets on the default vhost.
    pub(crate) fn full() -> Permissions {
        Permissions {
            configure: Pattern::all(),
            write: Pattern::all(),
            read: Pattern::all(),
        }
    }

    pub(crate) fn allows(&self, operation: Operation, name: &str) -> bool {
        match operation {
            Operation::Configure => self.configure.matches(name),
            Operation::Write => self.write.matches(name),
            Operation::Read => self.read.matches(name),
        }
    }
}

/// A user's permissions on one topic exchange of a vhost: expressions
/// over routing keys, in which `{username}`, `{vhost}` and `{client_id}`
/// stand for the connection's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TopicPermissions {
    pub exchange: String,
    pub write: String,
    pub read: String,
}

/// What a topic permission's variables expand to for one connection.
pub(crate) struct TopicContext<'a> {
    pub username: &'a str,
    pub vhost: &'a str,
    pub client_id: Option<&'a str>,
}

impl TopicPermissions {
    /// Whether `routing_key` may be used for `operation` (write: publish,
    /// read: bind a queue). An expression that does not compile after
    /// expansion refuses, as RabbitMQ's does.
    pub(crate) fn allows(&self, operation: Operation, routing_key: &str, context: &TopicContext<'_>) -> bool {
        let source = match operation {
            Operation::Write => &self.write,
            Operation::Read => &self.read,
            Operation::Configure => return true,
        };
        let mut expanded = source
            .replace("{username}", &regex::escape(context.username))
            .replace("{vhost}", &regex::escape(context.vhost));
        if let Some(client_id) = context.client_id {
            expanded = expanded.replace("{client_id}", &regex::escape(client_id));
        }
        Pattern::new(&expanded).is_ok_and(|p| p.matches(routing_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_anywhere_and_empty_matches_only_empty() {
        let p = Pattern::new("^app-").unwrap();
        assert!(p.matches("app-1"));
        assert!(!p.matches("my-app-1"));
        let p = Pattern::new("app").unwrap();
        assert!(p.matches("my-app-1"));
        let p = Pattern::new("").unwrap();
        assert!(p.matches(""));
        assert!(!p.matches("q"));
        assert!(Pattern::all().matches("anything"));
        assert!(Pattern::new("(").is_err());
    }

    #[test]
    fn topic_permissions_expand_variables() {
        let perms = TopicPermissions {
            exchange: "amq.topic".into(),
            write: "^{username}\\.".into(),
            read: ".*".into(),
        };
        let context = TopicContext {
            username: "bob",
            vhost: "/",
            client_id: None,
        };
        assert!(perms.allows(Operation::Write, "bob.logs", &context));
        assert!(!perms.allows(Operation::Write, "alice.logs", &context));
        assert!(perms.allows(Operation::Read, "alice.logs", &context));
    }
}
