//! The direct exchange: a message goes to the bindings whose key equals its
//! routing key exactly. One hash lookup per message.

use std::collections::HashMap;

use warren_protocol::{BasicProperties, ShortStr};

use super::{Binding, Destination, Route};

#[derive(Debug, Default)]
pub(super) struct DirectRouter {
    by_key: HashMap<ShortStr, Vec<Binding>>,
}

impl Route for DirectRouter {
    fn bind(&mut self, binding: Binding) -> bool {
        let list = self.by_key.entry(binding.routing_key.clone()).or_default();
        if list.iter().any(|b| b.same_as(&binding)) {
            return false;
        }
        list.push(binding);
        true
    }

    fn unbind(&mut self, binding: &Binding) -> bool {
        let Some(list) = self.by_key.get_mut(binding.routing_key.as_str()) else {
            return false;
        };
        let before = list.len();
        list.retain(|b| !b.same_as(binding));
        let removed = list.len() != before;
        if list.is_empty() {
            self.by_key.remove(binding.routing_key.as_str());
        }
        removed
    }

    fn remove_destination(&mut self, destination: &Destination) -> usize {
        let mut removed = 0;
        self.by_key.retain(|_, list| {
            let before = list.len();
            list.retain(|b| b.destination != *destination);
            removed += before - list.len();
            !list.is_empty()
        });
        removed
    }

    fn route(&self, routing_key: &str, _properties: &BasicProperties, found: &mut dyn FnMut(&Destination)) {
        if let Some(list) = self.by_key.get(routing_key) {
            list.iter().for_each(|b| found(&b.destination));
        }
    }

    fn bindings(&self) -> Vec<Binding> {
        self.by_key.values().flatten().cloned().collect()
    }

    fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}
