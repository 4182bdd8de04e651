//! A narrow door for the routing benchmark (`benches/routing.rs`, which
//! is a separate crate and sees only public items): builds a vhost with
//! exchanges, queues and bindings, and routes through it exactly as a
//! publish does. Not part of Warren's API.

use std::sync::Arc;

use warren_protocol::{BasicProperties, FieldTable, ShortStr};

use crate::exchange::{Destination, Exchange, ExchangeKind, ExchangeSettings};
use crate::queue::{Queue, QueueSettings};
use crate::vhost::VHost;

/// A vhost with nothing durable in it.
pub struct RoutingBench {
    vhost: Arc<VHost>,
}

/// An exchange to route through.
pub struct BenchExchange(Arc<Exchange>);

/// Where a message went.
#[derive(Default)]
pub struct Routed(Vec<Arc<Queue>>);

impl Routed {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

impl Default for RoutingBench {
    fn default() -> Self {
        RoutingBench {
            vhost: VHost::standalone("/"),
        }
    }
}

impl RoutingBench {
    /// Declares an exchange of type `kind` ("direct", "fanout", "topic", "headers").
    pub fn exchange(&self, name: &str, kind: &str) -> BenchExchange {
        let settings = ExchangeSettings {
            kind: ExchangeKind::parse(kind).expect("an exchange type"),
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: FieldTable::new(),
        };
        BenchExchange(
            self.vhost
                .declare_exchange(&ShortStr::from(name), settings)
                .expect("declare exchange"),
        )
    }

    /// Declares a queue (if new) and binds it to `exchange`.
    pub fn bind_queue(&self, exchange: &str, queue: &str, key: &str, arguments: FieldTable) {
        let settings = QueueSettings {
            durable: false,
            exclusive_owner: None,
            auto_delete: false,
            arguments: FieldTable::new(),
        };
        let queue = self
            .vhost
            .declare_queue(&ShortStr::from(queue), settings)
            .expect("declare queue");
        self.vhost
            .bind(exchange, Destination::Queue(queue), ShortStr::from(key), arguments)
            .expect("bind");
    }

    /// Routes a message as basic.publish does; the queues go to `routed`.
    pub fn route(&self, exchange: &BenchExchange, key: &str, properties: &BasicProperties, routed: &mut Routed) {
        self.vhost.route(&exchange.0, key, properties, &mut routed.0);
    }
}
