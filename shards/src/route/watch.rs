//! Node-wide interest for the leaf link (on the shard that runs it): every subscription
//! of every shard counted per key (`subject`, or `subject queue`), and the changes the hub
//! must hear written to the link as leafnode interest lines: `LS+ <subject>` and `LS-
//! <subject>` when a plain key goes 0→1 and 1→0, `LS+ <subject> <queue> <members>` on
//! every change of a queue key (`LS- <subject> <queue>` at 0). The link's own
//! subscriptions (the hub's interest) are not counted. After the link (re)connects it
//! gets the whole table at once. With `[leafnode] import` set, a subscription counts as
//! its overlap with each import entry (a subscription outside them all is not told).

use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::subject::pattern::intersect;
use crate::writer::Outbox;

type Key = (Box<[u8]>, Option<Box<[u8]>>);

/// The interest counts and the link they are written to.
#[derive(Debug, Default)]
pub struct InterestWatch {
    counts: FxHashMap<Key, u32>,
    /// The link connection: its subscriptions are not counted (they are the hub's own
    /// interest); kept after the link closes, until the next one replaces it.
    link_cid: Option<u64>,
    /// Where the interest lines go while the link is up.
    link: Option<Rc<Outbox>>,
    /// The loop-detection subject advertised with every snapshot.
    loop_subject: Box<[u8]>,
    /// What may come down from the hub (`[leafnode] import`; empty: everything): the hub
    /// hears of a subscription only as its overlap with these.
    import: Vec<Box<[u8]>>,
}

impl InterestWatch {
    pub fn new(loop_subject: &str, import: &[String]) -> Self {
        InterestWatch {
            loop_subject: loop_subject.as_bytes().into(),
            import: import.iter().map(|i| i.as_bytes().into()).collect(),
            ..InterestWatch::default()
        }
    }

    /// One subscription (of connection `cid`, or of another shard when None) appeared
    /// (`delta` 1) or went (`delta` -1).
    pub fn changed(&mut self, cid: Option<u64>, subject: &[u8], queue: Option<&[u8]>, delta: i32) {
        if (cid.is_some() && cid == self.link_cid) || !crate::leaf::crosses(subject) {
            return;
        }
        if self.import.is_empty() {
            self.count(subject, queue, delta);
            return;
        }
        let mut within: Vec<Vec<u8>> = self
            .import
            .iter()
            .filter_map(|i| intersect(i, subject))
            .collect();
        within.sort_unstable();
        within.dedup();
        for s in within {
            self.count(&s, queue, delta);
        }
    }

    /// Counts one change of key (`subject`, `queue`) and tells the hub what it must hear.
    fn count(&mut self, subject: &[u8], queue: Option<&[u8]>, delta: i32) {
        let key: Key = (subject.into(), queue.map(Into::into));
        let count = self.counts.entry(key.clone()).or_insert(0);
        let before = *count;
        *count = if delta > 0 {
            count.saturating_add(1)
        } else {
            count.saturating_sub(1)
        };
        let after = *count;
        if after == 0 {
            self.counts.remove(&key);
        }
        let Some(link) = &self.link else {
            return;
        };
        let mut line = Vec::with_capacity(subject.len() + 32);
        match queue {
            None if before == 0 && after == 1 => line_for(&mut line, b"LS+ ", subject, None, None),
            None if before == 1 && after == 0 => line_for(&mut line, b"LS- ", subject, None, None),
            Some(q) if after > 0 && after != before => {
                line_for(&mut line, b"LS+ ", subject, Some(q), Some(after))
            }
            Some(q) if after == 0 && before > 0 => {
                line_for(&mut line, b"LS- ", subject, Some(q), None)
            }
            _ => return,
        }
        link.push_control(&line);
    }

    /// The link connection `cid` came up: it gets the whole table (and the loop-detection
    /// subject), then every change.
    pub fn attach(&mut self, cid: u64, outbox: Rc<Outbox>) {
        let mut out = Vec::new();
        line_for(&mut out, b"LS+ ", &self.loop_subject, None, None);
        for ((subject, queue), &n) in &self.counts {
            match queue {
                None => line_for(&mut out, b"LS+ ", subject, None, None),
                Some(q) => line_for(&mut out, b"LS+ ", subject, Some(q), Some(n)),
            }
        }
        outbox.push_control(&out);
        self.link_cid = Some(cid);
        self.link = Some(outbox);
    }

    /// The link went down: no lines until the next one attaches.
    pub fn detach(&mut self) {
        self.link = None;
    }

    /// Keys counted now.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

fn line_for(out: &mut Vec<u8>, verb: &[u8], subject: &[u8], queue: Option<&[u8]>, n: Option<u32>) {
    out.extend_from_slice(verb);
    out.extend_from_slice(subject);
    if let Some(q) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
    }
    if let Some(n) = n {
        out.push(b' ');
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}
