//! Sublist tests: owns the checks of matching, removal by id, pruning, the match cache and
//! its invalidation, and the model-based runs against [`pattern_matches`].
//!
//! Shared here: small helpers to compare matches, a deterministic PRNG, and the structural
//! checks (`node_count`, `check_invariants`) the tests call after changes.

mod cache;
mod ids;
mod matching;
mod model;
mod removal;
mod work;

use std::collections::BTreeMap;

use super::{EntryId, Match, Sublist};

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

/// Removes an entry that must be there and checks the value that comes back.
fn remove_ok(sl: &mut Sublist<u32>, subject: &[u8], queue: Q<'_>, id: EntryId, value: u32) {
    assert_eq!(sl.remove(subject, queue, id), Some(value));
}

impl<V> Sublist<V> {
    /// Trie nodes, counting the root level as one node.
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

    /// Checks the pruning and id invariants: every node holds an entry or leads to one, no
    /// `next` level is empty, no queue group is empty, every listed id sits where the slab
    /// says, and the entry count matches `len()`.
    fn check_invariants(&self) {
        self.slab.check_invariants();
        let mut entries = 0;
        let mut stack = vec![&self.root];
        while let Some(level) = stack.pop() {
            for node in level.children() {
                let has_entries = !node.plain.is_empty() || !node.queues.is_empty();
                assert!(has_entries || node.next.is_some(), "dead node");
                if let Some(next) = node.next.as_deref() {
                    assert!(next.children().next().is_some(), "empty next level");
                    stack.push(next);
                }
                let lists = std::iter::once(&node.plain).chain(node.queues.values());
                for list in lists {
                    list.check_invariants(&self.slab);
                    entries += list.len();
                }
                assert!(
                    node.queues.values().all(|m| !m.is_empty()),
                    "empty queue group"
                );
            }
        }
        assert_eq!(entries, self.len(), "len() disagrees with the trie");
    }
}
