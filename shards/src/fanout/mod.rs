//! Fan-out: appends one message to the outbound buffer of each chosen subscription's
//! connection. It never writes to a socket (the writer does) and never allocates per
//! delivery; subscriptions that reach their auto-unsubscribe limit are handed back to
//! the router to remove.

pub mod stall;

use std::rc::Rc;

use crate::conn::{MsgView, Sub, SubRef};

/// Delivers to every live plain subscription in `subs`, skipping connection `skip_cid`
/// (a publisher with echo off). Returns how many deliveries were queued.
pub fn to_plain(
    subs: &[SubRef],
    m: &MsgView<'_>,
    skip_cid: Option<u64>,
    expired: &mut Vec<Rc<Sub>>,
) -> usize {
    let mut delivered = 0;
    for SubRef(sub) in subs {
        if Some(sub.conn.cid) == skip_cid {
            continue;
        }
        if deliver(sub, m, expired) {
            delivered += 1;
        }
    }
    delivered
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
    if sub.count_delivery() {
        // The limit is reached: no further deliveries, removal follows this publish.
        sub.removed.set(true);
        expired.push(Rc::clone(sub));
    }
    true
}
