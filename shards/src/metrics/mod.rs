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
    /// The shard thread's CPU time over the last interval, as a fraction of the interval.
    cpu_busy: Cell<f64>,
    /// The shard thread's CPU time when the last interval ended.
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

    /// Ends an interval at `now`, when the shard thread has used `cpu_total` of CPU in
    /// all (see [`thread_cpu_time`]).
    pub fn end_interval(&self, now: Instant, cpu_total: Duration) {
        let wall = now.saturating_duration_since(self.interval_end.replace(now));
        let busy = cpu_total.saturating_sub(self.cpu_busy_total.replace(cpu_total));
        self.cpu_busy.set(busy_fraction(busy, wall));
        self.latency.rotate();
    }

    /// The shard thread's busy fraction over the last interval.
    pub fn cpu_busy(&self) -> f64 {
        self.cpu_busy.get()
    }

    /// The shard thread's CPU time over its lifetime (as of the last interval).
    pub fn cpu_busy_total(&self) -> Duration {
        self.cpu_busy_total.get()
    }
}

/// CPU time (user and system) the calling thread has used. A shard is one thread, so
/// this is its busy time: the executor's own runtime figures are only brought up to date
/// between its scheduling rounds, which a busy shard may not leave for long stretches.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// `busy` over `wall`, in [0, 1].
pub fn busy_fraction(busy: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        (busy.as_secs_f64() / wall.as_secs_f64()).clamp(0.0, 1.0)
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
