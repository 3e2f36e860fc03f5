//! What a shard measures: counters ([`counters`]), HDR histograms of latency and write
//! sizes ([`latency`]), the busiest subjects ([`subjects`]), and the snapshots that carry
//! all of it, with per-connection and per-subscription rows, to the monitoring thread
//! ([`snapshot`]). Shard-local (`Cell`s and `RefCell`s, no atomics, no locks on the hot
//! path): the monitoring thread asks each shard for a snapshot over its control channel.

pub mod counters;
pub mod latency;
pub mod snapshot;
pub mod subjects;

use std::cell::Cell;
use std::time::{Duration, Instant};

pub use counters::{Counter, CounterValues, Counters};
pub use latency::{new_latency_histogram, Hist, Latency};
pub use snapshot::{ConnRow, FlowSnapshot, ShardSnapshot, SnapshotRequest, SubRow, SublistStats};
pub use subjects::{SubjectStats, SubjectTable};

/// What the shards measure, beyond the counters they always keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Time every delivery (end-to-end latency, queue wait, write sizes).
    pub latency: bool,
    /// Busiest subjects each shard reports (0: none tracked).
    pub top_subjects: usize,
    /// Each shard logs a one-line summary this often (zero: never).
    pub stats_log_interval: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            latency: true,
            top_subjects: 50,
            stats_log_interval: Duration::ZERO,
        }
    }
}

/// Everything one shard measures, shared (by `Rc`) with its outboxes and writers.
#[derive(Debug)]
pub struct ShardMetrics {
    pub counters: Counters,
    pub latency: Latency,
    /// Executor busy time over the last interval, as a fraction of the interval.
    cpu_busy: Cell<f64>,
    /// Executor busy time over the process lifetime.
    cpu_busy_total: Cell<Duration>,
    /// When the last interval ended.
    interval_end: Cell<Instant>,
}

impl ShardMetrics {
    pub fn new(latency_enabled: bool) -> Self {
        ShardMetrics {
            counters: Counters::default(),
            latency: Latency::new(latency_enabled),
            cpu_busy: Cell::new(0.0),
            cpu_busy_total: Cell::new(Duration::ZERO),
            interval_end: Cell::new(Instant::now()),
        }
    }

    #[inline]
    pub fn add(&self, c: Counter, n: u64) {
        self.counters.add(c, n);
    }

    pub fn record_ring_transit(&self, d: Duration) {
        if self.latency.enabled() {
            self.latency.record_duration(Hist::RingTransit, d, 1);
        }
    }

    /// Ends an interval at `now`, during which the executor was busy for `busy`.
    pub fn end_interval(&self, now: Instant, busy: Duration) {
        let wall = now.saturating_duration_since(self.interval_end.replace(now));
        let fraction = if wall.is_zero() {
            0.0
        } else {
            (busy.as_secs_f64() / wall.as_secs_f64()).clamp(0.0, 1.0)
        };
        self.cpu_busy.set(fraction);
        self.cpu_busy_total.set(self.cpu_busy_total.get() + busy);
        self.latency.rotate();
    }

    /// Executor busy fraction over the last interval.
    pub fn cpu_busy(&self) -> f64 {
        self.cpu_busy.get()
    }

    /// Executor busy time over the process lifetime.
    pub fn cpu_busy_total(&self) -> Duration {
        self.cpu_busy_total.get()
    }
}

/// Totals of a stopped shard (or of all, after `merge`): the shutdown log line.
#[derive(Debug, Clone)]
pub struct MetricsSnapshot {
    pub counters: CounterValues,
    pub ring_transit_us: hdrhistogram::Histogram<u64>,
    pub latency_us: hdrhistogram::Histogram<u64>,
}

impl MetricsSnapshot {
    pub fn of(m: &ShardMetrics) -> Self {
        MetricsSnapshot {
            counters: m.counters.values(),
            ring_transit_us: m.latency.copy(Hist::RingTransit).0,
            latency_us: m.latency.copy(Hist::EndToEnd).0,
        }
    }

    pub fn merge(&mut self, o: &MetricsSnapshot) {
        self.counters.add(&o.counters);
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.ring_transit_us.add(&o.ring_transit_us);
        let _ = self.latency_us.add(&o.latency_us);
    }
}
