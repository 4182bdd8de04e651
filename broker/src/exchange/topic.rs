//! The topic exchange: binding keys are dot-separated patterns where `*`
//! matches exactly one word and `#` zero or more words.
//!
//! Patterns are stored in a trie keyed by word, with separate edges for `*`
//! and `#`, so routing walks the words of the key once instead of testing
//! every binding (or a regex per binding).

use std::collections::HashMap;

use warren_protocol::FieldTable;

use super::{Binding, Destination, Route};

#[derive(Debug, Default)]
pub(super) struct TopicRouter {
    root: Node,
    count: usize,
}

#[derive(Debug, Default)]
struct Node {
    words: HashMap<Box<str>, Node>,
    star: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    /// Bindings whose pattern ends at this node.
    bindings: Vec<Binding>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.words.is_empty() && self.star.is_none() && self.hash.is_none() && self.bindings.is_empty()
    }

    fn child_mut(&mut self, word: &str) -> &mut Node {
        match word {
            "*" => self.star.get_or_insert_with(Default::default),
            "#" => self.hash.get_or_insert_with(Default::default),
            _ => self.words.entry(word.into()).or_default(),
        }
    }

    /// Removes `binding` under the pattern `words`, pruning emptied nodes.
    fn unbind(&mut self, words: &[&str], binding: &Binding) -> bool {
        let Some((first, rest)) = words.split_first() else {
            let before = self.bindings.len();
            self.bindings.retain(|b| !b.same_as(binding));
            return self.bindings.len() != before;
        };
        let removed = match *first {
            "*" => prune(&mut self.star, |n| n.unbind(rest, binding)),
            "#" => prune(&mut self.hash, |n| n.unbind(rest, binding)),
            word => match self.words.get_mut(word) {
                Some(child) => {
                    let removed = child.unbind(rest, binding);
                    if child.is_empty() {
                        self.words.remove(word);
                    }
                    removed
                }
                None => false,
            },
        };
        removed
    }

    fn remove_destination(&mut self, destination: &Destination) -> usize {
        let before = self.bindings.len();
        self.bindings.retain(|b| b.destination != *destination);
        let mut removed = before - self.bindings.len();
        self.words.retain(|_, child| {
            removed += child.remove_destination(destination);
            !child.is_empty()
        });
        removed += prune(&mut self.star, |n| n.remove_destination(destination));
        removed += prune(&mut self.hash, |n| n.remove_destination(destination));
        removed
    }

    /// Matches the remaining words of a routing key (`None`: no words left).
    fn route(&self, rest: Option<&str>, found: &mut dyn FnMut(&Destination)) {
        match split_word(rest) {
            None => self.bindings.iter().for_each(|b| found(&b.destination)),
            Some((word, after)) => {
                if let Some(child) = self.words.get(word) {
                    child.route(after, found);
                }
                if let Some(star) = &self.star {
                    star.route(after, found);
                }
            }
        }
        if let Some(hash) = &self.hash {
            // `#` swallows zero words, then one, then two, ... up to all.
            let mut remaining = rest;
            loop {
                hash.route(remaining, found);
                match split_word(remaining) {
                    Some((_, after)) => remaining = after,
                    None => break,
                }
            }
        }
    }

    fn collect(&self, out: &mut Vec<Binding>) {
        out.extend(self.bindings.iter().cloned());
        self.words.values().for_each(|c| c.collect(out));
        if let Some(star) = &self.star {
            star.collect(out);
        }
        if let Some(hash) = &self.hash {
            hash.collect(out);
        }
    }
}

/// Applies `f` to an optional child and drops the child if it became empty.
fn prune<T>(slot: &mut Option<Box<Node>>, f: impl FnOnce(&mut Node) -> T) -> T
where
    T: Default,
{
    let Some(node) = slot.as_mut() else {
        return T::default();
    };
    let result = f(node);
    if node.is_empty() {
        *slot = None;
    }
    result
}

/// Splits the next word off a key. An empty key has no words; "a..b" has an
/// empty middle word, as in RabbitMQ.
fn split_word(rest: Option<&str>) -> Option<(&str, Option<&str>)> {
    let rest = rest?;
    Some(match rest.split_once('.') {
        Some((word, after)) => (word, Some(after)),
        None => (rest, None),
    })
}

fn words_of(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

impl Route for TopicRouter {
    fn bind(&mut self, binding: Binding) -> bool {
        let words = words_of(binding.routing_key.as_str())
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        let mut node = &mut self.root;
        for word in &words {
            node = node.child_mut(word);
        }
        if node.bindings.iter().any(|b| b.same_as(&binding)) {
            return false;
        }
        node.bindings.push(binding);
        self.count += 1;
        true
    }

    fn unbind(&mut self, binding: &Binding) -> bool {
        let key = binding.routing_key.clone();
        let removed = self.root.unbind(&words_of(key.as_str()), binding);
        if removed {
            self.count -= 1;
        }
        removed
    }

    fn remove_destination(&mut self, destination: &Destination) -> usize {
        let removed = self.root.remove_destination(destination);
        self.count -= removed;
        removed
    }

    fn route(&self, routing_key: &str, _headers: Option<&FieldTable>, found: &mut dyn FnMut(&Destination)) {
        let start = (!routing_key.is_empty()).then_some(routing_key);
        self.root.route(start, found);
    }

    fn bindings(&self) -> Vec<Binding> {
        let mut out = Vec::with_capacity(self.count);
        self.root.collect(&mut out);
        out
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }
}
