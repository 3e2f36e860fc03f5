//! Routing one publish: deliver to matching local subscriptions, pick exactly one member
//! of each matching queue group across all shards, queue one forward per peer shard with
//! interest, and answer a no-responders request with a 503 when nobody anywhere matched.

use std::rc::Rc;

use bytes::Bytes;

use crate::conn::{Conn, Sub};
use crate::fanout;
use crate::ring::{Forward, RingItem, Span};
use crate::route::Router;
use crate::subject::pattern_matches;
use crate::wire::MsgView;

/// Queue groups named with this prefix deliver to a member on the publishing shard
/// when they have one (the shards' own services: each log is routed by the shard that
/// received it, in the order it came), and to one on another shard otherwise.
pub const LOCAL_QUEUE_PREFIX: &[u8] = b"$sc.local.";

/// Where a publish's parts sit in the turn's input buffer, for forwarding by reference.
#[derive(Debug, Clone, Copy)]
pub struct PubSpans {
    pub subject: Span,
    pub reply: Option<Span>,
    pub body: Span,
}

impl PubSpans {
    /// The spans of `m`'s parts inside `base`, the buffer they were parsed from.
    pub fn of(base: &[u8], m: &MsgView<'_>) -> PubSpans {
        PubSpans {
            subject: Span::of(base, m.subject),
            reply: m.reply.map(|r| Span::of(base, r)),
            body: Span::of(base, m.body),
        }
    }
}

/// What routing one publish did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// Deliveries queued on this shard (including those of a run delivered meanwhile).
    pub local: usize,
    /// Peer shards the message was forwarded to.
    pub forwarded: usize,
    /// Local subscribers the message was added to the current run for.
    pub batched: usize,
}

/// A set of shard ids (up to `SHARDS_MAX`).
#[derive(Debug, Default, Clone, Copy)]
struct PeerSet([u64; 4]);

const _: () = assert!(
    crate::limits::SHARDS_MAX <= 4 * 64,
    "a PeerSet holds every shard"
);

impl PeerSet {
    fn insert(&mut self, p: usize) {
        self.0[p / 64] |= 1 << (p % 64);
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
}

/// The 503 status a no-responders request gets back (`NATS/1.0 503` header block).
const NO_RESPONDERS: &[u8] = b"NATS/1.0 503\r\n\r\n";

impl Router {
    /// Routes a publish from `origin` on this shard. `spans` locate its parts in the
    /// turn's input buffer, or in `owner` when the message has a block of its own.
    pub(super) fn publish(
        &mut self,
        origin: &Conn,
        m: &MsgView<'_>,
        spans: PubSpans,
        owner: Option<&Bytes>,
    ) -> Routed {
        let flags = origin.flags();
        let skip = if flags.echo { None } else { Some(origin.cid) };
        let local = self.local.matches(m.subject);
        let reach = self.note_match(&local);
        let len = m.body.len() as u64;
        self.subjects.published(m.subject, 1, len, reach);
        let class = self.classify(m.subject);
        let mut routed = Routed::default();
        // Verbose publishers get +OK per PUB, which must not overtake their own deliveries.
        let (batched, delivered) = if flags.verbose {
            (false, 0)
        } else {
            self.run.add(&local, m, class, skip, &mut self.subjects)
        };
        routed.local += delivered;
        if batched {
            routed.batched = local.plain.len();
        } else {
            // Whatever is in the run was published first.
            routed.local += self.run.flush(&mut self.subjects);
            let n = fanout::to_plain(&local.plain, m, class, skip, &mut self.expired);
            self.subjects
                .delivered(m.subject, n as u64, n as u64 * len, reach);
            routed.local += n;
        }
        let mut peers = PeerSet::default();
        let mut picks: Vec<(usize, Box<[u8]>)> = Vec::new();
        if self.shards > 1 {
            let remote = self.remote.matches(m.subject);
            for &p in &remote.plain {
                peers.insert(p as usize);
            }
            for group in &local.queues {
                // A group that prefers local members and has some here looks no further.
                let local_only =
                    group.name.starts_with(LOCAL_QUEUE_PREFIX) && !group.members.is_empty();
                let remote_members = remote
                    .queues
                    .iter()
                    .find(|q| q.name == group.name && !local_only)
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
                    let sub = &group.members[idx];
                    if Some(sub.cid) != skip && fanout::deliver(sub, m, class, &mut self.expired) {
                        self.subjects.delivered(m.subject, 1, len, reach);
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
                let peer = group.members[i] as usize;
                peers.insert(peer);
                picks.push((peer, group.name.clone()));
            }
        } else {
            for group in &local.queues {
                let start = self.pick(group.members.len());
                if fanout::to_one_member(&group.members, start, m, class, skip, &mut self.expired) {
                    self.subjects.delivered(m.subject, 1, len, reach);
                    routed.local += 1;
                }
            }
        }
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
                blob: owner.map(|b| Box::new(b.clone())),
            }));
            routed.forwarded += 1;
        }
        if routed.forwarded > 0 {
            self.outgoing_uses_blob |= owner.is_none();
            origin.set_cross_dirty(true);
        }
        let reached = routed.local + routed.batched + routed.forwarded;
        if reached == 0 && flags.no_responders {
            if let Some(reply) = m.reply {
                self.answer_no_responders(origin, reply);
            }
        }
        routed
    }

    /// Delivers a publish forwarded by a peer (its bytes in `blob`) to this shard's
    /// subscriptions.
    pub(super) fn deliver_forward(&mut self, blob: &[u8], fwd: &Forward) -> ForwardOutcome {
        let m = MsgView {
            subject: fwd.subject.get(blob),
            reply: fwd.reply.map(|r| r.get(blob)),
            header_len: fwd.header_len.map(|h| h as usize),
            body: fwd.body.get(blob),
        };
        let local = self.local.matches(m.subject);
        let reach = self.note_match(&local);
        let len = m.body.len() as u64;
        let class = self.classify(m.subject);
        let mut out = ForwardOutcome::default();
        if fwd.queues.is_empty() {
            let (batched, delivered) = self.run.add(&local, &m, class, None, &mut self.subjects);
            out.delivered += delivered;
            if batched {
                return out;
            }
        }
        out.delivered += self.run.flush(&mut self.subjects);
        let n = fanout::to_plain(&local.plain, &m, class, None, &mut self.expired);
        self.subjects
            .delivered(m.subject, n as u64, n as u64 * len, reach);
        out.delivered += n;
        for name in &fwd.queues {
            let group = local.queues.iter().find(|q| &q.name == name);
            let taken = group.is_some_and(|g| {
                let start = self.pick(g.members.len());
                fanout::to_one_member(&g.members, start, &m, class, None, &mut self.expired)
            });
            if taken {
                self.subjects.delivered(m.subject, 1, len, reach);
                out.delivered += 1;
            } else {
                // The member left between the pick and now; at-most-once, but counted.
                out.queue_misses += 1;
            }
        }
        out
    }

    /// Counts one match for `/subsz` and returns how many subscriptions it reached here.
    fn note_match(&mut self, local: &crate::subject::Match<Rc<Sub>>) -> u64 {
        let reach = (local.plain.len()
            + local.queues.iter().map(|q| q.members.len()).sum::<usize>())
            as u64;
        self.fanout_max = self.fanout_max.max(reach);
        self.fanout_total += reach;
        reach
    }

    /// Sends the 503 no-responders status to the requester's subscription on `reply`.
    fn answer_no_responders(&mut self, origin: &Conn, reply: &[u8]) {
        let sub: Option<Rc<Sub>> = self
            .subs_of(origin.cid)
            .find(|s| !s.is_removed() && pattern_matches(&s.subject, reply))
            .cloned();
        if let Some(sub) = sub {
            let status = MsgView {
                subject: reply,
                reply: None,
                header_len: Some(NO_RESPONDERS.len()),
                body: NO_RESPONDERS,
            };
            let class = self.classify(reply);
            fanout::deliver(&sub, &status, class, &mut self.expired);
        }
    }
}

/// Result of delivering one forwarded publish.
#[derive(Debug, Default, Clone, Copy)]
pub struct ForwardOutcome {
    pub delivered: usize,
    pub queue_misses: usize,
}

#[cfg(test)]
mod tests {
    #[test]
    fn peer_set_iterates_members_in_order() {
        let mut set = super::PeerSet::default();
        assert_eq!(set.iter().count(), 0);
        for p in [200, 3, 64, 0, 255, 63] {
            set.insert(p);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 3, 63, 64, 200, 255]);
    }
}
