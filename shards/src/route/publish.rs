//! Routing one publish: deliver to matching local subscriptions, pick exactly one member
//! of each matching queue group across all shards, queue one forward per peer shard with
//! interest, and answer a no-responders request with a 503 when nobody anywhere matched.

use std::rc::Rc;

use bytes::Bytes;

use crate::conn::{Conn, Sub};
use crate::fanout;
use crate::ring::{Forward, RingItem, Span};
use crate::route::Router;
use crate::subject::{pattern_matches, Match};
use crate::wire::MsgView;

/// Queue groups named with this prefix deliver to a member on the publishing shard
/// when they have one (the shards' own services: each log is routed by the shard that
/// received it, in the order it came), and to one on another shard otherwise.
pub const LOCAL_QUEUE_PREFIX: &[u8] = b"$sc.local.";

/// The hub's queue groups, joined by the leaf link: the hub's group `q` is indexed here as
/// `$sc.leaf.q`, so it is never taken for the node's own group `q`, which it only backs
/// up. Clients cannot use the prefix.
pub const LINK_QUEUE_PREFIX: &[u8] = b"$sc.leaf.";

/// Which queue groups a publish may reach.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'q> {
    /// A publish made on this node: every group here, and a group behind the hub (through
    /// the link) only when the node has no member of it, as nats-server prefers local
    /// queue members over leaf ones.
    All,
    /// A message from the hub: the plain subscriptions, and one member of each group the
    /// hub listed (its LMSG queue list); nothing goes back up the link.
    Hub(&'q [&'q [u8]]),
}

impl Scope<'_> {
    /// Whether the node's own group `name` may take the message.
    fn admits(self, name: &[u8]) -> bool {
        if name.starts_with(LINK_QUEUE_PREFIX) {
            return false; // the link's groups: see `Router::link_picks`
        }
        match self {
            Scope::All => true,
            Scope::Hub(listed) => listed.contains(&name),
        }
    }
}

/// The link's subscription that carries a message up, and the hub's groups it serves.
type LinkPick<'m> = Option<(Rc<Sub>, Vec<&'m [u8]>)>;

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
        scope: Scope<'_>,
    ) -> Routed {
        let flags = origin.flags();
        let skip = if flags.echo { None } else { Some(origin.cid) };
        let local = self.local.matches(m.subject);
        let reach = self.note_match(&local);
        let len = m.body.len() as u64;
        self.subjects.published(m.subject, 1, len, reach);
        let class = self.classify(m.subject);
        let mut routed = Routed::default();
        let remote = (self.shards > 1).then(|| self.remote.matches(m.subject));
        let mut peers = PeerSet::default();
        let mut picks: Vec<(usize, Box<[u8]>)> = Vec::new();
        // The hub's groups nobody here serves go up the link: from here, or from its shard.
        let link = match scope {
            Scope::All => Self::link_picks(&local, remote.as_deref(), &mut peers, &mut picks),
            Scope::Hub(_) => None,
        };
        let link_served = link.is_some();
        if let Some((sub, queues)) = &link {
            if fanout::to_link(sub, m, class, queues) {
                self.subjects.delivered(m.subject, 1, len, reach);
                routed.local += 1;
            }
        }
        // Verbose publishers get +OK per PUB, which must not overtake their own deliveries.
        let (batched, delivered) = if flags.verbose || link_served {
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
            let n = fanout::to_plain(&local.plain, m, class, skip, link_served, &mut self.expired);
            self.subjects
                .delivered(m.subject, n as u64, n as u64 * len, reach);
            routed.local += n;
        }
        if let Some(remote) = &remote {
            for &p in &remote.plain {
                peers.insert(p as usize);
            }
            for group in local.queues.iter().filter(|g| scope.admits(&g.name)) {
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
            for group in remote.queues.iter().filter(|g| scope.admits(&g.name)) {
                if local.queues.iter().any(|q| q.name == group.name) {
                    continue;
                }
                let i = self.pick(group.members.len());
                let peer = group.members[i] as usize;
                peers.insert(peer);
                picks.push((peer, group.name.clone()));
            }
        } else {
            for group in local.queues.iter().filter(|g| scope.admits(&g.name)) {
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

    /// The hub's queue groups (the link's `$sc.leaf.<q>` groups) matching a publish made on
    /// this node, for which the node has no member of `q` on any shard: the link's
    /// subscription and the groups when the link runs on this shard, or a forward to the
    /// shard that runs it.
    fn link_picks<'m>(
        local: &'m Match<Rc<Sub>>,
        remote: Option<&'m Match<u16>>,
        peers: &mut PeerSet,
        picks: &mut Vec<(usize, Box<[u8]>)>,
    ) -> LinkPick<'m> {
        let served_here = |name: &[u8]| {
            local
                .queues
                .iter()
                .any(|g| &*g.name == name && !g.members.is_empty())
                || remote.is_some_and(|r| {
                    r.queues
                        .iter()
                        .any(|g| &*g.name == name && !g.members.is_empty())
                })
        };
        let mut link: LinkPick<'m> = None;
        for group in &local.queues {
            let Some(q) = group.name.strip_prefix(LINK_QUEUE_PREFIX) else {
                continue;
            };
            if served_here(q) {
                continue;
            }
            if let Some(sub) = group.members.iter().find(|s| s.is_live()) {
                link.get_or_insert_with(|| (Rc::clone(sub), Vec::new()))
                    .1
                    .push(q);
            }
        }
        for group in remote.map_or(&[][..], |r| &r.queues[..]) {
            let Some(q) = group.name.strip_prefix(LINK_QUEUE_PREFIX) else {
                continue;
            };
            if served_here(q) || local.queues.iter().any(|g| g.name == group.name) {
                continue;
            }
            if let Some(&peer) = group.members.first() {
                peers.insert(peer as usize);
                picks.push((peer as usize, group.name.clone()));
            }
        }
        link
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
        // The hub's groups a peer picked: the link (on this shard) takes them in one message.
        let mut link: LinkPick<'_> = None;
        for name in fwd
            .queues
            .iter()
            .filter(|q| q.starts_with(LINK_QUEUE_PREFIX))
        {
            let group = local.queues.iter().find(|g| &g.name == name);
            match group.and_then(|g| g.members.iter().find(|s| s.is_live())) {
                Some(sub) => link
                    .get_or_insert_with(|| (Rc::clone(sub), Vec::new()))
                    .1
                    .push(&name[LINK_QUEUE_PREFIX.len()..]),
                None => out.queue_misses += 1,
            }
        }
        let link_served = link.is_some();
        if let Some((sub, queues)) = &link {
            if fanout::to_link(sub, &m, class, queues) {
                self.subjects.delivered(m.subject, 1, len, reach);
                out.delivered += 1;
            }
        }
        let n = fanout::to_plain(
            &local.plain,
            &m,
            class,
            None,
            link_served,
            &mut self.expired,
        );
        self.subjects
            .delivered(m.subject, n as u64, n as u64 * len, reach);
        out.delivered += n;
        for name in fwd
            .queues
            .iter()
            .filter(|q| !q.starts_with(LINK_QUEUE_PREFIX))
        {
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
