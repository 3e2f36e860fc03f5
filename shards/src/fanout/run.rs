//! Runs: consecutive publishes to one subject within one turn (a client's read chunk or a
//! ring batch), delivered together. The messages are encoded once, back to back, and each
//! subscriber gets the whole run with one copy, instead of one copy per message: a busy
//! feed read 64 KiB at a time becomes one append per subscriber per read.
//!
//! A run only holds messages that every subscriber receives the same way: plain
//! subscriptions without a delivery limit, one per connection, no queue groups on the
//! subject, no headers, a publisher without verbose acks. The caller ends the run
//! ([`Run::flush`]) before anything else happens in the turn (another subject,
//! SUB/UNSUB/PING, the end of the turn), so every connection sees its messages in the
//! order the publisher sent them.
//!
//! A run of 2 KiB or more is not even copied: subscribers that share the run's sid queue
//! the same reference-counted block, and the writer sends it from there.

use std::rc::Rc;

use bytes::Bytes;
use rustc_hash::FxHashSet;

use crate::conn::{MsgView, SubRef};
use crate::protocol::msg::encode_msg_line;
use crate::subject::Match;

/// A run is delivered once it holds this many bytes.
const RUN_BYTES_MAX: usize = 64 * 1024;
/// Runs at least this big are shared by reference with their subscribers; smaller ones
/// are cheaper to copy than to track (one iovec per block when written).
const SHARE_BYTES_MIN: usize = 2048;

/// The current run of one shard.
#[derive(Debug, Default)]
pub struct Run {
    target: Option<Rc<Match<SubRef>>>,
    skip_cid: Option<u64>,
    /// The sid the frames are encoded for: the first live subscriber's.
    sid: Vec<u8>,
    /// The frames, back to back.
    frames: Vec<u8>,
    /// Per message: where its frame starts and where its sid starts in `frames`.
    marks: Vec<(usize, usize)>,
    /// The last subject match found not eligible.
    ineligible: Option<Rc<Match<SubRef>>>,
    /// Scratch set for the eligibility check.
    cids: FxHashSet<u64>,
}

/// What [`Run::join`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Added {
    /// It joined the run (or nobody is left to deliver it to).
    Yes,
    /// Another run is in progress: flush it, then add again.
    OtherRun,
    /// It cannot be batched: flush the run, then deliver it on its own.
    No,
}

impl Run {
    /// Adds `m` for the subscribers in `target` (skipping connection `skip_cid`, a publisher
    /// with echo off) to the run, delivering first a run for another subject, and the run
    /// itself once full. Returns whether `m` was batched (if not, the caller delivers it on
    /// its own, after [`Run::flush`]) and the deliveries made meanwhile.
    pub fn add(
        &mut self,
        target: &Rc<Match<SubRef>>,
        m: &MsgView<'_>,
        skip_cid: Option<u64>,
    ) -> (bool, usize) {
        let mut delivered = 0;
        let mut added = self.join(target, m, skip_cid);
        if added == Added::OtherRun {
            delivered += self.flush();
            added = self.join(target, m, skip_cid);
        }
        if added == Added::Yes && self.frames.len() >= RUN_BYTES_MAX {
            delivered += self.flush();
        }
        (added == Added::Yes, delivered)
    }

    /// Adds `m` to the current run, or starts one.
    fn join(
        &mut self,
        target: &Rc<Match<SubRef>>,
        m: &MsgView<'_>,
        skip_cid: Option<u64>,
    ) -> Added {
        if m.header_len.is_some() {
            return Added::No;
        }
        match &self.target {
            Some(t) if Rc::ptr_eq(t, target) && self.skip_cid == skip_cid => {}
            Some(_) => return Added::OtherRun,
            None => {
                if !self.eligible(target) {
                    return Added::No;
                }
                let first = target
                    .plain
                    .iter()
                    .find(|SubRef(s)| Some(s.conn.cid) != skip_cid && s.is_live());
                let Some(SubRef(first)) = first else {
                    return Added::Yes; // nobody to deliver to
                };
                self.target = Some(Rc::clone(target));
                self.skip_cid = skip_cid;
                self.sid.clear();
                self.sid.extend_from_slice(&first.sid);
                self.frames.clear();
                // A shared run's buffer went with it: take one big enough for the next run.
                self.frames.reserve(RUN_BYTES_MAX + m.body.len() + 256);
                self.marks.clear();
            }
        }
        let start = self.frames.len();
        // "MSG " + subject + " ", then the sid.
        let sid_start = start + 4 + m.subject.len() + 1;
        encode_msg_line(
            &mut self.frames,
            m.subject,
            &self.sid,
            m.reply,
            None,
            m.body.len(),
        );
        self.frames.extend_from_slice(m.body);
        self.frames.extend_from_slice(b"\r\n");
        self.marks.push((start, sid_start));
        Added::Yes
    }

    /// Whether every subscriber in `target` gets each message the same way, once per
    /// connection: at least two plain subscriptions, no queue groups, no delivery limits,
    /// no connection with two matching subscriptions (nats-server interleaves those per
    /// message). Checked once per run; a subject found ineligible is remembered until its
    /// match changes (any SUB/UNSUB makes a new one).
    fn eligible(&mut self, target: &Rc<Match<SubRef>>) -> bool {
        if self
            .ineligible
            .as_ref()
            .is_some_and(|t| Rc::ptr_eq(t, target))
        {
            return false;
        }
        self.cids.clear();
        let ok = target.queues.is_empty()
            && target.plain.len() >= 2
            && target
                .plain
                .iter()
                .all(|SubRef(s)| s.max_msgs.get() == 0 && self.cids.insert(s.conn.cid));
        if !ok {
            self.ineligible = Some(Rc::clone(target));
        }
        ok
    }

    /// Delivers the run to every subscriber of its subject. Returns the deliveries queued.
    pub fn flush(&mut self) -> usize {
        let Some(target) = self.target.take() else {
            return 0;
        };
        let msgs = self.marks.len();
        // A large run is handed to every subscriber by reference instead of copied.
        let shared = (self.frames.len() >= SHARE_BYTES_MIN)
            .then(|| Bytes::from(std::mem::take(&mut self.frames)));
        let frames: &[u8] = shared.as_deref().unwrap_or(&self.frames);
        let mut delivered = 0;
        for SubRef(sub) in &target.plain {
            if Some(sub.conn.cid) == self.skip_cid || !sub.is_live() {
                continue;
            }
            let pushed = if *sub.sid == *self.sid {
                match &shared {
                    Some(b) => sub.conn.push_shared(b),
                    None => sub.conn.push_frame(frames),
                }
            } else {
                let len = frames.len() - msgs * self.sid.len() + msgs * sub.sid.len();
                sub.conn.push_with(len, |out| {
                    // The same frames with this subscriber's sid in place of the run's.
                    for (i, &(start, sid_at)) in self.marks.iter().enumerate() {
                        let end = self.marks.get(i + 1).map_or(frames.len(), |m| m.0);
                        out.append(frames.get(start..sid_at).unwrap_or_default());
                        out.append(&sub.sid);
                        let rest = sid_at + self.sid.len();
                        out.append(frames.get(rest..end).unwrap_or_default());
                    }
                })
            };
            if pushed {
                delivered += msgs;
                sub.delivered.set(sub.delivered.get() + msgs as u64);
            }
        }
        if self.frames.capacity() > 4 * RUN_BYTES_MAX {
            self.frames = Vec::new();
        }
        self.frames.clear();
        self.marks.clear();
        delivered
    }
}
