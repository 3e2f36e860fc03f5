//! The shard router: decides where a publish goes. It owns the shard's subscription
//! index (`local`), what it knows of the other shards' interest (`remote`, kept current
//! by interest items arriving over the rings), the items queued for each peer this turn,
//! and the barrier that holds a PONG until every shard has seen what came before it.
//!
//! Input: ops from the parser (via `shard::run_loop`) and items from the rings.
//! Output: deliveries to local subscriptions (through `fanout`) and one `RingBatch` per
//! peer per turn.

pub mod barrier;
pub mod interest;
pub mod publish;

use rustc_hash::FxHashMap;

use crate::conn::SubRef;
use crate::fanout;
use crate::limits::MATCH_CACHE_ENTRIES_MAX;
use crate::ring::RingItem;
use crate::subject::Sublist;

pub use barrier::Barrier;

/// Per-shard routing state. Shard-local: no locks.
pub struct Router {
    pub shard: usize,
    pub shards: usize,
    /// This shard's subscriptions.
    pub local: Sublist<SubRef>,
    /// Other shards' interest: plain subjects once per (subject, shard), queue
    /// subscriptions once per member so queue picks are weighted by member count.
    pub remote: Sublist<u16>,
    remote_plain_counts: FxHashMap<(Box<[u8]>, u16), u32>,
    /// Items for each peer, sent at the end of the turn (own slot stays empty).
    pub outgoing: Vec<Vec<RingItem>>,
    /// Some outgoing item points into the current read buffer.
    pub outgoing_uses_blob: bool,
    pub barrier: Barrier,
    /// Consecutive publishes to one subject in this turn, delivered together.
    pub run: fanout::Run,
    rng: u64,
}

impl Router {
    pub fn new(shard: usize, shards: usize) -> Self {
        Router {
            shard,
            shards,
            local: Sublist::new(MATCH_CACHE_ENTRIES_MAX),
            remote: Sublist::new(MATCH_CACHE_ENTRIES_MAX),
            remote_plain_counts: FxHashMap::default(),
            outgoing: (0..shards).map(|_| Vec::new()).collect(),
            outgoing_uses_blob: false,
            barrier: Barrier::new(shards, shard),
            run: fanout::Run::default(),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (shard as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        }
    }

    /// Peers of this shard, in id order.
    pub fn peers(&self) -> impl Iterator<Item = usize> + '_ {
        let me = self.shard;
        (0..self.shards).filter(move |&p| p != me)
    }

    /// Queues `item` for every other shard.
    pub fn broadcast(&mut self, item: impl Fn() -> RingItem) {
        for p in 0..self.shards {
            if p != self.shard {
                self.outgoing[p].push(item());
            }
        }
    }

    /// A random index below `n` (xorshift; queue-group picks only need spread).
    pub fn pick(&mut self, n: usize) -> usize {
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
}
