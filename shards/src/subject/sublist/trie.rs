//! The subject trie: owns the levels and nodes that store entries by subscription subject,
//! and the mechanics of finding, creating and pruning the node for one subject.
//!
//! Each level holds a map of literal tokens plus one `*` slot and one `>` slot; each node
//! holds the plain entries and the queue groups whose subject ends there, and the next level
//! for longer subjects. Every walk here is a loop, and dropping a level uses an explicit
//! stack, so a subject with a very large number of tokens cannot overflow the stack.

use rustc_hash::FxHashMap;

use super::count_work;
use super::entries::{EntryId, EntryList, Slab};

/// Splits a subject into its tokens without allocating.
#[inline]
fn tokens(subject: &[u8]) -> std::slice::Split<'_, u8, impl FnMut(&u8) -> bool> {
    subject.split(|&b| b == b'.')
}

/// Splits off the first token; the rest is `None` when `rest` held only one token.
#[inline]
pub(super) fn first_token(rest: &[u8]) -> (&[u8], Option<&[u8]>) {
    match rest.iter().position(|&b| b == b'.') {
        Some(dot) => (&rest[..dot], Some(&rest[dot + 1..])),
        None => (rest, None),
    }
}

/// Gives a map's memory back once it holds a quarter of its capacity or less.
fn shrink_map<K: std::hash::Hash + Eq, T>(map: &mut FxHashMap<K, T>) {
    if map.is_empty() {
        *map = FxHashMap::default();
    } else if map.capacity() > 16 && map.len() * 4 <= map.capacity() {
        count_work(map.len());
        map.shrink_to(map.len() * 2);
    }
}

/// One trie node: the entries whose subject ends here, and the level below.
pub(super) struct Node<V> {
    pub(super) plain: EntryList<V>,
    /// Queue groups by name; a group is removed when its last member goes.
    pub(super) queues: FxHashMap<Box<[u8]>, EntryList<V>>,
    /// `None` whenever the level below would be empty.
    pub(super) next: Option<Box<Level<V>>>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            plain: EntryList::default(),
            queues: FxHashMap::default(),
            next: None,
        }
    }
}

impl<V> Node<V> {
    fn has_entries(&self) -> bool {
        !self.plain.is_empty() || !self.queues.is_empty()
    }

    fn next_children(&self) -> usize {
        self.next.as_ref().map_or(0, |level| level.child_count())
    }

    /// The plain list, or queue group `queue` (created if missing).
    pub(super) fn list_or_insert(&mut self, queue: Option<&[u8]>) -> &mut EntryList<V> {
        let Some(queue) = queue else {
            return &mut self.plain;
        };
        if !self.queues.contains_key(queue) {
            self.queues.insert(Box::from(queue), EntryList::default());
        }
        let Some(members) = self.queues.get_mut(queue) else {
            unreachable!("queue group inserted above");
        };
        members
    }

    /// Removes entry `id` (at `position`, as the slab says) from the plain list or from queue
    /// group `queue`; `None` and no change if it is not there.
    pub(super) fn take(
        &mut self,
        queue: Option<&[u8]>,
        id: EntryId,
        position: usize,
        slab: &mut Slab,
    ) -> Option<V> {
        let Some(queue) = queue else {
            return self.plain.take(id, position, slab);
        };
        let members = self.queues.get_mut(queue)?;
        let value = members.take(id, position, slab)?;
        if members.is_empty() {
            self.queues.remove(queue);
            shrink_map(&mut self.queues);
        }
        Some(value)
    }
}

/// One trie level: the children for the token at this depth.
pub(super) struct Level<V> {
    pub(super) literals: FxHashMap<Box<[u8]>, Node<V>>,
    /// The `*` child.
    pub(super) pwc: Option<Box<Node<V>>>,
    /// The `>` child.
    pub(super) fwc: Option<Box<Node<V>>>,
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
    pub(super) fn children(&self) -> impl Iterator<Item = &Node<V>> {
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

    /// The node where `subject` ends, created with its path if missing.
    pub(super) fn node_or_insert(&mut self, subject: &[u8]) -> &mut Node<V> {
        let mut level = self;
        let mut rest = subject;
        loop {
            let (token, tail) = first_token(rest);
            let node = level.child_or_insert(token);
            match tail {
                Some(tail) => {
                    level = node.next.get_or_insert_with(Box::default);
                    rest = tail;
                }
                None => return node,
            }
        }
    }

    /// The node where `subject` ends, if it exists.
    pub(super) fn find_mut(&mut self, subject: &[u8]) -> Option<&mut Node<V>> {
        let mut level = self;
        let mut rest = subject;
        loop {
            count_work(1);
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
    /// entry and lead to nothing else, so memory returns after churn.
    pub(super) fn prune(&mut self, subject: &[u8]) {
        let Some(cut) = self.prune_depth(subject) else {
            return;
        };
        let mut path = tokens(subject);
        if cut == 0 {
            if let Some(token) = path.next() {
                self.remove_child(token);
            }
            return;
        }
        // Walk to the surviving parent of the node at depth `cut` and drop that node.
        let mut level = self;
        for depth in 0..cut {
            count_work(1);
            let Some(token) = path.next() else {
                return;
            };
            let Some(node) = level.child_mut(token) else {
                return;
            };
            if depth + 1 == cut {
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

    /// The shallowest depth from which the path of `subject` holds nothing but itself, if
    /// the node where it ends is empty and leads nowhere.
    fn prune_depth(&self, subject: &[u8]) -> Option<usize> {
        let mut cut: Option<usize> = None;
        let mut level = self;
        let mut path = tokens(subject).enumerate().peekable();
        while let Some((depth, token)) = path.next() {
            count_work(1);
            let node = level.child(token)?;
            if path.peek().is_none() {
                if node.has_entries() || node.next_children() > 0 {
                    return None;
                }
                return cut.or(Some(depth));
            }
            // A node survives if it holds entries or leads anywhere but down this path.
            if node.has_entries() || node.next_children() != 1 {
                cut = None;
            } else if cut.is_none() {
                cut = Some(depth);
            }
            level = node.next.as_deref()?;
        }
        None
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
