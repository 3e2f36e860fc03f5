//! The busiest subjects of a shard: messages and bytes published to each (counted where
//! published) and delivered from each (counted where delivered), and how many subscribers
//! it had here when last used. A bounded table: it tracks up to four times the number of
//! subjects reported (`monitoring.top_subjects`), and when full it drops its less active
//! half at once, so a stream of distinct subjects (request inboxes) costs an amortised
//! O(log n) per new subject and never grows it past its bound.

use rustc_hash::FxHashMap;

/// Traffic of one subject on one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectStats {
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    /// Subscribers on this shard when the subject was last used here.
    pub subscribers: u64,
}

impl SubjectStats {
    /// What ranks subjects: messages in and out.
    pub fn activity(&self) -> u64 {
        self.in_msgs + self.out_msgs
    }

    pub fn add(&mut self, o: &SubjectStats) {
        self.in_msgs += o.in_msgs;
        self.in_bytes += o.in_bytes;
        self.out_msgs += o.out_msgs;
        self.out_bytes += o.out_bytes;
        self.subscribers += o.subscribers;
    }
}

/// A shard's bounded table of subjects.
#[derive(Debug)]
pub struct SubjectTable {
    entries: FxHashMap<Box<[u8]>, SubjectStats>,
    /// Subjects reported; 0 turns tracking off.
    top: usize,
}

impl SubjectTable {
    pub fn new(top: usize) -> Self {
        SubjectTable {
            entries: FxHashMap::default(),
            top,
        }
    }

    fn capacity(&self) -> usize {
        self.top.saturating_mul(4).max(8)
    }

    fn entry(&mut self, subject: &[u8]) -> Option<&mut SubjectStats> {
        if self.top == 0 {
            return None;
        }
        if !self.entries.contains_key(subject) {
            if self.entries.len() >= self.capacity() {
                self.shed();
            }
            self.entries.insert(subject.into(), SubjectStats::default());
        }
        self.entries.get_mut(subject)
    }

    /// Drops the less active half.
    fn shed(&mut self) {
        let mut activity: Vec<u64> = self.entries.values().map(SubjectStats::activity).collect();
        let keep = self.capacity() / 2;
        activity.sort_unstable_by(|a, b| b.cmp(a));
        let floor = activity.get(keep).copied().unwrap_or(0);
        let mut kept = 0;
        self.entries.retain(|_, s| {
            let stay = s.activity() > floor && kept < keep;
            kept += usize::from(stay);
            stay
        });
    }

    /// `msgs` published to `subject` (`bytes` of payload), which has `subscribers` here.
    pub fn published(&mut self, subject: &[u8], msgs: u64, bytes: u64, subscribers: u64) {
        if let Some(s) = self.entry(subject) {
            s.in_msgs += msgs;
            s.in_bytes += bytes;
            s.subscribers = subscribers;
        }
    }

    /// `msgs` deliveries (`bytes` of payload) of `subject` here.
    pub fn delivered(&mut self, subject: &[u8], msgs: u64, bytes: u64, subscribers: u64) {
        if msgs == 0 {
            return;
        }
        if let Some(s) = self.entry(subject) {
            s.out_msgs += msgs;
            s.out_bytes += bytes;
            s.subscribers = subscribers;
        }
    }

    /// Up to `top` subjects, most active first.
    pub fn top(&self) -> Vec<(String, SubjectStats)> {
        let mut rows: Vec<(String, SubjectStats)> = self
            .entries
            .iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), *v))
            .collect();
        rows.sort_unstable_by(|a, b| b.1.activity().cmp(&a.1.activity()).then(a.0.cmp(&b.0)));
        rows.truncate(self.top);
        rows
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_subjects_come_first() {
        let mut t = SubjectTable::new(2);
        t.published(b"a", 1, 10, 3);
        t.published(b"b", 5, 50, 1);
        t.delivered(b"b", 5, 50, 1);
        t.published(b"c", 3, 30, 0);
        let top = t.top();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].0, "b");
        assert_eq!(top[0].1.out_msgs, 5);
        assert_eq!(top[1].0, "c");
    }

    #[test]
    fn distinct_subjects_never_grow_the_table_past_its_bound() {
        let mut t = SubjectTable::new(4);
        t.published(b"hot", 1_000_000, 0, 1);
        for i in 0..100_000u32 {
            t.published(format!("_INBOX.{i}").as_bytes(), 1, 0, 1);
            assert!(t.len() <= 16);
        }
        assert_eq!(t.top()[0].0, "hot", "the busy subject survives the churn");
    }

    #[test]
    fn zero_turns_tracking_off() {
        let mut t = SubjectTable::new(0);
        t.published(b"a", 1, 1, 1);
        assert!(t.is_empty());
        assert!(t.top().is_empty());
    }
}
