//! A binding: an exchange's rule that sends matching messages to a queue or
//! to another exchange.

use std::sync::Arc;

use warren_protocol::{FieldTable, ShortStr};

use crate::queue::Queue;

/// Where a binding leads.
#[derive(Debug, Clone)]
pub(crate) enum Destination {
    Queue(Arc<Queue>),
    /// Exchange-to-exchange binding, by the destination exchange's name.
    Exchange(ShortStr),
}

impl Destination {
    pub(crate) fn name(&self) -> &ShortStr {
        match self {
            Destination::Queue(q) => &q.name,
            Destination::Exchange(name) => name,
        }
    }
}

impl PartialEq for Destination {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Destination::Queue(a), Destination::Queue(b)) => Arc::ptr_eq(a, b) || a.name == b.name,
            (Destination::Exchange(a), Destination::Exchange(b)) => a == b,
            _ => false,
        }
    }
}

/// A binding. Its arguments are kept sorted by key, so two bindings that
/// differ only in the order their arguments were given are the same
/// binding (to bind twice, to unbind, and in the store).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Binding {
    pub destination: Destination,
    pub routing_key: ShortStr,
    pub arguments: FieldTable,
}

impl Binding {
    pub(crate) fn new(destination: Destination, routing_key: ShortStr, mut arguments: FieldTable) -> Binding {
        arguments.0.sort_by(|(a, _), (b, _)| a.cmp(b));
        Binding {
            destination,
            routing_key,
            arguments,
        }
    }

    /// Whether two bindings are the same binding (same destination, key and
    /// arguments), which makes a second bind a no-op.
    pub(crate) fn same_as(&self, other: &Binding) -> bool {
        self == other
    }
}
