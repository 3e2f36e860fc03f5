//! Fan-out: appends one message to the outbox of each chosen subscription. It never
//! writes to a transport (the writer does), never learns which protocol a subscriber
//! speaks (its [`Wire`] encodes), and never allocates per delivery; subscriptions that
//! reach their auto-unsubscribe limit are handed back to the router to remove.
//!
//! A message for several subscribers is encoded once per wire ([`Encoded`]): subscribers
//! whose wire gives the same encoding as the last one encoded and whose tag (sid) matches
//! (clients usually number from 1) get the whole frame with a single copy; the others
//! are encoded for themselves. A change of wire along the list encodes again.

pub mod run;

use std::cell::RefCell;
use std::rc::Rc;

use crate::conn::Sub;
use crate::flow::MsgClass;
use crate::limits::ENCODED_KEEP_BYTES_MAX;
use crate::trace;
use crate::wire::{MsgView, Wire};
use crate::writer::Delivered;

pub use run::Run;

/// One frame encoded for a given wire and tag, reused for every subscriber that shares
/// both.
#[derive(Debug, Default)]
pub struct Encoded {
    frame: Vec<u8>,
    wire: Option<Wire>,
    /// Where the tag sits in `frame`.
    tag_start: usize,
    tag_end: usize,
}

thread_local! {
    static ENCODED: RefCell<Encoded> = RefCell::new(Encoded::default());
}

impl Encoded {
    /// Encodes `m` on `wire` for tag `sid`, replacing what was there.
    pub fn encode(&mut self, wire: Wire, m: &MsgView<'_>, sid: &[u8]) {
        self.frame.clear();
        let at = wire.encode(&mut self.frame, m, sid);
        self.wire = Some(wire);
        self.tag_start = at.start;
        self.tag_end = at.end;
    }

    /// The whole frame, if it was encoded on `wire` for `sid`.
    pub fn frame_for(&self, wire: Wire, sid: &[u8]) -> Option<&[u8]> {
        (self.wire == Some(wire) && self.frame[self.tag_start..self.tag_end] == *sid)
            .then_some(&self.frame[..])
    }

    fn trim(&mut self) {
        self.wire = None;
        if self.frame.capacity() > ENCODED_KEEP_BYTES_MAX {
            self.frame = Vec::new();
        }
    }
}

/// Delivers to every live plain subscription in `subs`, skipping connection `skip_cid`
/// (a publisher with echo off), and the leaf link when `link_served` (it already has the
/// message, with a queue list: [`to_link`]). Returns how many deliveries were queued.
pub fn to_plain(
    subs: &[Rc<Sub>],
    m: &MsgView<'_>,
    class: MsgClass,
    skip_cid: Option<u64>,
    link_served: bool,
    expired: &mut Vec<Rc<Sub>>,
) -> usize {
    if subs.len() < 2 {
        let mut delivered = 0;
        for sub in subs {
            if sub.wire() == Wire::Leaf && (link_served || !crate::leaf::crosses(m.subject)) {
                continue;
            }
            if Some(sub.cid) != skip_cid && deliver(sub, m, class, expired) {
                delivered += 1;
            }
        }
        return delivered;
    }
    ENCODED.with(|enc| {
        let mut enc = enc.borrow_mut();
        let mut encoded = false;
        let mut delivered = 0;
        // The leaf link gets a message once, however many of the hub's interests match it
        // (the hub delivers it to each of its own subscribers).
        let mut leaf_served = None;
        for sub in subs {
            if Some(sub.cid) == skip_cid || !sub.is_live() || !sub.admits(m) {
                continue;
            }
            let wire = sub.wire().for_msg(m);
            if wire == Wire::Leaf {
                if link_served || leaf_served == Some(sub.cid) || !crate::leaf::crosses(m.subject) {
                    continue;
                }
                leaf_served = Some(sub.cid);
            }
            // Encoded for the first subscriber, and again whenever the wire changes: one
            // subscriber of another protocol (a service's internal client among a
            // channel's IRC members) must not leave everyone after it to encode alone.
            if !encoded || enc.wire != Some(wire) {
                enc.encode(wire, m, &sub.sid);
                encoded = true;
            }
            let pushed = match enc.frame_for(wire, &sub.sid) {
                Some(frame) => sub
                    .outbox
                    .push_frames(frame, Delivered::one(wire.delivered_len(m), class)),
                None => push_msg(sub, m, class),
            };
            if pushed {
                delivered += 1;
                traced(sub, m);
                counted(sub, expired);
            }
        }
        enc.trim();
        delivered
    })
}

/// Delivers to the first live member of a queue group at or after `start` (wrapping),
/// skipping `skip_cid`. Returns whether one member took the message.
pub fn to_one_member(
    members: &[Rc<Sub>],
    start: usize,
    m: &MsgView<'_>,
    class: MsgClass,
    skip_cid: Option<u64>,
    expired: &mut Vec<Rc<Sub>>,
) -> bool {
    let n = members.len();
    (0..n).any(|i| {
        let sub = &members[(start + i) % n];
        Some(sub.cid) != skip_cid && deliver(sub, m, class, expired)
    })
}

/// One delivery to one subscription; counts it against the subscription's UNSUB limit.
pub fn deliver(
    sub: &Rc<Sub>,
    m: &MsgView<'_>,
    class: MsgClass,
    expired: &mut Vec<Rc<Sub>>,
) -> bool {
    if !sub.is_live() || !sub.admits(m) || !push_msg(sub, m, class) {
        return false;
    }
    traced(sub, m);
    counted(sub, expired);
    true
}

/// Sends `m` up the leaf link (`sub` is one of its subscriptions) once, with the hub's
/// queue groups it was picked for: the hub delivers it to its plain subscribers and to one
/// member of each group listed. The link then gets nothing more for this message.
pub fn to_link(sub: &Rc<Sub>, m: &MsgView<'_>, class: MsgClass, queues: &[&[u8]]) -> bool {
    if !sub.is_live() || !sub.admits(m) || !crate::leaf::crosses(m.subject) {
        return false;
    }
    let head_max = crate::wire::leaf::head_len_max_queued(m, queues);
    let delivered = Delivered::one(Wire::Leaf.delivered_len(m), class);
    sub.outbox
        .push_with(head_max + m.body.len() + 2, delivered, |out| {
            let mut framed = None;
            out.append_with(head_max, |v| {
                framed = Some(crate::wire::leaf::encode_head_queued(v, m, queues))
            });
            if let Some(f) = framed {
                out.append(f.body);
                out.append(f.trailer);
            }
        })
}

/// Traces a delivery when the protocol trace is on.
#[inline]
fn traced(sub: &Sub, m: &MsgView<'_>) {
    if trace::enabled() {
        let mut head = Vec::new();
        let framed = sub.wire().encode_head(&mut head, m, &sub.sid);
        trace::outgoing(sub.cid, &head, Some(framed.body));
    }
}

/// Encodes `m` for `sub` straight into its outbox: the head in place, the body copied
/// from where it lies.
fn push_msg(sub: &Sub, m: &MsgView<'_>, class: MsgClass) -> bool {
    let wire = sub.wire();
    let head_max = wire.head_len_max(m, &sub.sid);
    let delivered = Delivered::one(wire.delivered_len(m), class);
    sub.outbox
        .push_with(wire.frame_len_max(m, &sub.sid), delivered, |out| {
            let mut framed = None;
            out.append_with(head_max, |v| {
                framed = Some(wire.encode_head(v, m, &sub.sid))
            });
            if let Some(f) = framed {
                out.append(f.body);
                out.append(f.trailer);
            }
        })
}

/// Counts a delivery against the subscription's UNSUB limit.
fn counted(sub: &Rc<Sub>, expired: &mut Vec<Rc<Sub>>) {
    if sub.count_delivery() {
        // The limit is reached: no further deliveries, removal follows this publish.
        sub.mark_removed();
        expired.push(Rc::clone(sub));
    }
}
