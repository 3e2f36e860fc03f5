//! The shard router: applies the engine's operations, whatever front-end they came from.
//! It owns the shard's subscriptions (per connection, and indexed by subject in `local`),
//! what it knows of the other shards' interest (`remote`, kept current by interest items
//! arriving over the rings), the items queued for each peer this turn, the current run of
//! publishes, and the barrier that holds a flush until every shard has seen what came
//! before it.
//!
//! Input: [`Op`]s from a front-end ([`Router::apply`]) and batches from the rings
//! ([`Router::apply_batch`]). Output: deliveries appended to subscribers' outboxes
//! (through `fanout`), replies appended to the acting connection's outbox (through its
//! wire), and one ring batch per peer per turn ([`Router::end_turn`]). Its fields are
//! private: nothing else changes routing state.

pub mod apply;
pub mod barrier;
pub mod flow;
pub mod interest;
pub mod publish;
pub mod stats;
pub mod watch;

#[cfg(test)]
mod tests;

use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::conn::Sub;
use crate::fanout;
use crate::limits::MATCH_CACHE_ENTRIES_MAX;
use crate::metrics::SubjectTable;
use crate::ring::RingItem;
use crate::subject::{EntryId, Sublist};

pub use apply::{Applied, BatchApplied, Op, Outcome, TurnEnd};
pub use barrier::Barrier;
pub use publish::{PubSpans, Scope, LINK_QUEUE_PREFIX};

/// Each connection's subscriptions, by connection id and then by sid.
pub(crate) type SubsByConn = FxHashMap<u64, FxHashMap<Box<[u8]>, Rc<Sub>>>;
/// Plain interest of a peer in a subject: its subscriptions there, and one index entry.
type RemotePlain = FxHashMap<(Box<[u8]>, u16), (u32, EntryId)>;
/// Queue interest of a peer in (subject, queue): one index entry per member.
type RemoteQueue = FxHashMap<(Box<[u8]>, Box<[u8]>, u16), Vec<EntryId>>;

/// Per-shard routing state. Shard-local: no locks.
pub struct Router {
    shard: usize,
    shards: usize,
    /// Subscriptions per connection (0 means unlimited).
    subscriptions_max: usize,
    /// Each connection's subscriptions by sid.
    subs: SubsByConn,
    /// This shard's subscriptions by subject.
    local: Sublist<Rc<Sub>>,
    /// Other shards' interest: plain subjects once per (subject, shard), queue
    /// subscriptions once per member so queue picks are weighted by member count.
    remote: Sublist<u16>,
    /// Plain remote interest: subscriptions per (subject, shard) and its one index entry.
    remote_plain: RemotePlain,
    /// Queue remote interest: one index entry per member, per (subject, queue, shard).
    remote_queue: RemoteQueue,
    /// Items for each peer, sent at the end of the turn (own slot stays empty).
    outgoing: Vec<Vec<RingItem>>,
    /// Some outgoing item points into the turn's input buffer.
    outgoing_uses_blob: bool,
    barrier: Barrier,
    /// Consecutive publishes to one subject in this turn, delivered together.
    run: fanout::Run,
    /// Subscriptions that reached their delivery limit during the current operation.
    expired: Vec<Rc<Sub>>,
    rng: u64,
    /// The busiest subjects here.
    subjects: SubjectTable,
    /// Subscriptions added and removed, and the largest and total match sizes (`/subsz`).
    inserts: u64,
    removes: u64,
    fanout_max: u64,
    fanout_total: u64,
    /// Flow control: how messages are classified and publishers limited.
    flow: flow::RouterFlow,
    /// Node-wide interest for the leaf link, on the shard that runs it.
    pub watch: Option<watch::InterestWatch>,
}

impl Router {
    pub fn new(
        shard: usize,
        shards: usize,
        subscriptions_max: usize,
        top_subjects: usize,
        flow: &crate::flow::FlowConfig,
    ) -> Self {
        assert!(shard < shards, "a shard id is below the shard count");
        Router {
            shard,
            shards,
            subscriptions_max,
            subs: FxHashMap::default(),
            local: Sublist::new(MATCH_CACHE_ENTRIES_MAX),
            remote: Sublist::new(MATCH_CACHE_ENTRIES_MAX),
            remote_plain: FxHashMap::default(),
            remote_queue: FxHashMap::default(),
            outgoing: (0..shards).map(|_| Vec::new()).collect(),
            outgoing_uses_blob: false,
            barrier: Barrier::new(shards, shard),
            run: fanout::Run::default(),
            expired: Vec::new(),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (shard as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            subjects: SubjectTable::new(top_subjects),
            inserts: 0,
            removes: 0,
            fanout_max: 0,
            fanout_total: 0,
            flow: flow::RouterFlow::new(flow),
            watch: None,
        }
    }

    pub fn shard(&self) -> usize {
        self.shard
    }

    /// A reload changed `max_subscriptions` (0: unlimited); checked at every SUB.
    pub fn set_subscriptions_max(&mut self, max: usize) {
        self.subscriptions_max = max;
    }

    /// Peers of this shard, in id order.
    pub fn peers(&self) -> impl Iterator<Item = usize> + '_ {
        let me = self.shard;
        (0..self.shards).filter(move |&p| p != me)
    }

    /// Subscriptions on this shard.
    pub fn local_subscriptions(&self) -> usize {
        self.local.len()
    }

    /// Queues `item` for every other shard.
    fn broadcast(&mut self, item: impl Fn() -> RingItem) {
        for p in 0..self.shards {
            if p != self.shard {
                self.outgoing[p].push(item());
            }
        }
    }

    /// A random index below `n` (xorshift; queue-group picks only need spread).
    fn pick(&mut self, n: usize) -> usize {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        if n == 0 {
            0
        } else {
            (x % n as u64) as usize
        }
    }

    /// True if any peer has items queued this turn.
    pub fn has_outgoing(&self) -> bool {
        self.outgoing.iter().any(|v| !v.is_empty())
    }

    /// Whether this turn's outgoing items point into the turn's input buffer, which must
    /// then travel with them (see [`Router::end_turn`]).
    pub fn turn_uses_blob(&self) -> bool {
        self.outgoing_uses_blob
    }
}
