//! The topic exchange: binding keys are dot-separated patterns where `*`
//! matches exactly one word and `#` zero or more words.
//!
//! Patterns are stored in a trie keyed by word, with separate edges for `*`
//! and `#`, so routing walks the words of the key once instead of testing
//! every binding (or a regex per binding). A `#` may swallow any number of
//! words, so a pattern with several of them could be tried an exponential
//! number of ways; below a first `#`, routing remembers which `#` node it
//! has tried at which word of the key and never tries one twice, so the
//! work is bounded by the trie's size times the key's length, whatever the
//! patterns. (A first `#` is reached only one way, so patterns with one
//! `#`, the common case, pay nothing for this.)

use std::collections::{HashMap, HashSet};

use warren_protocol::BasicProperties;

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

    /// Matches the remaining words of a routing key (`None`: no words
    /// left), the word at `position` of the key being the next.
    /// `under_hash`: this node was reached through a `#`, so it may be
    /// reached again at the same position another way.
    fn route(
        &self,
        rest: Option<&str>,
        position: usize,
        under_hash: bool,
        tried: &mut Tried,
        found: &mut dyn FnMut(&Destination),
    ) {
        #[cfg(test)]
        {
            tried.steps += 1;
        }
        match split_word(rest) {
            None => self.bindings.iter().for_each(|b| found(&b.destination)),
            Some((word, after)) => {
                if let Some(child) = self.words.get(word) {
                    child.route(after, position + 1, under_hash, tried, found);
                }
                if let Some(star) = &self.star {
                    star.route(after, position + 1, under_hash, tried, found);
                }
            }
        }
        if let Some(hash) = &self.hash {
            // `#` swallows zero words, then one, then two, ... up to all.
            let mut remaining = rest;
            let mut at = position;
            loop {
                if under_hash && !tried.first_time(hash, at) {
                    // Tried here before, and so at every later word too.
                    break;
                }
                hash.route(remaining, at, true, tried, found);
                match split_word(remaining) {
                    Some((_, after)) => {
                        remaining = after;
                        at += 1;
                    }
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

/// The `#` nodes below a first `#` that routing has tried, and at which
/// word of the key: a short list, a set once there are many.
#[derive(Default)]
struct Tried {
    few: Vec<(usize, usize)>,
    many: Option<HashSet<(usize, usize)>>,
    /// How many (node, word) steps routing took, for the tests.
    #[cfg(test)]
    steps: usize,
}

impl Tried {
    /// The most kept in the list before it becomes a set.
    const FEW: usize = 32;

    /// Records that `node` is tried at `position`; false if it was before.
    fn first_time(&mut self, node: &Node, position: usize) -> bool {
        let key = (node as *const Node as usize, position);
        if let Some(many) = &mut self.many {
            return many.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        if self.few.len() < Self::FEW {
            self.few.push(key);
        } else {
            let mut many: HashSet<_> = self.few.drain(..).collect();
            many.insert(key);
            self.many = Some(many);
        }
        true
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

    fn route(&self, routing_key: &str, _properties: &BasicProperties, found: &mut dyn FnMut(&Destination)) {
        let start = (!routing_key.is_empty()).then_some(routing_key);
        self.root.route(start, 0, false, &mut Tried::default(), found);
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

#[cfg(test)]
mod tests {
    use warren_protocol::ShortStr;

    use super::*;

    /// Bindings to exchanges named after their patterns, so a match says
    /// which pattern matched.
    fn router(patterns: &[&str]) -> TopicRouter {
        let mut router = TopicRouter::default();
        for pattern in patterns {
            router.bind(Binding::new(
                Destination::Exchange(ShortStr::from(*pattern)),
                ShortStr::from(*pattern),
                warren_protocol::FieldTable::new(),
            ));
        }
        router
    }

    fn matches(router: &TopicRouter, key: &str) -> Vec<String> {
        let mut found = Vec::new();
        router.route(key, &BasicProperties::default(), &mut |d| {
            found.push(d.name().to_string())
        });
        found.sort();
        found
    }

    /// The rules, spelt out: `*` one word, `#` zero or more.
    fn reference(pattern: &[&str], key: &[&str]) -> bool {
        match pattern.split_first() {
            None => key.is_empty(),
            Some((&"#", rest)) => (0..=key.len()).any(|skip| reference(rest, &key[skip..])),
            Some((&word, rest)) => key
                .split_first()
                .is_some_and(|(first, after)| (word == "*" || word == *first) && reference(rest, after)),
        }
    }

    fn words(s: &str) -> Vec<&str> {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split('.').collect()
        }
    }

    /// Every string of up to `max` words over `alphabet`, dot-joined.
    fn all_strings(alphabet: &[&str], max: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![Vec::<&str>::new()];
        for _ in 0..max {
            let mut next = Vec::new();
            for prefix in &last {
                for word in alphabet {
                    let mut longer = prefix.clone();
                    longer.push(word);
                    all.push(longer.join("."));
                    next.push(longer);
                }
            }
            last = next;
        }
        all
    }

    #[test]
    fn matches_as_the_rules_say_for_every_short_pattern_and_key() {
        let patterns = all_strings(&["a", "b", "*", "#"], 4);
        let pattern_refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let router = router(&pattern_refs);
        for key in all_strings(&["a", "b", ""], 4) {
            let mut expected: Vec<String> = patterns
                .iter()
                .filter(|p| reference(&words(p), &words(&key)))
                .cloned()
                .collect();
            expected.sort();
            assert_eq!(matches(&router, &key), expected, "key {key:?}");
        }
    }

    #[test]
    fn each_binding_matches_once_however_many_ways_its_hashes_fit() {
        let router = router(&["#.a.#", "#.#"]);
        assert_eq!(matches(&router, "a.a.a"), ["#.#", "#.a.#"]);
    }

    #[test]
    fn many_hashes_cost_at_most_nodes_times_words() {
        // Without remembering where each `#` was tried, this pattern
        // against a 40-word key is tried an exponential number of ways
        // (11 s of CPU for one publish, measured).
        let pattern = "#.a.#.a.#.a.#.a.#.a.#.a.#.a.#.a.#.b";
        let router = router(&[pattern]);
        let key = format!("{}.c", vec!["a"; 39].join("."));
        let mut tried = Tried::default();
        let mut found = 0;
        router.root.route(Some(&key), 0, false, &mut tried, &mut |_| found += 1);
        assert_eq!(found, 0);
        let nodes = pattern.split('.').count() + 1;
        let positions = 41;
        assert!(
            tried.steps <= nodes * positions,
            "{} steps for {nodes} nodes and {positions} positions",
            tried.steps
        );
    }
}
