//! Per-shard counters and latency histograms. Shard-local (`Cell`s, no atomics on the
//! hot path); a snapshot is taken when the shard stops and merged across shards.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Counters of one shard.
#[derive(Debug)]
pub struct ShardMetrics {
    pub msgs_in: Cell<u64>,
    pub bytes_in: Cell<u64>,
    /// Deliveries queued to subscribers (one per MSG).
    pub deliveries: Cell<u64>,
    pub forwards: Cell<u64>,
    pub ring_batches_out: Cell<u64>,
    pub ring_batches_in: Cell<u64>,
    pub queue_misses: Cell<u64>,
    pub conns_accepted: Cell<u64>,
    pub conns_rejected: Cell<u64>,
    pub slow_consumers: Cell<u64>,
    pub stale_connections: Cell<u64>,
    pub protocol_errors: Cell<u64>,
    /// Time a batch spent between the sending shard and this shard's receive loop, in µs.
    pub ring_transit_us: RefCell<Histogram<u64>>,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            msgs_in: Cell::new(0),
            bytes_in: Cell::new(0),
            deliveries: Cell::new(0),
            forwards: Cell::new(0),
            ring_batches_out: Cell::new(0),
            ring_batches_in: Cell::new(0),
            queue_misses: Cell::new(0),
            conns_accepted: Cell::new(0),
            conns_rejected: Cell::new(0),
            slow_consumers: Cell::new(0),
            stale_connections: Cell::new(0),
            protocol_errors: Cell::new(0),
            ring_transit_us: RefCell::new(new_latency_histogram()),
        }
    }
}

/// A histogram of 1 µs .. 60 s at 3 significant digits (fixed size, no resizing).
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| {
        // The bounds above are constants known to be valid.
        unreachable!("valid histogram bounds")
    })
}

/// Adds `n` to a counter.
pub fn add(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

impl ShardMetrics {
    pub fn record_ring_transit(&self, d: Duration) {
        self.ring_transit_us
            .borrow_mut()
            .saturating_record(d.as_micros().max(1) as u64);
    }

    /// A plain copy of the counters that can cross threads.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            msgs_in: self.msgs_in.get(),
            bytes_in: self.bytes_in.get(),
            deliveries: self.deliveries.get(),
            forwards: self.forwards.get(),
            ring_batches_out: self.ring_batches_out.get(),
            ring_batches_in: self.ring_batches_in.get(),
            queue_misses: self.queue_misses.get(),
            conns_accepted: self.conns_accepted.get(),
            conns_rejected: self.conns_rejected.get(),
            slow_consumers: self.slow_consumers.get(),
            stale_connections: self.stale_connections.get(),
            protocol_errors: self.protocol_errors.get(),
            ring_transit_us: self.ring_transit_us.borrow().clone(),
        }
    }
}

/// Counters of one shard (or of all, after `merge`), at one moment.
#[derive(Debug, Clone)]
pub struct MetricsSnapshot {
    pub msgs_in: u64,
    pub bytes_in: u64,
    pub deliveries: u64,
    pub forwards: u64,
    pub ring_batches_out: u64,
    pub ring_batches_in: u64,
    pub queue_misses: u64,
    pub conns_accepted: u64,
    pub conns_rejected: u64,
    pub slow_consumers: u64,
    pub stale_connections: u64,
    pub protocol_errors: u64,
    pub ring_transit_us: Histogram<u64>,
}

impl MetricsSnapshot {
    pub fn merge(&mut self, o: &MetricsSnapshot) {
        self.msgs_in += o.msgs_in;
        self.bytes_in += o.bytes_in;
        self.deliveries += o.deliveries;
        self.forwards += o.forwards;
        self.ring_batches_out += o.ring_batches_out;
        self.ring_batches_in += o.ring_batches_in;
        self.queue_misses += o.queue_misses;
        self.conns_accepted += o.conns_accepted;
        self.conns_rejected += o.conns_rejected;
        self.slow_consumers += o.slow_consumers;
        self.stale_connections += o.stale_connections;
        self.protocol_errors += o.protocol_errors;
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.ring_transit_us.add(&o.ring_transit_us);
    }
}
