//! Routing one publish: deliver to matching local subscriptions, pick exactly one member
//! of each matching queue group across all shards, queue one forward per peer shard with
//! interest, and answer a no-responders request with a 503 when nobody anywhere matched.

use std::rc::Rc;

use crate::conn::{Conn, MsgView, Sub};
use crate::fanout;
use crate::ring::{Forward, RingItem, Span};
use crate::route::interest::remove_expired;
use crate::route::Router;

/// Where a publish's parts sit in the read buffer, for forwarding by reference.
#[derive(Debug, Clone, Copy)]
pub struct PubSpans {
    pub subject: Span,
    pub reply: Option<Span>,
    pub body: Span,
}

/// What routing one publish did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// Deliveries queued on this shard (including those of a run delivered meanwhile).
    pub local: usize,
    /// Local subscribers the message was added to the current run for (delivered when the
    /// run is flushed, and counted then).
    pub batched: usize,
    /// Peer shards the message was forwarded to.
    pub forwarded: usize,
}

/// A set of shard ids (up to `SHARDS_MAX`).
#[derive(Debug, Default, Clone, Copy)]
struct PeerSet([u64; 4]);

impl PeerSet {
    fn insert(&mut self, p: usize) {
        self.0[(p / 64) % 4] |= 1 << (p % 64);
    }
    /// Set members in increasing order, visiting only set bits.
    fn iter(self) -> impl Iterator<Item = usize> {
        self.0.into_iter().enumerate().flat_map(|(w, mut bits)| {
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + b)
            })
        })
    }
    fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}

/// The 503 status a no-responders request gets back (`NATS/1.0 503` header block).
const NO_RESPONDERS: &[u8] = b"NATS/1.0 503\r\n\r\n";

impl Router {
    /// Routes a publish from `origin` on this shard.
    pub fn publish(
        &mut self,
        origin: &Conn,
        m: &MsgView<'_>,
        spans: PubSpans,
        expired: &mut Vec<Rc<Sub>>,
    ) -> Routed {
        let flags = origin.flags.get();
        let skip = if flags.echo { None } else { Some(origin.cid) };
        let local = self.local.matches(m.subject);
        let mut routed = Routed::default();
        // Verbose publishers get +OK per PUB, which must not overtake their own deliveries.
        let (batched, delivered) = if flags.verbose {
            (false, 0)
        } else {
            self.run.add(&local, m, skip)
        };
        routed.local += delivered;
        if batched {
            routed.batched = local.plain.len();
        } else {
            // Whatever is in the run was published first.
            routed.local += self.run.flush();
            routed.local += fanout::to_plain(&local.plain, m, skip, expired);
        }
        let mut peers = PeerSet::default();
        let mut picks: Vec<(usize, Box<[u8]>)> = Vec::new();
        if self.shards > 1 {
            let remote = self.remote.matches(m.subject);
            for &p in &remote.plain {
                peers.insert(p as usize);
            }
            for group in &local.queues {
                let remote_members = remote
                    .queues
                    .iter()
                    .find(|q| q.name == group.name)
                    .map_or(&[][..], |q| &q.members[..]);
                let total = group.members.len() + remote_members.len();
                let start = self.pick(total);
                let local_n = group.members.len();
                // Walk from a random member to the first that can take it; remote members
                // always can (their shard picks a live local member).
                for i in 0..total {
                    let idx = (start + i) % total;
                    if idx >= local_n {
                        let peer = remote_members[idx - local_n] as usize;
                        peers.insert(peer);
                        picks.push((peer, group.name.clone()));
                        break;
                    }
                    let sub = &group.members[idx].0;
                    if Some(sub.conn.cid) != skip && fanout::deliver(sub, m, expired) {
                        routed.local += 1;
                        break;
                    }
                }
            }
            for group in &remote.queues {
                if local.queues.iter().any(|q| q.name == group.name) {
                    continue;
                }
                let i = self.pick(group.members.len());
                if let Some(&peer) = group.members.get(i) {
                    peers.insert(peer as usize);
                    picks.push((peer as usize, group.name.clone()));
                }
            }
        } else {
            for group in &local.queues {
                let start = self.pick(group.members.len());
                if fanout::to_one_member(&group.members, start, m, skip, expired) {
                    routed.local += 1;
                }
            }
        }
        if !peers.is_empty() {
            for peer in peers.iter() {
                let queues = picks
                    .iter()
                    .filter(|(p, _)| *p == peer)
                    .map(|(_, q)| q.clone())
                    .collect();
                self.outgoing[peer].push(RingItem::Publish(Forward {
                    subject: spans.subject,
                    reply: spans.reply,
                    header_len: m.header_len.map(|h| h as u32),
                    body: spans.body,
                    queues,
                }));
                routed.forwarded += 1;
            }
            self.outgoing_uses_blob = true;
            origin.cross_dirty.set(true);
        }
        if routed == Routed::default() && flags.no_responders {
            if let Some(reply) = m.reply {
                answer_no_responders(origin, reply);
            }
        }
        remove_expired(self, expired);
        routed
    }

    /// Delivers a publish forwarded by a peer (its bytes in `blob`) to this shard's
    /// subscriptions.
    pub fn deliver_forward(
        &mut self,
        blob: &[u8],
        fwd: &Forward,
        expired: &mut Vec<Rc<Sub>>,
    ) -> ForwardOutcome {
        let m = MsgView {
            subject: fwd.subject.get(blob),
            reply: fwd.reply.map(|r| r.get(blob)),
            header_len: fwd.header_len.map(|h| h as usize),
            body: fwd.body.get(blob),
        };
        let local = self.local.matches(m.subject);
        let mut out = ForwardOutcome::default();
        if fwd.queues.is_empty() {
            let (batched, delivered) = self.run.add(&local, &m, None);
            out.delivered += delivered;
            if batched {
                return out;
            }
        }
        out.delivered += self.run.flush();
        out.delivered += fanout::to_plain(&local.plain, &m, None, expired);
        for name in &fwd.queues {
            let group = local.queues.iter().find(|q| &q.name == name);
            let taken = group.is_some_and(|g| {
                let start = self.pick(g.members.len());
                fanout::to_one_member(&g.members, start, &m, None, expired)
            });
            if taken {
                out.delivered += 1;
            } else {
                // The member left between the pick and now; at-most-once, but counted.
                out.queue_misses += 1;
            }
        }
        remove_expired(self, expired);
        out
    }
}

/// Result of delivering one forwarded publish.
#[derive(Debug, Default, Clone, Copy)]
pub struct ForwardOutcome {
    pub delivered: usize,
    pub queue_misses: usize,
}

/// Sends the 503 no-responders status to the requester's subscription on `reply`.
fn answer_no_responders(origin: &Conn, reply: &[u8]) {
    let sid = origin
        .subs
        .borrow()
        .values()
        .find(|s| !s.removed.get() && pattern_matches(&s.subject, reply))
        .map(|s| s.sid.clone());
    if let Some(sid) = sid {
        let status = MsgView {
            subject: reply,
            reply: None,
            header_len: Some(NO_RESPONDERS.len()),
            body: NO_RESPONDERS,
        };
        origin.push_msg(&status, &sid);
    }
}

/// Whether subscription `pattern` (with `*`/`>` wildcards) matches literal `subject`.
pub fn pattern_matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut subj = subject.split(|&b| b == b'.');
    for p in pattern.split(|&b| b == b'.') {
        match (p, subj.next()) {
            (b">", Some(_)) => return true,
            (_, None) => return false,
            (b"*", Some(_)) => {}
            (p, Some(s)) if p == s => {}
            _ => return false,
        }
    }
    subj.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::pattern_matches;

    #[test]
    fn peer_set_iterates_members_in_order() {
        let mut set = super::PeerSet::default();
        assert!(set.is_empty());
        for p in [200, 3, 64, 0, 255, 63] {
            set.insert(p);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 3, 63, 64, 200, 255]);
    }

    #[test]
    fn pattern_matching() {
        assert!(pattern_matches(b"_INBOX.abc.*", b"_INBOX.abc.1"));
        assert!(!pattern_matches(b"_INBOX.abc.*", b"_INBOX.abc.1.2"));
        assert!(pattern_matches(b"a.>", b"a.b.c"));
        assert!(!pattern_matches(b"a.>", b"a"));
        assert!(pattern_matches(b"a.b", b"a.b"));
        assert!(!pattern_matches(b"a.b", b"a.c"));
        assert!(!pattern_matches(b"a.b.c", b"a.b"));
    }
}
