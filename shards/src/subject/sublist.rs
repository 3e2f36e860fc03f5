//! The sublist owns one shard's subscriptions: a trie of subject tokens mapping patterns to
//! subscription values, plus a bounded cache of match results.
//!
//! The shape follows nats-server's `server/sublist.go`. Each level holds a map of literal
//! tokens plus one `*` slot and one `>` slot; each node holds the plain subscriptions and the
//! queue groups whose subject ends there, and the next level for longer subjects. Matching a
//! published subject walks the levels token by token, branching into the `*` slot and
//! collecting the `>` slot; results are cached per subject until the next insert or remove.
//!
//! Everything is iterative (insert, remove, match, drop), so a subject with a very large
//! number of tokens cannot overflow the stack. The structure is shard-local: no locks, no `Arc`.

use std::rc::Rc;

use rustc_hash::FxHashMap;

use super::validate::is_valid_literal_subject;

/// The result of one match; shared from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<V> {
    /// every matching plain subscription value, one entry per subscription (a value inserted under
    /// both "foo.*" and "foo.>" appears twice: once per subscription)
    pub plain: Vec<V>,
    /// one entry per queue group NAME: members of the same name from different matching patterns
    /// (e.g. "foo.*" q1 and "foo.>" q1) are merged into one group.
    pub queues: Vec<QueueMatch<V>>,
}

impl<V> Match<V> {
    /// Whether nothing matched (no plain subscription and no queue group).
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty()
    }
}

impl<V> Default for Match<V> {
    fn default() -> Self {
        Match {
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }
}

/// One queue group of a [`Match`]: every matching member of the group named `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMatch<V> {
    pub name: Box<[u8]>,
    pub members: Vec<V>,
}

/// Splits a subject into its tokens without allocating.
#[inline]
fn tokens(subject: &[u8]) -> std::slice::Split<'_, u8, impl FnMut(&u8) -> bool> {
    subject.split(|&b| b == b'.')
}

/// Splits off the first token; the rest is `None` when `rest` held only one token.
#[inline]
fn first_token(rest: &[u8]) -> (&[u8], Option<&[u8]>) {
    match rest.iter().position(|&b| b == b'.') {
        Some(dot) => (&rest[..dot], Some(&rest[dot + 1..])),
        None => (rest, None),
    }
}

/// Removes the first element equal to `value`; gives memory back when the vector has shrunk a lot.
fn remove_one<V: PartialEq>(values: &mut Vec<V>, value: &V) -> bool {
    let Some(at) = values.iter().position(|v| v == value) else {
        return false;
    };
    values.remove(at);
    if values.is_empty() {
        *values = Vec::new();
    } else if values.capacity() > 16 && values.len() * 4 <= values.capacity() {
        values.shrink_to(values.len() * 2);
    }
    true
}

/// Gives a map's memory back once it holds a quarter of its capacity or less.
fn shrink_map<K: std::hash::Hash + Eq, T>(map: &mut FxHashMap<K, T>) {
    if map.is_empty() {
        *map = FxHashMap::default();
    } else if map.capacity() > 16 && map.len() * 4 <= map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

/// One trie node: the subscriptions whose subject ends here, and the level below.
struct Node<V> {
    plain: Vec<V>,
    queues: FxHashMap<Box<[u8]>, Vec<V>>,
    /// `None` whenever the level below would be empty.
    next: Option<Box<Level<V>>>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            plain: Vec::new(),
            queues: FxHashMap::default(),
            next: None,
        }
    }
}

impl<V> Node<V> {
    fn has_subs(&self) -> bool {
        !self.plain.is_empty() || !self.queues.is_empty()
    }

    fn next_children(&self) -> usize {
        self.next.as_ref().map_or(0, |level| level.child_count())
    }

    /// Removes one entry equal to `value` from the plain list or from queue group `queue`.
    fn remove_value(&mut self, queue: Option<&[u8]>, value: &V) -> bool
    where
        V: PartialEq,
    {
        let Some(queue) = queue else {
            return remove_one(&mut self.plain, value);
        };
        let Some(members) = self.queues.get_mut(queue) else {
            return false;
        };
        if !remove_one(members, value) {
            return false;
        }
        if members.is_empty() {
            self.queues.remove(queue);
            shrink_map(&mut self.queues);
        }
        true
    }
}

/// One trie level: the children for the token at this depth.
struct Level<V> {
    literals: FxHashMap<Box<[u8]>, Node<V>>,
    /// The `*` child.
    pwc: Option<Box<Node<V>>>,
    /// The `>` child.
    fwc: Option<Box<Node<V>>>,
}

impl<V> Default for Level<V> {
    fn default() -> Self {
        Level {
            literals: FxHashMap::default(),
            pwc: None,
            fwc: None,
        }
    }
}

impl<V> Level<V> {
    fn child_count(&self) -> usize {
        self.literals.len() + usize::from(self.pwc.is_some()) + usize::from(self.fwc.is_some())
    }

    fn child(&self, token: &[u8]) -> Option<&Node<V>> {
        match token {
            b"*" => self.pwc.as_deref(),
            b">" => self.fwc.as_deref(),
            _ => self.literals.get(token),
        }
    }

    fn child_mut(&mut self, token: &[u8]) -> Option<&mut Node<V>> {
        match token {
            b"*" => self.pwc.as_deref_mut(),
            b">" => self.fwc.as_deref_mut(),
            _ => self.literals.get_mut(token),
        }
    }

    fn child_or_insert(&mut self, token: &[u8]) -> &mut Node<V> {
        match token {
            b"*" => self.pwc.get_or_insert_with(Box::default),
            b">" => self.fwc.get_or_insert_with(Box::default),
            _ => self.literals.entry(Box::from(token)).or_default(),
        }
    }

    /// Drops the child for `token` and its whole subtree.
    fn remove_child(&mut self, token: &[u8]) {
        match token {
            b"*" => self.pwc = None,
            b">" => self.fwc = None,
            _ => {
                self.literals.remove(token);
                shrink_map(&mut self.literals);
            }
        }
    }

    #[cfg(test)]
    fn children(&self) -> impl Iterator<Item = &Node<V>> {
        self.literals
            .values()
            .chain(self.pwc.as_deref())
            .chain(self.fwc.as_deref())
    }

    /// Moves every child's next level into `out`, leaving this level's children as leaves.
    fn detach_next_levels(&mut self, out: &mut Vec<Level<V>>) {
        let nodes = self
            .literals
            .values_mut()
            .chain(self.pwc.as_deref_mut())
            .chain(self.fwc.as_deref_mut());
        out.extend(
            nodes
                .filter_map(|node| node.next.take())
                .map(|level| *level),
        );
    }
}

impl<V> Drop for Level<V> {
    /// Drops the subtree with an explicit stack: the default recursive drop could overflow
    /// the stack on a subject with hundreds of thousands of tokens.
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.detach_next_levels(&mut pending);
        while let Some(mut level) = pending.pop() {
            level.detach_next_levels(&mut pending);
            // `level` now drops shallowly: its children have no next level any more.
        }
    }
}

/// Accumulates the subscriptions of the matching nodes into a [`Match`].
struct Collector<'t, V> {
    plain: Vec<V>,
    queues: Vec<QueueMatch<V>>,
    /// Index into `queues` by group name; allocated only once a queue group matches.
    by_name: FxHashMap<&'t [u8], usize>,
}

impl<'t, V: Clone> Collector<'t, V> {
    fn new() -> Self {
        Collector {
            plain: Vec::new(),
            queues: Vec::new(),
            by_name: FxHashMap::default(),
        }
    }

    fn add(&mut self, node: &'t Node<V>) {
        self.plain.extend_from_slice(&node.plain);
        for (name, members) in &node.queues {
            let merged = self
                .by_name
                .get(&**name)
                .and_then(|&at| self.queues.get_mut(at));
            if let Some(group) = merged {
                group.members.extend_from_slice(members);
            } else {
                self.by_name.insert(name, self.queues.len());
                self.queues.push(QueueMatch {
                    name: name.clone(),
                    members: members.clone(),
                });
            }
        }
    }

    fn finish(self) -> Match<V> {
        Match {
            plain: self.plain,
            queues: self.queues,
        }
    }
}

/// One shard's subscriptions, indexed for matching published subjects, with a match cache.
pub struct Sublist<V> {
    root: Level<V>,
    /// Entries (subscriptions) stored.
    count: usize,
    cache: FxHashMap<Box<[u8]>, Rc<Match<V>>>,
    cache_entries_max: usize,
    /// Shared result for subjects that match nothing.
    empty: Rc<Match<V>>,
    /// Trie walks done by `matches` (cache misses on valid subjects).
    #[cfg(test)]
    walks: usize,
}

impl<V> std::fmt::Debug for Sublist<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sublist")
            .field("len", &self.count)
            .field("cache_len", &self.cache.len())
            .field("cache_entries_max", &self.cache_entries_max)
            .finish_non_exhaustive()
    }
}

impl<V: Clone + PartialEq> Sublist<V> {
    /// `cache_entries_max` bounds the match cache (0 disables it).
    pub fn new(cache_entries_max: usize) -> Self {
        Sublist {
            root: Level::default(),
            count: 0,
            cache: FxHashMap::default(),
            cache_entries_max,
            empty: Rc::new(Match::default()),
            #[cfg(test)]
            walks: 0,
        }
    }

    /// Adds one subscription. `subject` was validated with is_valid_subject by the caller.
    /// Duplicates are allowed: inserting the same (subject, queue, value) twice stores two entries.
    ///
    /// An invalid subject is stored as given and counted, but can never match: published
    /// subjects with empty tokens are rejected, and a `>` node is never descended into.
    pub fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, value: V) {
        let mut level = &mut self.root;
        let mut rest = subject;
        let node = loop {
            let (token, tail) = first_token(rest);
            let node = level.child_or_insert(token);
            match tail {
                Some(tail) => {
                    level = node.next.get_or_insert_with(Box::default);
                    rest = tail;
                }
                None => break node,
            }
        };
        match queue {
            None => node.plain.push(value),
            Some(queue) => match node.queues.get_mut(queue) {
                Some(members) => members.push(value),
                None => {
                    node.queues.insert(Box::from(queue), vec![value]);
                }
            },
        }
        self.count += 1;
        self.invalidate_cache();
    }

    /// Removes ONE entry equal to `value` under (subject, queue); returns whether one was found.
    /// Prunes empty nodes so memory returns after churn.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, value: &V) -> bool {
        let Some(node) = self.find_mut(subject) else {
            return false;
        };
        if !node.remove_value(queue, value) {
            return false;
        }
        self.count -= 1;
        self.invalidate_cache();
        self.prune(subject);
        true
    }

    /// All subscriptions matching a literal published subject. Cached: a second match of the same
    /// subject with no insert/remove in between returns the same Rc (Rc::ptr_eq) without walking the
    /// trie; any insert/remove invalidates the cache (a generation counter or clear). A subject that
    /// is not a valid literal (empty token, contains a wildcard token) matches nothing.
    pub fn matches(&mut self, subject: &[u8]) -> Rc<Match<V>> {
        // Only valid literal subjects are ever cached, so a hit needs no validation.
        if let Some(hit) = self.cache.get(subject) {
            return Rc::clone(hit);
        }
        if !is_valid_literal_subject(subject) {
            return Rc::clone(&self.empty);
        }
        #[cfg(test)]
        {
            self.walks += 1;
        }
        let found = self.collect(subject);
        let result = if found.is_empty() {
            Rc::clone(&self.empty)
        } else {
            Rc::new(found)
        };
        if self.cache_entries_max > 0 {
            if self.cache.len() >= self.cache_entries_max {
                self.evict_cache();
            }
            self.cache.insert(Box::from(subject), Rc::clone(&result));
        }
        result
    }

    /// Number of entries (subscriptions) stored.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of entries currently in the match cache (for tests/metrics).
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Walks the trie for a valid literal subject, as nats-server's `matchLevel`, but with an
    /// explicit work list for the `*` branches instead of recursion.
    fn collect(&self, subject: &[u8]) -> Match<V> {
        let mut out = Collector::new();
        // Pending `*` branches: the level below a `*` node and the tokens left for it.
        let mut branches: Vec<(&Level<V>, &[u8])> = Vec::new();
        let mut start = Some((&self.root, subject));
        while let Some((mut level, mut rest)) = start.take().or_else(|| branches.pop()) {
            loop {
                let (token, tail) = first_token(rest);
                // `>` here takes this token and everything after it: one or more tokens.
                if let Some(fwc) = level.fwc.as_deref() {
                    out.add(fwc);
                }
                let literal = level.literals.get(token);
                let Some(tail) = tail else {
                    // Last token: the literal and `*` nodes of this level end the match.
                    if let Some(node) = literal {
                        out.add(node);
                    }
                    if let Some(pwc) = level.pwc.as_deref() {
                        out.add(pwc);
                    }
                    break;
                };
                if let Some(next) = level.pwc.as_deref().and_then(|pwc| pwc.next.as_deref()) {
                    branches.push((next, tail));
                }
                match literal.and_then(|node| node.next.as_deref()) {
                    Some(next) => {
                        level = next;
                        rest = tail;
                    }
                    None => break,
                }
            }
        }
        out.finish()
    }

    /// The node where `subject` ends, if it exists.
    fn find_mut(&mut self, subject: &[u8]) -> Option<&mut Node<V>> {
        let mut level = &mut self.root;
        let mut rest = subject;
        loop {
            let (token, tail) = first_token(rest);
            let node = level.child_mut(token)?;
            match tail {
                None => return Some(node),
                Some(tail) => {
                    level = node.next.as_deref_mut()?;
                    rest = tail;
                }
            }
        }
    }

    /// After an entry under `subject` was removed: drops the nodes of that path that hold no
    /// subscription and lead to nothing else, so memory returns after churn.
    fn prune(&mut self, subject: &[u8]) {
        // Pass 1: find the shallowest depth from which the path holds nothing but itself.
        let mut cut: Option<usize> = None;
        let mut level = &self.root;
        let mut path = tokens(subject).enumerate().peekable();
        while let Some((depth, token)) = path.next() {
            let Some(node) = level.child(token) else {
                return;
            };
            if path.peek().is_none() {
                if node.has_subs() || node.next_children() > 0 {
                    return;
                }
                cut = cut.or(Some(depth));
                break;
            }
            // A node survives if it holds subscriptions or leads anywhere but down this path.
            if node.has_subs() || node.next_children() != 1 {
                cut = None;
            } else if cut.is_none() {
                cut = Some(depth);
            }
            let Some(next) = node.next.as_deref() else {
                return;
            };
            level = next;
        }
        let Some(cut) = cut else {
            return;
        };

        // Pass 2: drop the node at depth `cut` from its level.
        let mut path = tokens(subject);
        if cut == 0 {
            if let Some(token) = path.next() {
                self.root.remove_child(token);
            }
            return;
        }
        let mut level = &mut self.root;
        for depth in 0..cut {
            let Some(token) = path.next() else {
                return;
            };
            let Some(node) = level.child_mut(token) else {
                return;
            };
            if depth + 1 == cut {
                // `node` is the surviving parent of the pruned node.
                let (Some(next), Some(child)) = (node.next.as_deref_mut(), path.next()) else {
                    return;
                };
                next.remove_child(child);
                if next.child_count() == 0 {
                    node.next = None;
                }
                return;
            }
            let Some(next) = node.next.as_deref_mut() else {
                return;
            };
            level = next;
        }
    }

    fn invalidate_cache(&mut self) {
        if !self.cache.is_empty() {
            self.cache.clear();
        }
    }

    /// Makes room in a full cache by dropping every other entry: cheap, amortised O(1) per
    /// insert, and leaves the cache well under its bound.
    fn evict_cache(&mut self) {
        let mut seen = 0usize;
        self.cache.retain(|_, _| {
            seen += 1;
            seen % 2 == 0
        });
    }

    /// Trie nodes, counting the root level as one node.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        let mut count = 1;
        let mut stack = vec![&self.root];
        while let Some(level) = stack.pop() {
            for node in level.children() {
                count += 1;
                stack.extend(node.next.as_deref());
            }
        }
        count
    }

    /// Checks the pruning invariants: every node holds a subscription or leads to one, no
    /// `next` level is empty, no queue group is empty, and the entry count matches `len()`.
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut entries = 0;
        let mut stack = vec![&self.root];
        while let Some(level) = stack.pop() {
            for node in level.children() {
                assert!(node.has_subs() || node.next.is_some(), "dead node");
                if let Some(next) = node.next.as_deref() {
                    assert!(next.child_count() > 0, "empty next level");
                    stack.push(next);
                }
                assert!(
                    node.queues.values().all(|m| !m.is_empty()),
                    "empty queue group"
                );
                entries += node.plain.len() + node.queues.values().map(Vec::len).sum::<usize>();
            }
        }
        assert_eq!(entries, self.count, "len() disagrees with the trie");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    type Q<'a> = Option<&'a [u8]>;
    const NOQ: Q<'static> = None;

    fn q(name: &str) -> Q<'_> {
        Some(name.as_bytes())
    }

    fn plain_sorted<V: Ord + Clone>(m: &Match<V>) -> Vec<V> {
        let mut v = m.plain.clone();
        v.sort();
        v
    }

    /// Queue groups by name, members sorted; also checks names are not repeated.
    fn queues_sorted<V: Ord + Clone>(m: &Match<V>) -> BTreeMap<Vec<u8>, Vec<V>> {
        let mut out = BTreeMap::new();
        for group in &m.queues {
            let mut members = group.members.clone();
            members.sort();
            assert!(!members.is_empty(), "empty queue group in a match");
            let previous = out.insert(group.name.to_vec(), members);
            assert!(previous.is_none(), "queue group name appears twice");
        }
        out
    }

    fn plain_of(sl: &mut Sublist<u32>, subject: &str) -> Vec<u32> {
        plain_sorted(&sl.matches(subject.as_bytes()))
    }

    fn groups(entries: &[(&str, &[u32])]) -> BTreeMap<Vec<u8>, Vec<u32>> {
        entries
            .iter()
            .map(|(name, members)| (name.as_bytes().to_vec(), members.to_vec()))
            .collect()
    }

    #[test]
    fn literal_matches_only_itself() {
        let mut sl = Sublist::new(64);
        sl.insert(b"foo.bar", NOQ, 1);
        sl.insert(b"foo", NOQ, 2);
        sl.insert(b"foo.bar.baz", NOQ, 3);
        sl.insert(b"Foo.bar", NOQ, 4);
        assert_eq!(plain_of(&mut sl, "foo.bar"), [1]);
        assert_eq!(plain_of(&mut sl, "foo"), [2]);
        assert_eq!(plain_of(&mut sl, "foo.bar.baz"), [3]);
        assert_eq!(plain_of(&mut sl, "Foo.bar"), [4]);
        assert_eq!(plain_of(&mut sl, "foo.baz"), [0u32; 0]);
        assert_eq!(plain_of(&mut sl, "bar"), [0u32; 0]);
        assert_eq!(plain_of(&mut sl, "foo.bar.baz.qux"), [0u32; 0]);
        assert_eq!(sl.len(), 4);
        assert!(!sl.is_empty());
        assert!(sl.matches(b"nothing").is_empty());
    }

    #[test]
    fn wildcard_chars_inside_tokens_are_literal() {
        let mut sl = Sublist::new(64);
        sl.insert(b"f*o.b", NOQ, 1);
        sl.insert(b"foo>", NOQ, 2);
        sl.insert(b">", NOQ, 3);
        assert_eq!(plain_of(&mut sl, "f*o.b"), [1, 3]);
        assert_eq!(plain_of(&mut sl, "fxo.b"), [3]);
        assert_eq!(plain_of(&mut sl, "foo>"), [2, 3]);
        assert_eq!(plain_of(&mut sl, "foo.x"), [3]);
    }

    #[test]
    fn star_in_each_position() {
        let mut sl = Sublist::new(64);
        sl.insert(b"*.b.c", NOQ, 1);
        sl.insert(b"a.*.c", NOQ, 2);
        sl.insert(b"a.b.*", NOQ, 3);
        sl.insert(b"*.*.*", NOQ, 4);
        sl.insert(b"*", NOQ, 5);
        sl.insert(b"a.*", NOQ, 6);
        assert_eq!(plain_of(&mut sl, "a.b.c"), [1, 2, 3, 4]);
        assert_eq!(plain_of(&mut sl, "x.b.c"), [1, 4]);
        assert_eq!(plain_of(&mut sl, "a.x.c"), [2, 4]);
        assert_eq!(plain_of(&mut sl, "a.b.x"), [3, 4]);
        assert_eq!(plain_of(&mut sl, "x.y.z"), [4]);
        assert_eq!(plain_of(&mut sl, "a"), [5]);
        assert_eq!(plain_of(&mut sl, "a.b"), [6]);
        assert_eq!(plain_of(&mut sl, "b.b"), [0u32; 0]);
        // '*' matches exactly one token, never zero or two.
        assert_eq!(plain_of(&mut sl, "a.b.c.d"), [0u32; 0]);
    }

    #[test]
    fn full_wildcard_needs_one_or_more_tokens() {
        let mut sl = Sublist::new(64);
        sl.insert(b"foo.>", NOQ, 1);
        sl.insert(b">", NOQ, 2);
        sl.insert(b"foo.*.>", NOQ, 3);
        assert_eq!(plain_of(&mut sl, "foo"), [2]);
        assert_eq!(plain_of(&mut sl, "foo.bar"), [1, 2]);
        assert_eq!(plain_of(&mut sl, "foo.bar.baz"), [1, 2, 3]);
        assert_eq!(plain_of(&mut sl, "foo.bar.baz.qux.quux"), [1, 2, 3]);
        assert_eq!(plain_of(&mut sl, "bar.foo"), [2]);
        assert_eq!(plain_of(&mut sl, "x"), [2]);
    }

    #[test]
    fn subscription_matching_two_patterns_appears_twice() {
        let mut sl = Sublist::new(64);
        sl.insert(b"foo.*", NOQ, 7);
        sl.insert(b"foo.>", NOQ, 7);
        sl.insert(b"foo.bar", NOQ, 7);
        assert_eq!(plain_of(&mut sl, "foo.bar"), [7, 7, 7]);
        assert_eq!(plain_of(&mut sl, "foo.baz"), [7, 7]);
        assert_eq!(plain_of(&mut sl, "foo.baz.x"), [7]);
    }

    #[test]
    fn queue_groups_merge_by_name_across_patterns() {
        let mut sl = Sublist::new(64);
        sl.insert(b"foo.*", q("q1"), 1);
        sl.insert(b"foo.>", q("q1"), 2);
        sl.insert(b"foo.bar", q("q1"), 3);
        sl.insert(b"foo.bar", q("q2"), 4);
        sl.insert(b"foo.*", q("q2"), 5);
        sl.insert(b"foo.>", q("Q1"), 6);
        let m = sl.matches(b"foo.bar");
        assert!(m.plain.is_empty());
        assert_eq!(m.queues.len(), 3);
        assert_eq!(
            queues_sorted(&m),
            groups(&[("q1", &[1, 2, 3]), ("q2", &[4, 5]), ("Q1", &[6])])
        );
        let m = sl.matches(b"foo.baz.qux");
        assert_eq!(queues_sorted(&m), groups(&[("q1", &[2]), ("Q1", &[6])]));
    }

    #[test]
    fn plain_and_queue_results_together() {
        let mut sl = Sublist::new(64);
        sl.insert(b"orders.*", NOQ, 1);
        sl.insert(b"orders.new", NOQ, 2);
        sl.insert(b"orders.new", q("workers"), 3);
        sl.insert(b"orders.new", q("workers"), 4);
        sl.insert(b"orders.>", q("audit"), 5);
        let m = sl.matches(b"orders.new");
        assert_eq!(plain_sorted(&m), [1, 2]);
        assert_eq!(
            queues_sorted(&m),
            groups(&[("workers", &[3, 4]), ("audit", &[5])])
        );
        // The same value may be both a plain and a queue subscription.
        sl.insert(b"orders.new", q("workers"), 1);
        let m = sl.matches(b"orders.new");
        assert_eq!(plain_sorted(&m), [1, 2]);
        assert_eq!(
            queues_sorted(&m),
            groups(&[("workers", &[1, 3, 4]), ("audit", &[5])])
        );
    }

    #[test]
    fn remove_removes_exactly_one_duplicate() {
        let mut sl = Sublist::new(64);
        sl.insert(b"foo.bar", NOQ, 1);
        sl.insert(b"foo.bar", NOQ, 1);
        sl.insert(b"foo.bar", q("g"), 1);
        sl.insert(b"foo.bar", q("g"), 1);
        assert_eq!(sl.len(), 4);
        assert!(sl.remove(b"foo.bar", NOQ, &1));
        assert_eq!(sl.len(), 3);
        let m = sl.matches(b"foo.bar");
        assert_eq!(plain_sorted(&m), [1]);
        assert_eq!(queues_sorted(&m), groups(&[("g", &[1, 1])]));
        assert!(sl.remove(b"foo.bar", q("g"), &1));
        let m = sl.matches(b"foo.bar");
        assert_eq!(plain_sorted(&m), [1]);
        assert_eq!(queues_sorted(&m), groups(&[("g", &[1])]));
        assert_eq!(sl.len(), 2);
        sl.check_invariants();
    }

    #[test]
    fn remove_of_absent_returns_false() {
        let mut sl = Sublist::new(64);
        assert!(!sl.remove(b"foo", NOQ, &1));
        sl.insert(b"foo.bar", NOQ, 1);
        sl.insert(b"foo.bar", q("g"), 2);
        let before = sl.node_count();
        // Wrong value, wrong subject, a prefix, a longer subject, wrong queue, plain vs queue.
        assert!(!sl.remove(b"foo.bar", NOQ, &9));
        assert!(!sl.remove(b"foo.baz", NOQ, &1));
        assert!(!sl.remove(b"foo", NOQ, &1));
        assert!(!sl.remove(b"foo.bar.baz", NOQ, &1));
        assert!(!sl.remove(b"foo.*", NOQ, &1));
        assert!(!sl.remove(b"foo.>", NOQ, &1));
        assert!(!sl.remove(b"foo.bar", q("h"), &2));
        assert!(!sl.remove(b"foo.bar", q("g"), &1));
        assert!(!sl.remove(b"foo.bar", NOQ, &2));
        assert_eq!(sl.len(), 2);
        assert_eq!(sl.node_count(), before);
        assert!(sl.remove(b"foo.bar", NOQ, &1));
        assert!(!sl.remove(b"foo.bar", NOQ, &1));
        sl.check_invariants();
    }

    #[test]
    fn removing_everything_prunes_back_to_the_root() {
        let mut sl = Sublist::new(64);
        let subs: &[(&[u8], Q<'_>, u32)] = &[
            (b"a", NOQ, 1),
            (b"a.b", NOQ, 2),
            (b"a.b.c.d.e", NOQ, 3),
            (b"a.*.c", q("g"), 4),
            (b"a.>", NOQ, 5),
            (b"*", NOQ, 6),
            (b">", q("h"), 7),
            (b"x.y.z", NOQ, 8),
            (b"x.y.z", NOQ, 8),
            (b"*.*.>", NOQ, 9),
        ];
        for &(subject, queue, value) in subs {
            sl.insert(subject, queue, value);
        }
        assert_eq!(sl.len(), subs.len());
        assert!(sl.node_count() > 1);
        sl.check_invariants();
        // Remove in an order that leaves parents with and without subscriptions.
        for &(subject, queue, value) in subs.iter().rev() {
            assert!(sl.remove(subject, queue, &value));
            sl.check_invariants();
        }
        assert_eq!(sl.len(), 0);
        assert!(sl.is_empty());
        assert_eq!(sl.node_count(), 1);
        // And in insertion order.
        for &(subject, queue, value) in subs {
            sl.insert(subject, queue, value);
        }
        for &(subject, queue, value) in subs {
            assert!(sl.remove(subject, queue, &value));
            sl.check_invariants();
        }
        assert_eq!(sl.node_count(), 1);
        assert!(sl.matches(b"a.b").is_empty());
    }

    #[test]
    fn pruning_keeps_nodes_that_still_hold_something() {
        let mut sl = Sublist::new(0);
        sl.insert(b"a", NOQ, 1);
        sl.insert(b"a.b.c", NOQ, 2);
        assert_eq!(sl.node_count(), 4);
        assert!(sl.remove(b"a.b.c", NOQ, &2));
        // "a" holds a subscription, so only "b" and "c" go.
        assert_eq!(sl.node_count(), 2);
        sl.check_invariants();
        assert_eq!(plain_of(&mut sl, "a"), [1]);
        sl.insert(b"a.b.c", NOQ, 2);
        sl.insert(b"a.b.d", NOQ, 3);
        assert!(sl.remove(b"a.b.c", NOQ, &2));
        // "b" still leads to "d".
        assert_eq!(sl.node_count(), 4);
        assert_eq!(plain_of(&mut sl, "a.b.d"), [3]);
        assert!(sl.remove(b"a", NOQ, &1));
        assert_eq!(sl.node_count(), 4);
        assert_eq!(plain_of(&mut sl, "a.b.d"), [3]);
        assert!(sl.remove(b"a.b.d", NOQ, &3));
        assert_eq!(sl.node_count(), 1);
    }

    #[test]
    fn cache_hit_returns_the_same_rc() {
        let mut sl = Sublist::new(16);
        sl.insert(b"foo.*", NOQ, 1);
        let first = sl.matches(b"foo.bar");
        assert_eq!(sl.walks, 1);
        assert_eq!(sl.cache_len(), 1);
        let second = sl.matches(b"foo.bar");
        assert!(Rc::ptr_eq(&first, &second));
        assert_eq!(sl.walks, 1, "a cache hit must not walk the trie");
        // A different subject is a miss.
        let other = sl.matches(b"foo.baz");
        assert_eq!(sl.walks, 2);
        assert!(!Rc::ptr_eq(&first, &other));
        assert_eq!(sl.cache_len(), 2);
        // Subjects matching nothing are cached too.
        assert!(sl.matches(b"nope").is_empty());
        assert!(sl.matches(b"nope").is_empty());
        assert_eq!(sl.walks, 3);
    }

    #[test]
    fn cache_disabled_with_zero() {
        let mut sl = Sublist::new(0);
        sl.insert(b"foo", NOQ, 1);
        let first = sl.matches(b"foo");
        let second = sl.matches(b"foo");
        assert_eq!(sl.cache_len(), 0);
        assert_eq!(sl.walks, 2);
        assert_eq!(*first, *second);
    }

    #[test]
    fn cache_invalidated_by_insert_and_remove() {
        let mut sl = Sublist::new(16);
        sl.insert(b"foo.bar", NOQ, 1);
        let before = sl.matches(b"foo.bar");
        assert_eq!(plain_sorted(&before), [1]);
        // Insert under a wildcard that matches the cached subject.
        sl.insert(b"foo.*", NOQ, 2);
        assert_eq!(sl.cache_len(), 0);
        let after = sl.matches(b"foo.bar");
        assert!(!Rc::ptr_eq(&before, &after));
        assert_eq!(plain_sorted(&after), [1, 2]);
        // The old result is unchanged for whoever still holds it.
        assert_eq!(plain_sorted(&before), [1]);
        sl.insert(b"foo.bar", q("g"), 3);
        assert_eq!(
            queues_sorted(&sl.matches(b"foo.bar")),
            groups(&[("g", &[3])])
        );
        // Remove.
        sl.matches(b"foo.bar");
        assert!(sl.remove(b"foo.bar", NOQ, &1));
        let m = sl.matches(b"foo.bar");
        assert_eq!(plain_sorted(&m), [2]);
        assert!(sl.remove(b"foo.bar", q("g"), &3));
        assert!(sl.matches(b"foo.bar").queues.is_empty());
        assert!(sl.remove(b"foo.*", NOQ, &2));
        assert!(sl.matches(b"foo.bar").is_empty());
        // A failed remove changes nothing, but must not break anything either.
        sl.insert(b"foo.bar", NOQ, 4);
        let cached = sl.matches(b"foo.bar");
        assert!(!sl.remove(b"foo.bar", NOQ, &5));
        assert_eq!(*sl.matches(b"foo.bar"), *cached);
    }

    #[test]
    fn cache_is_bounded() {
        for max in [1usize, 2, 3, 7, 64] {
            let mut sl = Sublist::new(max);
            sl.insert(b"s.>", NOQ, 1);
            sl.insert(b"s.5", NOQ, 2);
            for i in 0..max + 10 {
                let subject = format!("s.{i}");
                let m = sl.matches(subject.as_bytes());
                assert!(
                    sl.cache_len() <= max,
                    "cache_len {} > {max}",
                    sl.cache_len()
                );
                let want: &[u32] = if i == 5 { &[1, 2] } else { &[1] };
                assert_eq!(plain_sorted(&m), want);
            }
            assert!(sl.cache_len() >= 1);
            // Entries that survived eviction still give correct results.
            for i in 0..max + 10 {
                let subject = format!("s.{i}");
                let want: &[u32] = if i == 5 { &[1, 2] } else { &[1] };
                assert_eq!(plain_of(&mut sl, &subject), want);
                assert!(sl.cache_len() <= max);
            }
        }
    }

    #[test]
    fn invalid_publish_subjects_match_nothing() {
        let mut sl = Sublist::new(16);
        sl.insert(b">", NOQ, 1);
        sl.insert(b"*", NOQ, 2);
        sl.insert(b"foo.*", NOQ, 3);
        sl.insert(b"foo.>", NOQ, 4);
        sl.insert(b"*.*", q("g"), 5);
        let invalid: &[&[u8]] = &[
            b"",
            b".",
            b"foo.",
            b".foo",
            b"foo..bar",
            b"*",
            b">",
            b"foo.*",
            b"foo.>",
            b"*.bar",
            b"foo.>.bar",
            b"foo bar",
            b"foo.b\tr",
            b"foo\0",
        ];
        for subject in invalid {
            let m = sl.matches(subject);
            assert!(m.is_empty(), "{:?}", String::from_utf8_lossy(subject));
        }
        assert_eq!(sl.cache_len(), 0, "invalid subjects must not be cached");
        assert_eq!(sl.walks, 0);
        // Sanity: the same subscriptions do match valid subjects.
        assert_eq!(plain_of(&mut sl, "foo.bar"), [1, 3, 4]);
    }

    #[test]
    fn invalid_subscription_subjects_never_match() {
        let mut sl = Sublist::new(16);
        sl.insert(b"foo.>.bar", NOQ, 1);
        sl.insert(b"foo..bar", NOQ, 2);
        sl.insert(b"", NOQ, 3);
        assert_eq!(sl.len(), 3);
        for subject in ["foo.x.bar", "foo.bar", "foo", "foo.x"] {
            assert!(sl.matches(subject.as_bytes()).is_empty(), "{subject}");
        }
        assert!(sl.remove(b"foo.>.bar", NOQ, &1));
        assert!(sl.remove(b"foo..bar", NOQ, &2));
        assert!(sl.remove(b"", NOQ, &3));
        assert_eq!(sl.node_count(), 1);
    }

    /// A subject far deeper than any recursion could handle on a 2 MB test-thread stack.
    #[test]
    fn very_deep_subjects_do_not_overflow_the_stack() {
        const DEPTH: usize = 200_000;
        let mut subject = b"a.".repeat(DEPTH - 1);
        subject.push(b'a');
        let mut pattern = b"*.".repeat(DEPTH - 1);
        pattern.push(b'>');
        let mut sl = Sublist::new(4);
        sl.insert(&subject, NOQ, 1);
        sl.insert(&pattern, NOQ, 2);
        assert_eq!(sl.node_count(), 1 + 2 * DEPTH);
        let mut longer = subject.clone();
        longer.extend_from_slice(b".b.c");
        let mut shorter = b"a.".repeat(DEPTH - 2);
        shorter.push(b'a');
        // The pattern's '>' is its DEPTH-th token, so it needs at least DEPTH tokens.
        assert_eq!(plain_sorted(&sl.matches(&subject)), [1, 2]);
        assert_eq!(plain_sorted(&sl.matches(&longer)), [2]);
        assert!(sl.matches(&shorter).is_empty());
        assert!(sl.remove(&subject, NOQ, &1));
        assert_eq!(sl.node_count(), 1 + DEPTH);
        // Dropping the sublist drops the remaining deep chain.
        drop(sl);
    }

    #[test]
    fn ten_thousand_subscriptions() {
        let mut sl = Sublist::new(1024);
        for i in 0..10_000u32 {
            sl.insert(format!("bench.{i}.data").as_bytes(), NOQ, i);
        }
        sl.insert(b"bench.*.data", NOQ, 100_000);
        sl.insert(b"bench.>", NOQ, 100_001);
        sl.insert(b"bench.5000.*", NOQ, 100_002);
        sl.insert(b"bench.*.data", q("workers"), 200_000);
        sl.insert(b"bench.*.*", q("workers"), 200_001);
        assert_eq!(sl.len(), 10_005);
        sl.check_invariants();

        let m = sl.matches(b"bench.5000.data");
        assert_eq!(plain_sorted(&m), [5000, 100_000, 100_001, 100_002]);
        assert_eq!(
            queues_sorted(&m),
            groups(&[("workers", &[200_000, 200_001])])
        );
        assert_eq!(plain_of(&mut sl, "bench.0.data"), [0, 100_000, 100_001]);
        assert_eq!(
            plain_of(&mut sl, "bench.9999.data"),
            [9999, 100_000, 100_001]
        );
        assert_eq!(plain_of(&mut sl, "bench.10000.data"), [100_000, 100_001]);
        assert_eq!(plain_of(&mut sl, "bench.5000.other"), [100_001, 100_002]);
        assert_eq!(plain_of(&mut sl, "bench.1.data.x"), [100_001]);
        assert!(sl.matches(b"bench").is_empty());
        assert!(sl.matches(b"other.1.data").is_empty());

        for i in 0..10_000u32 {
            assert!(sl.remove(format!("bench.{i}.data").as_bytes(), NOQ, &i));
        }
        assert_eq!(sl.len(), 5);
        sl.check_invariants();
        assert_eq!(
            plain_of(&mut sl, "bench.5000.data"),
            [100_000, 100_001, 100_002]
        );
        // What is left: root, bench, the '*' and '5000' and '>' children, and their children.
        assert_eq!(sl.node_count(), 8);
        // The root's literal map gave its memory back.
        let Some(bench) = sl.root.literals.get(&b"bench"[..]) else {
            panic!("bench node missing");
        };
        let Some(level) = bench.next.as_deref() else {
            panic!("bench has no next level");
        };
        assert!(
            level.literals.capacity() < 64,
            "{}",
            level.literals.capacity()
        );
    }

    /// Small deterministic PRNG (xorshift64*).
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The reference: does one pattern match one literal subject?
    fn naive_match(pattern: &[u8], subject: &[u8]) -> bool {
        let p: Vec<&[u8]> = tokens(pattern).collect();
        let s: Vec<&[u8]> = tokens(subject).collect();
        for (i, &pt) in p.iter().enumerate() {
            if pt == b">" {
                return s.len() > i;
            }
            let Some(&st) = s.get(i) else {
                return false;
            };
            if pt != b"*" && pt != st {
                return false;
            }
        }
        p.len() == s.len()
    }

    #[test]
    fn naive_matcher_agrees_with_the_spec_examples() {
        assert!(naive_match(b"foo.>", b"foo.bar"));
        assert!(naive_match(b"foo.>", b"foo.bar.baz"));
        assert!(!naive_match(b"foo.>", b"foo"));
        assert!(naive_match(b"foo.*", b"foo.bar"));
        assert!(!naive_match(b"foo.*", b"foo.bar.baz"));
        assert!(!naive_match(b"foo.*", b"foo"));
        assert!(naive_match(b"foo", b"foo"));
        assert!(!naive_match(b"foo", b"foo.bar"));
        assert!(naive_match(b">", b"a.b"));
    }

    struct Entry {
        pattern: Vec<u8>,
        queue: Option<Vec<u8>>,
        value: u32,
    }

    fn random_subject(rng: &mut XorShift, wildcards: bool) -> Vec<u8> {
        const LITERALS: [&str; 3] = ["a", "b", "cc"];
        let len = 1 + rng.below(4);
        let mut out = Vec::new();
        for i in 0..len {
            if i > 0 {
                out.push(b'.');
            }
            let pick = rng.below(if wildcards { 10 } else { 3 });
            let token = match pick {
                0..=2 => LITERALS[pick],
                3..=5 => "*",
                6 if i + 1 == len => ">",
                _ => LITERALS[pick % 3],
            };
            out.extend_from_slice(token.as_bytes());
        }
        out
    }

    fn check_against_reference(sl: &mut Sublist<u32>, model: &[Entry], subject: &[u8]) {
        let m = sl.matches(subject);
        let mut want_plain: Vec<u32> = Vec::new();
        let mut want_queues: BTreeMap<Vec<u8>, Vec<u32>> = BTreeMap::new();
        for e in model.iter().filter(|e| naive_match(&e.pattern, subject)) {
            match &e.queue {
                None => want_plain.push(e.value),
                Some(name) => want_queues.entry(name.clone()).or_default().push(e.value),
            }
        }
        want_plain.sort();
        want_queues.values_mut().for_each(|v| v.sort());
        let shown = String::from_utf8_lossy(subject);
        assert_eq!(plain_sorted(&m), want_plain, "plain for {shown}");
        assert_eq!(queues_sorted(&m), want_queues, "queues for {shown}");
    }

    fn property_run(seed: u64, cache_entries_max: usize) {
        const QUEUES: [&str; 3] = ["q1", "q2", "Q1"];
        let mut rng = XorShift(seed);
        let mut sl = Sublist::new(cache_entries_max);
        let mut model: Vec<Entry> = Vec::new();
        for step in 0..3_000 {
            match rng.below(10) {
                // Insert.
                0..=3 => {
                    let pattern = random_subject(&mut rng, true);
                    let queue = match rng.below(3) {
                        0 => Some(QUEUES[rng.below(3)].as_bytes().to_vec()),
                        _ => None,
                    };
                    // A small value range makes exact duplicates common.
                    let value = rng.below(20) as u32;
                    sl.insert(&pattern, queue.as_deref(), value);
                    model.push(Entry {
                        pattern,
                        queue,
                        value,
                    });
                }
                // Remove an existing entry.
                4 | 5 if !model.is_empty() => {
                    let e = model.swap_remove(rng.below(model.len()));
                    assert!(sl.remove(&e.pattern, e.queue.as_deref(), &e.value));
                }
                // Remove a random, possibly absent, entry.
                6 => {
                    let pattern = random_subject(&mut rng, true);
                    let queue = (rng.below(2) == 0).then(|| QUEUES[rng.below(3)].as_bytes());
                    let value = rng.below(20) as u32;
                    let found = model.iter().position(|e| {
                        e.pattern == pattern && e.queue.as_deref() == queue && e.value == value
                    });
                    assert_eq!(sl.remove(&pattern, queue, &value), found.is_some());
                    if let Some(at) = found {
                        model.swap_remove(at);
                    }
                }
                // Match (twice, so cache hits are compared too).
                _ => {
                    let subject = random_subject(&mut rng, false);
                    check_against_reference(&mut sl, &model, &subject);
                    check_against_reference(&mut sl, &model, &subject);
                }
            }
            assert_eq!(sl.len(), model.len());
            assert!(sl.cache_len() <= cache_entries_max);
            if step % 100 == 0 {
                sl.check_invariants();
            }
        }
        // Every short literal subject over the alphabet.
        let mut all: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let mut longer = Vec::new();
            for prefix in &all {
                for token in ["a", "b", "cc", "d"] {
                    let mut s = prefix.clone();
                    if !s.is_empty() {
                        s.push(b'.');
                    }
                    s.extend_from_slice(token.as_bytes());
                    longer.push(s);
                }
            }
            for s in &longer {
                check_against_reference(&mut sl, &model, s);
            }
            all = longer;
        }
        // Drain and check the trie is back to its root.
        while let Some(e) = model.pop() {
            assert!(sl.remove(&e.pattern, e.queue.as_deref(), &e.value));
        }
        assert!(sl.is_empty());
        assert_eq!(sl.node_count(), 1);
    }

    #[test]
    fn property_matches_agree_with_naive_reference() {
        for seed in 1..=8u64 {
            property_run(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), 8);
        }
        property_run(0xDEAD_BEEF, 0);
        property_run(0x1234_5678, 1);
        property_run(0xC0FF_EE00, 4096);
    }
}
