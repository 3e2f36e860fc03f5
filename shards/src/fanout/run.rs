//! Runs: consecutive publishes to one subject within one turn (a client's read chunk or a
//! ring batch), delivered together. The messages are encoded once, back to back, and each
//! subscriber gets the whole run with one copy, instead of one copy per message: a busy
//! feed read 64 KiB at a time becomes one append per subscriber per read.
//!
//! A run only holds messages that every subscriber receives the same way: plain
//! subscriptions without a delivery limit, one per connection, all on wires that encode
//! alike, no queue groups on the subject, no headers, a publisher without verbose acks.
//! Up to [`OUTSIDERS_MAX`] subscribers on another wire or tag (a service's internal client
//! among a channel's IRC members, which keeps the channel's history) do not stop the run:
//! they get each message on its own as it joins the run. The caller ends the run
//! ([`Run::flush`]) before anything else happens in the turn (another subject,
//! SUB/UNSUB/PING, the end of the turn), so every connection sees its messages in the
//! order the publisher sent them.
//!
//! A run of 2 KiB or more is not even copied: subscribers that share the run's sid queue
//! the same reference-counted block, and the writer sends it from there.

use std::rc::Rc;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use bytes::Bytes;
use rustc_hash::FxHashSet;

use crate::conn::Sub;
use crate::flow::{Accounted, MsgClass};
use crate::limits::{RUN_BYTES_MAX, RUN_SHARE_BYTES_MIN};
use crate::metrics::SubjectTable;
use crate::subject::Match;
use crate::wire::{MsgView, Wire};
use crate::writer::Delivered;

/// Subscribers of a subject that may differ from the run's wire or tag and still leave
/// the others a run.
pub const OUTSIDERS_MAX: usize = 2;

/// The current run of one shard.
#[derive(Debug, Default)]
pub struct Run {
    target: Option<Rc<Match<Rc<Sub>>>>,
    skip_cid: Option<u64>,
    /// How the run's messages are treated (one subject, one class).
    class: MsgClass,
    /// Where shared blocks charge their bytes (the shard's memory budget), once set.
    accounting: Option<Arc<AtomicI64>>,
    /// The wire the frames are encoded on: every subscriber's, for header-less messages.
    wire: Option<Wire>,
    /// The sid the frames are encoded for: the first live subscriber's.
    sid: Vec<u8>,
    /// The frames, back to back.
    frames: Vec<u8>,
    /// Per message: where its frame starts and where its sid starts in `frames`.
    marks: Vec<(usize, usize)>,
    /// Payload bytes of the run's messages.
    payload_bytes: u64,
    /// The subject of the run under way (reused buffer), for per-subject counts.
    subject: Vec<u8>,
    /// The last subject match found not eligible.
    ineligible: Option<Rc<Match<Rc<Sub>>>>,
    /// Scratch set for the eligibility check.
    cids: FxHashSet<u64>,
    /// The subscribers the run's frames do not fit, served message by message; and the
    /// deliveries made to them since the run began.
    outsiders: Vec<Rc<Sub>>,
    outsider_deliveries: usize,
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
    /// Charges the blocks shared from now on to `counter` (the shard's memory budget).
    pub fn set_accounting(&mut self, counter: Arc<AtomicI64>) {
        self.accounting = Some(counter);
    }

    /// Adds `m` for the subscribers in `target` (skipping connection `skip_cid`, a publisher
    /// with echo off) to the run, delivering first a run for another subject, and the run
    /// itself once full. Returns whether `m` was batched (if not, the caller delivers it on
    /// its own, after [`Run::flush`]) and the deliveries made meanwhile.
    pub fn add(
        &mut self,
        target: &Rc<Match<Rc<Sub>>>,
        m: &MsgView<'_>,
        class: MsgClass,
        skip_cid: Option<u64>,
        subjects: &mut SubjectTable,
    ) -> (bool, usize) {
        let mut delivered = 0;
        let mut added = self.join(target, m, class, skip_cid);
        if added == Added::OtherRun {
            delivered += self.flush(subjects);
            added = self.join(target, m, class, skip_cid);
        }
        if added == Added::Yes && self.frames.len() >= RUN_BYTES_MAX {
            delivered += self.flush(subjects);
        }
        (added == Added::Yes, delivered)
    }

    /// Adds `m` to the current run, or starts one.
    fn join(
        &mut self,
        target: &Rc<Match<Rc<Sub>>>,
        m: &MsgView<'_>,
        class: MsgClass,
        skip_cid: Option<u64>,
    ) -> Added {
        if m.header_len.is_some() || crate::trace::enabled() {
            // Traced deliveries are logged one by one.
            return Added::No;
        }
        let wire = match &self.target {
            Some(t)
                if Rc::ptr_eq(t, target) && self.skip_cid == skip_cid && self.class == class =>
            {
                self.wire.expect("a run in progress has its wire")
            }
            Some(_) => return Added::OtherRun,
            None => {
                if !self.eligible(target, m) {
                    return Added::No;
                }
                let first = target
                    .plain
                    .iter()
                    .find(|s| Some(s.cid) != skip_cid && s.is_live() && !self.is_outsider(s));
                let Some(first) = first else {
                    // Only outsiders (or nobody) to deliver to: no run.
                    self.outsiders.clear();
                    return Added::No;
                };
                let wire = first.wire().for_msg(m);
                self.target = Some(Rc::clone(target));
                self.skip_cid = skip_cid;
                self.class = class;
                self.wire = Some(wire);
                self.sid.clear();
                self.sid.extend_from_slice(&first.sid);
                self.frames.clear();
                // A shared run's buffer went with it: take one big enough for the next run.
                self.frames.reserve(RUN_BYTES_MAX + m.body.len() + 256);
                self.marks.clear();
                self.payload_bytes = 0;
                self.subject.clear();
                self.subject.extend_from_slice(m.subject);
                wire
            }
        };
        let start = self.frames.len();
        let sid_at = wire.encode(&mut self.frames, m, &self.sid);
        self.marks.push((start, sid_at.start));
        self.payload_bytes += m.body.len() as u64;
        // Outsiders get it now: each still sees its messages in order, and the run is
        // delivered before anything else of the turn.
        let mut expired = Vec::new();
        for sub in &self.outsiders {
            if Some(sub.cid) != self.skip_cid && super::deliver(sub, m, class, &mut expired) {
                self.outsider_deliveries += 1;
            }
        }
        debug_assert!(expired.is_empty(), "outsiders have no delivery limit");
        Added::Yes
    }

    fn is_outsider(&self, sub: &Rc<Sub>) -> bool {
        self.outsiders.iter().any(|o| Rc::ptr_eq(o, sub))
    }

    /// Whether every subscriber in `target` gets each message the same way, once per
    /// connection: at least two plain subscriptions, no queue groups, no delivery limits,
    /// no delivery-time permission checks, wires that encode `m` alike, no connection with
    /// two matching subscriptions
    /// (nats-server interleaves those per message). Checked once per run; a subject found
    /// ineligible is remembered until its match changes (a SUB/UNSUB on a pattern that
    /// matches it makes a new one).
    ///
    /// The subscribers that do not encode like the reference (the first subscriber, or
    /// failing that the first one unlike it) become the run's outsiders, up to
    /// [`OUTSIDERS_MAX`].
    fn eligible(&mut self, target: &Rc<Match<Rc<Sub>>>, m: &MsgView<'_>) -> bool {
        if self
            .ineligible
            .as_ref()
            .is_some_and(|t| Rc::ptr_eq(t, target))
        {
            return false;
        }
        self.cids.clear();
        let plain = &target.plain;
        // A subject that stays on this node never goes to the leaf link (see
        // `leaf::crosses`): left to `to_plain`, which knows that.
        let ok = target.queues.is_empty()
            && plain.len() >= 2
            && (crate::leaf::crosses(m.subject) || plain.iter().all(|s| s.wire() != Wire::Leaf))
            && plain
                .iter()
                .all(|s| s.max_msgs() == 0 && !s.is_guarded() && self.cids.insert(s.cid));
        let alike = |a: &Rc<Sub>, b: &Rc<Sub>| {
            let wire = a.wire().for_msg(m);
            // Frames on a wire that cannot be re-tagged serve only subscribers with one tag.
            wire == b.wire().for_msg(m) && (wire.retaggable() || a.sid == b.sid)
        };
        let unlike = |r: usize| plain.iter().filter(|s| !alike(&plain[r], s)).count();
        let reference = ok
            .then(|| {
                let first_unlike = plain.iter().position(|s| !alike(&plain[0], s));
                [Some(0), first_unlike]
                    .into_iter()
                    .flatten()
                    .find(|&r| unlike(r) <= OUTSIDERS_MAX)
            })
            .flatten();
        self.outsiders.clear();
        self.outsider_deliveries = 0;
        match reference {
            Some(r) => {
                let outsiders = plain.iter().filter(|s| !alike(&plain[r], s));
                self.outsiders.extend(outsiders.cloned());
            }
            None => self.ineligible = Some(Rc::clone(target)),
        }
        reference.is_some()
    }

    /// Whether no run is in progress (every turn ends by delivering its run).
    pub fn is_empty(&self) -> bool {
        self.target.is_none()
    }

    /// Delivers the run to every subscriber of its subject. Returns the deliveries queued.
    pub fn flush(&mut self, subjects: &mut SubjectTable) -> usize {
        let Some(target) = self.target.take() else {
            return 0;
        };
        let msgs = self.marks.len();
        // A large run is handed to every subscriber by reference instead of copied; the
        // shard's budget holds its bytes until the last subscriber has written it.
        let shared = (self.frames.len() >= RUN_SHARE_BYTES_MIN).then(|| {
            let frames = std::mem::take(&mut self.frames);
            match &self.accounting {
                Some(counter) => Bytes::from_owner(Accounted::new(frames, Arc::clone(counter))),
                None => Bytes::from(frames),
            }
        });
        let frames: &[u8] = shared.as_deref().unwrap_or(&self.frames);
        let mut delivered = 0;
        let each = Delivered {
            msgs: msgs as u64,
            payload_bytes: self.payload_bytes,
            class: self.class,
        };
        for sub in &target.plain {
            if Some(sub.cid) == self.skip_cid || !sub.is_live() || self.is_outsider(sub) {
                continue;
            }
            let pushed = if *sub.sid == *self.sid {
                match &shared {
                    Some(b) => sub.outbox.push_shared(b, each),
                    None => sub.outbox.push_frames(frames, each),
                }
            } else {
                let len = frames.len() - msgs * self.sid.len() + msgs * sub.sid.len();
                sub.outbox.push_with(len, each, |out| {
                    // The same frames with this subscriber's sid in place of the run's.
                    for (i, &(start, sid_at)) in self.marks.iter().enumerate() {
                        let end = self.marks.get(i + 1).map_or(frames.len(), |m| m.0);
                        out.append(&frames[start..sid_at]);
                        out.append(&sub.sid);
                        out.append(&frames[sid_at + self.sid.len()..end]);
                    }
                })
            };
            if pushed {
                delivered += msgs;
                // Runs hold no subscription with a delivery limit.
                let expired = sub.count_deliveries(msgs as u64);
                debug_assert!(!expired, "a run subscriber has no delivery limit");
            }
        }
        if self.frames.capacity() > 4 * RUN_BYTES_MAX {
            self.frames = Vec::new();
        }
        self.frames.clear();
        self.marks.clear();
        self.outsiders.clear();
        delivered += std::mem::take(&mut self.outsider_deliveries);
        let reached = delivered.checked_div(msgs).unwrap_or(0) as u64;
        subjects.delivered(
            &self.subject,
            delivered as u64,
            reached * self.payload_bytes,
            target.plain.len() as u64,
        );
        delivered
    }
}
