//! A shard's state at one moment, in plain values that cross to the monitoring thread:
//! its counters, histograms, busiest subjects, and (when asked) one row per connection
//! and per subscription. The monitoring thread asks every shard and adds them up.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use crate::metrics::{CounterValues, Hist, SubjectStats};
use crate::writer::TallyValues;

/// What a snapshot should include beyond the shard's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// One row per connection.
    pub conns: bool,
    /// One row per subscription (and each connection's subjects).
    pub subs: bool,
}

/// One connection, as nats-server's `/connz` shows it.
#[derive(Debug, Clone)]
pub struct ConnRow {
    pub cid: u64,
    pub shard: usize,
    pub peer: Option<SocketAddr>,
    pub start: SystemTime,
    pub last_activity: SystemTime,
    /// Round trip of the last keepalive PING answered, if any.
    pub rtt: Option<Duration>,
    pub pending_bytes: u64,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    /// Its delivery accounting (matched = delivered + dropped by reason).
    pub tally: TallyValues,
    /// Whether `drop_new` messages are being dropped for it now.
    pub dropping: bool,
    /// Times it was not read because of its rate limits, and for how long in all.
    pub throttles: u64,
    pub throttled: Duration,
    pub subscriptions: u64,
    /// The subjects of its subscriptions (when subscriptions were asked for).
    pub subjects: Vec<String>,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
    /// The user it authenticated as.
    pub user: Option<String>,
    /// TLS version and cipher suite.
    pub tls: Option<(String, String)>,
}

/// One subscription, as nats-server's `/subsz?subs=1` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRow {
    pub subject: String,
    pub queue: Option<String>,
    pub sid: String,
    pub cid: u64,
    pub msgs: u64,
    /// Auto-unsubscribe limit; 0 = none.
    pub max: u64,
}

/// Subscription index counters, as nats-server's `/subsz` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SublistStats {
    pub subscriptions: u64,
    pub cache_entries: u64,
    pub inserts: u64,
    pub removes: u64,
    pub matches: u64,
    pub cache_hits: u64,
    /// Most subscriptions one match returned, and the total over all matches.
    pub max_fanout: u64,
    pub fanout_total: u64,
}

impl SublistStats {
    pub fn add(&mut self, o: &SublistStats) {
        self.subscriptions += o.subscriptions;
        self.cache_entries += o.cache_entries;
        self.inserts += o.inserts;
        self.removes += o.removes;
        self.matches += o.matches;
        self.cache_hits += o.cache_hits;
        self.max_fanout = self.max_fanout.max(o.max_fanout);
        self.fanout_total += o.fanout_total;
    }
}

/// A shard's flow control at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FlowSnapshot {
    /// The load figure L (smoothed), and the inputs of its last sample.
    pub load: f64,
    pub cpu: f64,
    pub memory: f64,
    pub network: f64,
    /// The factor rate limits refill at, f(L).
    pub rate_scale: f64,
    /// Bytes held against the shard's share of `memory.budget`, and that share.
    pub memory_held_bytes: u64,
    pub memory_share_bytes: u64,
    /// Whether publishers are paused for the budget now; episodes and their time so far.
    pub pushback: bool,
    pub pushback_episodes: u64,
    pub pushback_time: Duration,
    /// Connections above their high watermark, and those shedding `drop_new` messages.
    pub conns_above_high: u64,
    pub conns_dropping: u64,
}

/// One shard at one moment.
#[derive(Debug, Clone)]
pub struct ShardSnapshot {
    pub shard: usize,
    pub counters: CounterValues,
    /// Connections open now.
    pub connections: u64,
    pub sublist: SublistStats,
    /// The shard thread's CPU busy fraction over the last interval, and its CPU time in all.
    pub cpu_busy: f64,
    pub cpu_busy_total: Duration,
    pub flow: FlowSnapshot,
    /// Each histogram: over the lifetime, and over the last interval.
    pub hists: Vec<(Hist, Histogram<u64>, Histogram<u64>)>,
    pub subjects: Vec<(String, SubjectStats)>,
    pub conns: Vec<ConnRow>,
    pub subs: Vec<SubRow>,
    /// The log inputs' and rules' counters, when `[logs]` is on.
    pub logs: Option<crate::logs::LogSnapshot>,
    /// The leaf node link, on the shard that runs it.
    pub leaf: Option<crate::leaf::LeafSnapshot>,
}

impl ShardSnapshot {
    /// A histogram's (lifetime, last interval) copies.
    pub fn hist(&self, h: Hist) -> Option<(&Histogram<u64>, &Histogram<u64>)> {
        self.hists
            .iter()
            .find(|(k, _, _)| *k == h)
            .map(|(_, life, last)| (life, last))
    }
}
