//! One shard's history: the last messages of each subject the shard owns, bounded three
//! ways (messages per subject, bytes per subject, the shard's share of the global byte
//! budget) and by the number of subjects. Over the budget, the oldest messages of the
//! subject written least recently go first; over the subject count, that whole subject
//! goes (and its recording stops).

use std::collections::VecDeque;
use std::time::SystemTime;

use bytes::Bytes;
use rustc_hash::FxHashMap;

use crate::history::HistoryConfig;

/// What one kept message costs beyond its bytes (the entry, its place in the queue).
pub const ENTRY_OVERHEAD_BYTES: usize = 64;

/// One kept message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When the owner shard received it.
    pub at: SystemTime,
    /// Its NATS header block (`NATS/1.0\r\n…`), if any.
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

impl Entry {
    fn cost(&self) -> usize {
        ENTRY_OVERHEAD_BYTES + self.payload.len() + self.headers.as_ref().map_or(0, Bytes::len)
    }
}

#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<Entry>,
    bytes: usize,
    /// The store's clock when this subject was last written (or started).
    used: u64,
}

impl Log {
    fn pop_oldest(&mut self) -> usize {
        let cost = self.entries.pop_front().map_or(0, |e| e.cost());
        self.bytes -= cost;
        cost
    }
}

/// What [`Store::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recorded {
    /// The message was kept (false: larger than `history.max_bytes` on its own).
    pub kept: bool,
    /// Older messages dropped to make room (per subject or for the budget).
    pub evicted: u64,
}

/// One shard's kept messages.
#[derive(Debug)]
pub struct Store {
    messages_max: usize,
    subject_bytes_max: usize,
    /// This shard's share of `history.budget`.
    budget_bytes: usize,
    /// This shard's share of `history.subjects_max`.
    subjects_max: usize,
    logs: FxHashMap<String, Log>,
    bytes: usize,
    clock: u64,
}

impl Store {
    pub fn new(cfg: &HistoryConfig, shards: usize) -> Self {
        let shards = shards.max(1);
        Store {
            messages_max: cfg.messages,
            subject_bytes_max: cfg.subject_bytes_max,
            budget_bytes: (cfg.budget_bytes / shards).max(1),
            subjects_max: cfg.subjects_max.div_ceil(shards).max(1),
            logs: FxHashMap::default(),
            bytes: 0,
            clock: 0,
        }
    }

    /// Starts keeping `subject` if it is not kept yet. At the subject bound the subject
    /// written least recently is dropped to make room and returned (its recording stops).
    /// Returns `(new, dropped)`.
    pub fn keep(&mut self, subject: &str) -> (bool, Option<String>) {
        self.clock += 1;
        if let Some(log) = self.logs.get_mut(subject) {
            log.used = self.clock;
            return (false, None);
        }
        let dropped = if self.logs.len() >= self.subjects_max {
            self.least_recent().inspect(|s| {
                if let Some(log) = self.logs.remove(s) {
                    self.bytes -= log.bytes;
                }
            })
        } else {
            None
        };
        self.logs.insert(
            subject.to_string(),
            Log {
                used: self.clock,
                ..Log::default()
            },
        );
        (true, dropped)
    }

    /// True if `subject` is kept.
    pub fn is_kept(&self, subject: &str) -> bool {
        self.logs.contains_key(subject)
    }

    /// Adds `entry` to `subject`'s history (which must be kept), dropping the oldest
    /// messages over the bounds.
    pub fn record(&mut self, subject: &str, entry: Entry) -> Recorded {
        let cost = entry.cost();
        if cost > self.subject_bytes_max || self.messages_max == 0 {
            return Recorded::default();
        }
        self.clock += 1;
        let Some(log) = self.logs.get_mut(subject) else {
            return Recorded::default();
        };
        let mut evicted = 0;
        let mut freed = 0;
        while !log.entries.is_empty()
            && (log.entries.len() >= self.messages_max || log.bytes + cost > self.subject_bytes_max)
        {
            freed += log.pop_oldest();
            evicted += 1;
        }
        log.entries.push_back(entry);
        log.bytes += cost;
        log.used = self.clock;
        self.bytes = self.bytes - freed + cost;
        while self.bytes > self.budget_bytes {
            let Some(victim) = self.least_recent_with_entries() else {
                break;
            };
            if let Some(log) = self.logs.get_mut(&victim) {
                self.bytes -= log.pop_oldest();
                evicted += 1;
            }
        }
        Recorded {
            kept: true,
            evicted,
        }
    }

    /// `subject`'s kept messages, oldest first (empty if none).
    pub fn entries(&self, subject: &str) -> impl DoubleEndedIterator<Item = &Entry> {
        self.logs.get(subject).into_iter().flat_map(|l| &l.entries)
    }

    /// Bytes kept, overhead included.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Subjects kept.
    pub fn subjects(&self) -> usize {
        self.logs.len()
    }

    fn least_recent(&self) -> Option<String> {
        self.logs
            .iter()
            .min_by_key(|(_, l)| l.used)
            .map(|(s, _)| s.clone())
    }

    fn least_recent_with_entries(&self) -> Option<String> {
        self.logs
            .iter()
            .filter(|(_, l)| !l.entries.is_empty())
            .min_by_key(|(_, l)| l.used)
            .map(|(s, _)| s.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(messages: usize, subject_bytes_max: usize, budget_bytes: usize) -> HistoryConfig {
        HistoryConfig {
            messages,
            subject_bytes_max,
            budget_bytes,
            subjects_max: 3,
            ..HistoryConfig::default()
        }
    }

    fn entry(text: &str) -> Entry {
        Entry {
            at: SystemTime::UNIX_EPOCH,
            headers: None,
            payload: Bytes::copy_from_slice(text.as_bytes()),
        }
    }

    fn texts(s: &Store, subject: &str) -> Vec<String> {
        s.entries(subject)
            .map(|e| String::from_utf8_lossy(&e.payload).into_owned())
            .collect()
    }

    #[test]
    fn keeps_the_last_n_in_order() {
        let mut s = Store::new(&cfg(3, 1 << 20, 1 << 20), 1);
        assert_eq!(s.keep("a"), (true, None));
        assert_eq!(s.keep("a"), (false, None));
        for i in 0..5 {
            s.record("a", entry(&format!("m{i}")));
        }
        assert_eq!(texts(&s, "a"), ["m2", "m3", "m4"]);
        assert!(texts(&s, "b").is_empty());
        // Not kept: nothing recorded.
        assert!(!s.record("b", entry("x")).kept);
        assert!(texts(&s, "b").is_empty());
    }

    #[test]
    fn bytes_per_subject_are_bounded() {
        let one = entry("0123456789").cost();
        let mut s = Store::new(&cfg(100, 2 * one, 1 << 20), 1);
        s.keep("a");
        for _ in 0..3 {
            s.record("a", entry("0123456789"));
        }
        assert_eq!(texts(&s, "a").len(), 2);
        assert_eq!(s.bytes(), 2 * one);
        // Larger than the bound alone: not kept, nothing dropped.
        let big = "x".repeat(3 * one);
        assert_eq!(s.record("a", entry(&big)), Recorded::default());
        assert_eq!(texts(&s, "a").len(), 2);
    }

    #[test]
    fn the_budget_takes_from_the_least_recently_written_subject() {
        let one = entry("m").cost();
        // Two shards share a budget of 6 entries: 3 each.
        let mut s = Store::new(&cfg(100, 1 << 20, 6 * one), 2);
        s.keep("old");
        s.keep("new");
        s.record("old", entry("1"));
        s.record("old", entry("2"));
        assert_eq!(s.record("new", entry("3")).evicted, 0);
        let r = s.record("new", entry("4"));
        assert_eq!(r.evicted, 1);
        assert_eq!(texts(&s, "old"), ["2"]);
        assert_eq!(texts(&s, "new"), ["3", "4"]);
        assert_eq!(s.bytes(), 3 * one);
    }

    #[test]
    fn the_subject_bound_drops_the_least_recent_subject() {
        let mut s = Store::new(&cfg(10, 1 << 20, 1 << 20), 1);
        s.keep("a");
        s.keep("b");
        s.keep("c");
        s.record("a", entry("a1"));
        s.record("c", entry("c1"));
        assert_eq!(s.keep("d"), (true, Some("b".to_string())));
        assert_eq!(s.subjects(), 3);
        assert!(!s.is_kept("b"));
        assert_eq!(s.keep("e"), (true, Some("a".to_string())));
        assert_eq!(s.bytes(), entry("c1").cost());
    }

    #[test]
    fn zero_messages_keeps_nothing() {
        let mut s = Store::new(&cfg(0, 1 << 20, 1 << 20), 1);
        s.keep("a");
        assert!(!s.record("a", entry("x")).kept);
        assert_eq!(s.bytes(), 0);
    }
}
