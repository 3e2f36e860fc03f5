//! The sublist owns one shard's subscriptions: it maps subscription patterns to values and
//! answers, for a published subject, every value whose pattern matches (input: inserts and
//! removes by subject, queue and [`EntryId`]; output: shared [`Match`] results).
//!
//! The shape follows nats-server's `server/sublist.go`:
//! - `trie`: levels of literal tokens plus `*` and `>` slots; nodes hold the plain entries
//!   and queue groups whose subject ends there. Empty nodes are pruned after a remove.
//! - `entries`: the id of every entry and where it sits, so removal is O(tokens of the
//!   subject) however many entries share the node.
//! - `collect`: the walk that gathers a published subject's matches.
//! - `cache`: a bounded cache of match results, invalidated only for the subjects an
//!   inserted or removed pattern matches.
//!
//! Everything is iterative (insert, remove, match, drop), so a subject with a very large
//! number of tokens cannot overflow the stack. The structure is shard-local: no locks, no
//! `Arc`.

mod cache;
mod collect;
mod entries;
mod trie;

#[cfg(test)]
mod tests;

use std::rc::Rc;

use super::validate::is_valid_literal_subject;
use cache::MatchCache;
use entries::Slab;
use trie::Level;

pub use entries::EntryId;

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

/// One shard's subscriptions, indexed for matching published subjects, with a match cache.
pub struct Sublist<V> {
    root: Level<V>,
    /// Where each live entry sits; its length is the number of entries stored.
    slab: Slab,
    cache: MatchCache<V>,
    /// Shared result for subjects that match nothing.
    empty: Rc<Match<V>>,
    /// Matches asked for, and those the cache answered (for `/subsz`).
    matches_total: u64,
    cache_hits: u64,
    /// Trie walks done by `matches` (cache misses on valid subjects).
    #[cfg(test)]
    walks: usize,
}

impl<V> std::fmt::Debug for Sublist<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sublist")
            .field("len", &self.len())
            .field("cache_len", &self.cache.len())
            .field("cache_entries_max", &self.cache.entries_max())
            .finish_non_exhaustive()
    }
}

impl<V> Sublist<V> {
    /// `cache_entries_max` bounds the match cache (0 disables it).
    pub fn new(cache_entries_max: usize) -> Self {
        Sublist {
            root: Level::default(),
            slab: Slab::default(),
            cache: MatchCache::new(cache_entries_max),
            empty: Rc::new(Match::default()),
            matches_total: 0,
            cache_hits: 0,
            #[cfg(test)]
            walks: 0,
        }
    }

    /// Matches asked for so far, and how many the cache answered.
    pub fn match_stats(&self) -> (u64, u64) {
        (self.matches_total, self.cache_hits)
    }

    /// Adds one entry and returns its id, the handle to remove it with. `subject` was
    /// validated with is_valid_subject by the caller. Duplicates are allowed: inserting the
    /// same (subject, queue, value) twice stores two entries with two ids.
    ///
    /// An invalid subject is stored as given and counted, but can never match: published
    /// subjects with empty tokens are rejected, and a `>` node is never descended into.
    pub fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, value: V) -> EntryId {
        let node = self.root.node_or_insert(subject);
        let id = node.list_or_insert(queue).push(value, &mut self.slab);
        self.cache.invalidate(subject);
        id
    }

    /// Removes the entry `id` stored under (subject, queue): O(tokens of subject), independent of
    /// how many entries share the node. Returns its value, or None if `id` is not there.
    ///
    /// A removed, stale or unknown id returns None and changes nothing. Naming a live id under
    /// the wrong subject or queue is the caller's bug: it asserts in debug builds and returns
    /// None (changing nothing) in release builds. Prunes empty nodes so memory returns after
    /// churn.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, id: EntryId) -> Option<V> {
        let position = self.slab.position(id)?;
        let taken = self
            .root
            .find_mut(subject)
            .and_then(|node| node.take(queue, id, position, &mut self.slab));
        debug_assert!(
            taken.is_some(),
            "{id:?} is live but not under subject {:?} queue {:?}",
            String::from_utf8_lossy(subject),
            queue.map(String::from_utf8_lossy),
        );
        let value = taken?;
        self.cache.invalidate(subject);
        self.root.prune(subject);
        Some(value)
    }

    /// Number of entries (subscriptions) stored.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of entries currently in the match cache (for tests/metrics).
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }
}

impl<V: Clone> Sublist<V> {
    /// All subscriptions matching a literal published subject. Cached: a second match of the
    /// same subject returns the same Rc (Rc::ptr_eq) without walking the trie for as long as
    /// no insert or remove under a pattern matching that subject happened in between (or the
    /// bounded cache evicted it). A subject that is not a valid literal (empty token, contains
    /// a wildcard token) matches nothing.
    pub fn matches(&mut self, subject: &[u8]) -> Rc<Match<V>> {
        self.matches_total += 1;
        // Only valid literal subjects are ever cached, so a hit needs no validation.
        if let Some(hit) = self.cache.get(subject) {
            self.cache_hits += 1;
            return Rc::clone(hit);
        }
        if !is_valid_literal_subject(subject) {
            return Rc::clone(&self.empty);
        }
        #[cfg(test)]
        {
            self.walks += 1;
        }
        let found = collect::collect(&self.root, subject);
        let result = if found.is_empty() {
            Rc::clone(&self.empty)
        } else {
            Rc::new(found)
        };
        self.cache.store(subject, &result);
        result
    }
}

/// Counts `steps` of work done by an insert or remove, so tests can check complexity without
/// a clock. Compiled out outside tests.
#[cfg(not(test))]
#[inline(always)]
fn count_work(_steps: usize) {}

#[cfg(test)]
thread_local! {
    /// Work counted on this test thread since the last `take_work`.
    static WORK_STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn count_work(steps: usize) {
    WORK_STEPS.with(|work| work.set(work.get() + steps));
}

/// Work counted on this thread since the last call.
#[cfg(test)]
fn take_work() -> usize {
    WORK_STEPS.with(|work| work.replace(0))
}
