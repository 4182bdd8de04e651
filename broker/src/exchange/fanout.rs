//! The fanout exchange: every message goes to every binding, whatever its key.

use warren_protocol::BasicProperties;

use super::{Binding, Destination, Route};

#[derive(Debug, Default)]
pub(super) struct FanoutRouter {
    bindings: Vec<Binding>,
}

impl Route for FanoutRouter {
    fn bind(&mut self, binding: Binding) -> bool {
        if self.bindings.iter().any(|b| b.same_as(&binding)) {
            return false;
        }
        self.bindings.push(binding);
        true
    }

    fn unbind(&mut self, binding: &Binding) -> bool {
        let before = self.bindings.len();
        self.bindings.retain(|b| !b.same_as(binding));
        self.bindings.len() != before
    }

    fn remove_destination(&mut self, destination: &Destination) -> usize {
        let before = self.bindings.len();
        self.bindings.retain(|b| b.destination != *destination);
        before - self.bindings.len()
    }

    fn route(&self, _routing_key: &str, _properties: &BasicProperties, found: &mut dyn FnMut(&Destination)) {
        self.bindings.iter().for_each(|b| found(&b.destination));
    }

    fn bindings(&self) -> Vec<Binding> {
        self.bindings.clone()
    }

    fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }
}
