//! Exchanges: where publishes arrive and how they find their queues.
//!
//! Each exchange type keeps its bindings in the structure that makes its
//! routing fast (a hash map for direct, a list for fanout, a trie for topic,
//! pattern lists for headers, a hash ring for consistent-hash); one file
//! per type. Bindings sit behind a
//! read-write lock per exchange, so routing takes only a shared read lock.

mod binding;
mod consistent_hash;
mod direct;
mod fanout;
mod headers;
mod topic;

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use parking_lot::RwLock;
use warren_protocol::{BasicProperties, FieldTable, ShortStr};

pub(crate) use binding::{Binding, Destination};
use consistent_hash::{ConsistentHashRouter, HashOn};
use direct::DirectRouter;
use fanout::FanoutRouter;
use headers::HeadersRouter;
use topic::TopicRouter;

use crate::error::AmqpResult;
use crate::policy::Policy;
use crate::queue::Queue;

/// The four exchange types of AMQP 0-9-1, and RabbitMQ's consistent-hash
/// exchange (a plugin there, built in here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
    ConsistentHash,
}

impl ExchangeKind {
    pub(crate) fn parse(name: &str) -> Option<ExchangeKind> {
        match name {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            "x-consistent-hash" => Some(ExchangeKind::ConsistentHash),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
            ExchangeKind::ConsistentHash => "x-consistent-hash",
        }
    }
}

/// The routing structure of one exchange type.
///
/// Every router answers the same questions; `Router` just forwards to the
/// type's own file.
pub(crate) trait Route {
    /// Adds a binding; false if it already existed.
    fn bind(&mut self, binding: Binding) -> bool;
    /// Removes a binding; false if it did not exist.
    fn unbind(&mut self, binding: &Binding) -> bool;
    /// Removes every binding to `destination`, returning how many.
    fn remove_destination(&mut self, destination: &Destination) -> usize;
    /// Calls `found` for each destination the message matches (possibly
    /// more than once for one destination).
    fn route(&self, routing_key: &str, properties: &BasicProperties, found: &mut dyn FnMut(&Destination));
    fn bindings(&self) -> Vec<Binding>;
    fn is_empty(&self) -> bool;
}

#[derive(Debug)]
enum Router {
    Direct(DirectRouter),
    Fanout(FanoutRouter),
    Topic(TopicRouter),
    Headers(HeadersRouter),
    ConsistentHash(ConsistentHashRouter),
}

impl Router {
    fn new(kind: ExchangeKind, arguments: &FieldTable) -> Router {
        match kind {
            ExchangeKind::Direct => Router::Direct(DirectRouter::default()),
            ExchangeKind::Fanout => Router::Fanout(FanoutRouter::default()),
            ExchangeKind::Topic => Router::Topic(TopicRouter::default()),
            ExchangeKind::Headers => Router::Headers(HeadersRouter::default()),
            ExchangeKind::ConsistentHash => {
                // Checked at declaration ([`Exchange::validate_arguments`]).
                let hash_on = HashOn::from_arguments(arguments).unwrap_or(HashOn::RoutingKey);
                Router::ConsistentHash(ConsistentHashRouter::new(hash_on))
            }
        }
    }

    fn get(&self) -> &dyn Route {
        match self {
            Router::Direct(r) => r,
            Router::Fanout(r) => r,
            Router::Topic(r) => r,
            Router::Headers(r) => r,
            Router::ConsistentHash(r) => r,
        }
    }

    fn get_mut(&mut self) -> &mut dyn Route {
        match self {
            Router::Direct(r) => r,
            Router::Fanout(r) => r,
            Router::Topic(r) => r,
            Router::Headers(r) => r,
            Router::ConsistentHash(r) => r,
        }
    }
}

/// The declared properties of an exchange.
#[derive(Debug, Clone)]
pub(crate) struct ExchangeSettings {
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

#[derive(Debug)]
pub(crate) struct Exchange {
    pub name: ShortStr,
    pub settings: ExchangeSettings,
    /// From the `alternate-exchange` argument, or else a policy's: where
    /// unroutable messages go.
    alternate_exchange: ArcSwapOption<ShortStr>,
    /// The policy that applies to it.
    policy: ArcSwapOption<Policy>,
    router: RwLock<Router>,
}

impl Exchange {
    pub(crate) fn new(name: ShortStr, settings: ExchangeSettings) -> Arc<Exchange> {
        let alternate_exchange = settings
            .arguments
            .get("alternate-exchange")
            .and_then(|v| v.as_str())
            .map(ShortStr::from);
        Arc::new(Exchange {
            name,
            router: RwLock::new(Router::new(settings.kind, &settings.arguments)),
            settings,
            alternate_exchange: ArcSwapOption::from_pointee(alternate_exchange),
            policy: ArcSwapOption::empty(),
        })
    }

    /// Where unroutable messages go, if anywhere.
    pub(crate) fn alternate_exchange(&self) -> Option<ShortStr> {
        self.alternate_exchange.load().as_deref().cloned()
    }

    /// The policy that applies changed: its `alternate-exchange` counts
    /// unless the declaration named one.
    pub(crate) fn apply_policy(&self, policy: Option<Arc<Policy>>) {
        let declared = self
            .settings
            .arguments
            .get("alternate-exchange")
            .and_then(|v| v.as_str());
        let from_policy = policy
            .as_ref()
            .and_then(|p| p.definition.get("alternate-exchange"))
            .and_then(|v| v.as_str());
        let alternate = declared.or(from_policy).map(ShortStr::from);
        self.alternate_exchange.store(alternate.map(Arc::new));
        self.policy.store(policy);
    }

    /// The policy that applies to it now.
    pub(crate) fn policy(&self) -> Option<Arc<Policy>> {
        self.policy.load_full()
    }

    pub(crate) fn kind(&self) -> ExchangeKind {
        self.settings.kind
    }

    /// Checks a declaration's arguments as its type requires (the
    /// consistent-hash exchange's `hash-header` and `hash-property`).
    pub(crate) fn validate_arguments(kind: ExchangeKind, arguments: &FieldTable) -> AmqpResult<()> {
        match kind {
            ExchangeKind::ConsistentHash => HashOn::from_arguments(arguments).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Checks a new binding as the exchange's type requires (the headers
    /// exchange's `x-match`, the consistent-hash exchange's weight).
    pub(crate) fn validate_binding(&self, routing_key: &str, arguments: &FieldTable) -> AmqpResult<()> {
        match self.settings.kind {
            ExchangeKind::Headers => headers::validate_binding(arguments),
            ExchangeKind::ConsistentHash => consistent_hash::validate_binding(routing_key),
            ExchangeKind::Direct | ExchangeKind::Fanout | ExchangeKind::Topic => Ok(()),
        }
    }

    pub(crate) fn bind(&self, binding: Binding) -> bool {
        self.router.write().get_mut().bind(binding)
    }

    pub(crate) fn unbind(&self, binding: &Binding) -> bool {
        self.router.write().get_mut().unbind(binding)
    }

    pub(crate) fn remove_destination(&self, destination: &Destination) -> usize {
        self.router.write().get_mut().remove_destination(destination)
    }

    pub(crate) fn has_bindings(&self) -> bool {
        !self.router.read().get().is_empty()
    }

    pub(crate) fn bindings(&self) -> Vec<Binding> {
        self.router.read().get().bindings()
    }

    /// Finds the destinations of a message. Queues are added to `queues`
    /// (without duplicates); exchanges to route through next go to `exchanges`.
    pub(crate) fn route(
        &self,
        routing_key: &str,
        properties: &BasicProperties,
        queues: &mut Vec<Arc<Queue>>,
        exchanges: &mut Vec<ShortStr>,
    ) {
        self.router
            .read()
            .get()
            .route(routing_key, properties, &mut |destination| match destination {
                Destination::Queue(q) => {
                    if !queues.iter().any(|known| Arc::ptr_eq(known, q)) {
                        queues.push(q.clone());
                    }
                }
                Destination::Exchange(name) => {
                    if !exchanges.contains(name) {
                        exchanges.push(name.clone());
                    }
                }
            });
    }
}

/// RabbitMQ's text for an exchange type it does not have. It depends on
/// whether the name is already an atom in RabbitMQ's Erlang VM ("invalid",
/// e.g. 'foo') or not ("unknown", e.g. 'no-such-type'); a few common words
/// that are atoms there are listed, everything else is "unknown".
pub(crate) fn unknown_exchange_type(kind: &str) -> String {
    const ERLANG_ATOMS: &[&str] = &[
        "foo",
        "bar",
        "undefined",
        "error",
        "ok",
        "true",
        "false",
        "none",
        "invalid",
    ];
    if ERLANG_ATOMS.contains(&kind) {
        format!("invalid exchange type '{kind}'")
    } else {
        format!("unknown exchange type '{kind}'")
    }
}
