//! Matching: owns the walk that gathers every entry whose pattern matches one published
//! subject (input: the trie's root level and a valid literal subject; output: a [`Match`]).
//!
//! As nats-server's `matchLevel`, the walk follows the literal token at each level, branches
//! into the `*` child and collects the `>` child; the `*` branches go on an explicit work list
//! instead of the call stack.

use rustc_hash::FxHashMap;

use super::trie::{first_token, Level, Node};
use super::{Match, QueueMatch};

/// Accumulates the entries of the matching nodes into a [`Match`].
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
        self.plain.extend_from_slice(node.plain.values());
        for (name, members) in &node.queues {
            let merged = self
                .by_name
                .get(&**name)
                .and_then(|&at| self.queues.get_mut(at));
            if let Some(group) = merged {
                group.members.extend_from_slice(members.values());
            } else {
                self.by_name.insert(name, self.queues.len());
                self.queues.push(QueueMatch {
                    name: name.clone(),
                    members: members.values().to_vec(),
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

/// Every entry under `root` whose pattern matches `subject`, a valid literal subject.
pub(super) fn collect<V: Clone>(root: &Level<V>, subject: &[u8]) -> Match<V> {
    let mut out = Collector::new();
    // Pending `*` branches: the level below a `*` node and the tokens left for it.
    let mut branches: Vec<(&Level<V>, &[u8])> = Vec::new();
    let mut start = Some((root, subject));
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
