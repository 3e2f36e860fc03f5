//! Fan-out: appends one message to the outbound buffer of each chosen subscription's
//! connection. It never writes to a socket (the writer does) and never allocates per
//! delivery; subscriptions that reach their auto-unsubscribe limit are handed back to
//! the router to remove.
//!
//! A message for several subscribers is encoded once ([`Encoded`]): subscribers whose
//! subscription id matches the first one's (clients usually number from 1) get the whole
//! frame with a single copy; the others are encoded for themselves.

pub mod run;
pub mod stall;

use std::cell::RefCell;
use std::rc::Rc;

use crate::conn::{MsgView, Sub, SubRef};
use crate::protocol::msg::encode_msg_line;

pub use run::Run;

/// One MSG/HMSG frame (control line, body, CRLF) encoded for a given subscription id,
/// reused for every subscriber with that id.
#[derive(Debug, Default)]
pub struct Encoded {
    frame: Vec<u8>,
    /// Where the sid sits in `frame`.
    sid_start: usize,
    sid_end: usize,
}

/// Frames bigger than this are not kept between messages (one per shard thread).
const ENCODED_KEEP_BYTES_MAX: usize = 1 << 20;

thread_local! {
    static ENCODED: RefCell<Encoded> = RefCell::new(Encoded::default());
}

impl Encoded {
    /// Encodes `m` for subscription id `sid`, replacing what was there.
    pub fn encode(&mut self, m: &MsgView<'_>, sid: &[u8]) {
        self.frame.clear();
        let head = if m.header_len.is_some() { 5 } else { 4 } + m.subject.len() + 1;
        encode_msg_line(
            &mut self.frame,
            m.subject,
            sid,
            m.reply,
            m.header_len,
            m.body.len(),
        );
        self.frame.extend_from_slice(m.body);
        self.frame.extend_from_slice(b"\r\n");
        self.sid_start = head;
        self.sid_end = head + sid.len();
    }

    /// The whole frame, if it was encoded for `sid`.
    pub fn for_sid(&self, sid: &[u8]) -> Option<&[u8]> {
        (self.frame.get(self.sid_start..self.sid_end) == Some(sid)).then_some(&self.frame[..])
    }

    fn trim(&mut self) {
        if self.frame.capacity() > ENCODED_KEEP_BYTES_MAX {
            self.frame = Vec::new();
        }
    }
}

/// Delivers to every live plain subscription in `subs`, skipping connection `skip_cid`
/// (a publisher with echo off). Returns how many deliveries were queued.
pub fn to_plain(
    subs: &[SubRef],
    m: &MsgView<'_>,
    skip_cid: Option<u64>,
    expired: &mut Vec<Rc<Sub>>,
) -> usize {
    if subs.len() < 2 {
        let mut delivered = 0;
        for SubRef(sub) in subs {
            if Some(sub.conn.cid) != skip_cid && deliver(sub, m, expired) {
                delivered += 1;
            }
        }
        return delivered;
    }
    ENCODED.with(|enc| {
        let mut enc = enc.borrow_mut();
        let mut encoded = false;
        let mut delivered = 0;
        for SubRef(sub) in subs {
            if Some(sub.conn.cid) == skip_cid || !sub.is_live() {
                continue;
            }
            // A subscriber that gets the payload without headers is encoded for itself.
            let frame = if sub.conn.strips_headers(m) {
                None
            } else {
                if !encoded {
                    enc.encode(m, &sub.sid);
                    encoded = true;
                }
                enc.for_sid(&sub.sid)
            };
            let pushed = match frame {
                Some(frame) => sub.conn.push_frame(frame),
                None => sub.conn.push_msg(m, &sub.sid),
            };
            if pushed {
                delivered += 1;
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
    members: &[SubRef],
    start: usize,
    m: &MsgView<'_>,
    skip_cid: Option<u64>,
    expired: &mut Vec<Rc<Sub>>,
) -> bool {
    let n = members.len();
    (0..n).any(|i| {
        let SubRef(sub) = &members[(start + i) % n];
        Some(sub.conn.cid) != skip_cid && deliver(sub, m, expired)
    })
}

/// One delivery to one subscription; counts it against the subscription's UNSUB limit.
pub fn deliver(sub: &Rc<Sub>, m: &MsgView<'_>, expired: &mut Vec<Rc<Sub>>) -> bool {
    if !sub.is_live() || !sub.conn.push_msg(m, &sub.sid) {
        return false;
    }
    counted(sub, expired);
    true
}

/// Counts a delivery against the subscription's UNSUB limit.
fn counted(sub: &Rc<Sub>, expired: &mut Vec<Rc<Sub>>) {
    if sub.count_delivery() {
        // The limit is reached: no further deliveries, removal follows this publish.
        sub.removed.set(true);
        expired.push(Rc::clone(sub));
    }
}
