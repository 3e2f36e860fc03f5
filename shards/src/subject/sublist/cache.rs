//! The match cache: owns the bounded map from a published subject to its shared match
//! result (input: a subject, or the pattern of an entry that came or went; output: a cached
//! `Rc<Match>`, or the keys that pattern affects dropped).
//!
//! Invalidation is per entry, as in nats-server's sublist: an insert or remove under pattern
//! P drops only the cached subjects P matches (for a literal P that one key, for a wildcard
//! P a scan of the keys). Every other cached `Rc` stays the same `Rc`, so callers can rely on
//! `Rc::ptr_eq` meaning "this subject's match has not changed".

use std::rc::Rc;

use rustc_hash::FxHashMap;

use super::count_work;
use super::Match;
use crate::subject::pattern::pattern_matches;

/// Match results by published subject, at most `entries_max` of them.
pub(super) struct MatchCache<V> {
    /// Only valid literal subjects are ever keys.
    map: FxHashMap<Box<[u8]>, Rc<Match<V>>>,
    /// 0 disables the cache.
    entries_max: usize,
}

impl<V> MatchCache<V> {
    pub(super) fn new(entries_max: usize) -> Self {
        MatchCache {
            map: FxHashMap::default(),
            entries_max,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn entries_max(&self) -> usize {
        self.entries_max
    }

    pub(super) fn get(&self, subject: &[u8]) -> Option<&Rc<Match<V>>> {
        self.map.get(subject)
    }

    /// Caches `result` for `subject`, a valid literal subject, making room if full.
    pub(super) fn store(&mut self, subject: &[u8], result: &Rc<Match<V>>) {
        if self.entries_max == 0 {
            return;
        }
        if self.map.len() >= self.entries_max {
            self.evict();
        }
        self.map.insert(Box::from(subject), Rc::clone(result));
        debug_assert!(self.map.len() <= self.entries_max);
    }

    /// Drops the cached results that an entry under `pattern` changes: those of the subjects
    /// `pattern` matches.
    pub(super) fn invalidate(&mut self, pattern: &[u8]) {
        if self.map.is_empty() {
            return;
        }
        if is_literal(pattern) {
            count_work(1);
            self.map.remove(pattern);
        } else {
            count_work(self.map.len());
            self.map
                .retain(|subject, _| !pattern_matches(pattern, subject));
        }
    }

    /// Makes room in a full cache by dropping every other entry: cheap, amortised O(1) per
    /// insert, and leaves the cache well under its bound.
    fn evict(&mut self) {
        let mut seen = 0usize;
        self.map.retain(|_, _| {
            seen += 1;
            seen % 2 == 0
        });
    }
}

/// Whether `pattern` has no wildcard token, so the only subject it can match is itself.
fn is_literal(pattern: &[u8]) -> bool {
    !pattern
        .split(|&b| b == b'.')
        .any(|token| token == b"*" || token == b">")
}
