//! A shard's HDR histograms: end-to-end latency (the publishing shard parsed the PUB →
//! the kernel accepted the bytes holding the MSG for a connection of this shard), queue
//! wait in the outbound buffer (appended here → accepted by the kernel), ring transit,
//! and the size of each vectored write (bytes, messages). Each is kept over the process
//! lifetime and over the last completed interval (`MONITOR_INTERVAL`).
//!
//! Latency is recorded per write and per group of messages (`record_n`): every message a
//! turn appended to one outbox shares its arrival time, so one record covers them all.
//! Recording allocates nothing (the histograms are sized up front, 1 µs .. 60 s at three
//! significant digits).

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The histograms of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hist {
    /// PUB parsed on the publishing shard → MSG bytes accepted by the kernel, µs.
    EndToEnd,
    /// Delivery appended to the outbound buffer → accepted by the kernel, µs.
    QueueWait,
    /// A ring batch sent → taken by the receiving shard, µs.
    RingTransit,
    /// Bytes carried by one vectored write.
    WriteBytes,
    /// Messages completed by one vectored write.
    WriteMsgs,
}

impl Hist {
    pub const ALL: [Hist; 5] = [
        Hist::EndToEnd,
        Hist::QueueWait,
        Hist::RingTransit,
        Hist::WriteBytes,
        Hist::WriteMsgs,
    ];

    /// Stable snake_case name, with its unit.
    pub fn name(self) -> &'static str {
        match self {
            Hist::EndToEnd => "latency_us",
            Hist::QueueWait => "queue_wait_us",
            Hist::RingTransit => "ring_transit_us",
            Hist::WriteBytes => "write_bytes",
            Hist::WriteMsgs => "write_msgs",
        }
    }

    fn highest(self) -> u64 {
        match self {
            Hist::EndToEnd | Hist::QueueWait | Hist::RingTransit => 60_000_000,
            Hist::WriteBytes => 1 << 32,
            Hist::WriteMsgs => 1 << 24,
        }
    }
}

/// A histogram of 1 .. `highest` at 3 significant digits (fixed size, never resized).
pub fn new_histogram(highest: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, highest, 3)
        .unwrap_or_else(|_| unreachable!("the bounds are constants known to be valid"))
}

/// A histogram of 1 µs .. 60 s at 3 significant digits.
pub fn new_latency_histogram() -> Histogram<u64> {
    new_histogram(Hist::EndToEnd.highest())
}

/// One histogram over the lifetime, the interval under way, and the last interval.
#[derive(Debug)]
struct Tracked {
    lifetime: Histogram<u64>,
    current: Histogram<u64>,
    last: Histogram<u64>,
}

impl Tracked {
    fn new(highest: u64) -> Self {
        Tracked {
            lifetime: new_histogram(highest),
            current: new_histogram(highest),
            last: new_histogram(highest),
        }
    }

    fn record_n(&mut self, value: u64, n: u64) {
        self.lifetime.saturating_record_n(value.max(1), n);
        self.current.saturating_record_n(value.max(1), n);
    }

    /// The interval under way becomes the last one; a new one starts (no allocation).
    fn rotate(&mut self) {
        std::mem::swap(&mut self.current, &mut self.last);
        self.current.reset();
    }
}

/// A shard's histograms, and the clock of the turn under way.
#[derive(Debug)]
pub struct Latency {
    hists: RefCell<Vec<Tracked>>,
    /// Record at all (`monitoring.latency`); off, nothing is timed.
    enabled: bool,
    /// When the messages of the turn under way were parsed on their publishing shard.
    arrived: Cell<Instant>,
    /// When the turn under way started on this shard.
    here: Cell<Instant>,
}

impl Latency {
    pub fn new(enabled: bool) -> Self {
        let now = Instant::now();
        Latency {
            hists: RefCell::new(
                Hist::ALL
                    .iter()
                    .map(|h| Tracked::new(h.highest()))
                    .collect(),
            ),
            enabled,
            arrived: Cell::new(now),
            here: Cell::new(now),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A turn starts at `here`; its messages were parsed at `arrived` (for a client's
    /// turn the same instant, for a ring batch the sending shard's turn).
    pub fn start_turn(&self, arrived: Instant, here: Instant) {
        self.arrived.set(arrived);
        self.here.set(here);
    }

    /// The turn under way: (parsed on the publishing shard, started here).
    pub fn turn(&self) -> (Instant, Instant) {
        (self.arrived.get(), self.here.get())
    }

    /// Records `n` samples of `value` (µs for latencies).
    pub fn record_n(&self, h: Hist, value: u64, n: u64) {
        if n > 0 {
            self.hists.borrow_mut()[h as usize].record_n(value, n);
        }
    }

    /// Records a duration in µs.
    pub fn record_duration(&self, h: Hist, d: Duration, n: u64) {
        self.record_n(h, d.as_micros().min(u128::from(u64::MAX)) as u64, n);
    }

    /// Ends the interval under way (called every `MONITOR_INTERVAL`).
    pub fn rotate(&self) {
        for t in self.hists.borrow_mut().iter_mut() {
            t.rotate();
        }
    }

    /// Copies of a histogram: (lifetime, last interval).
    pub fn copy(&self, h: Hist) -> (Histogram<u64>, Histogram<u64>) {
        let hists = self.hists.borrow();
        let t = &hists[h as usize];
        (t.lifetime.clone(), t.last.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_rotate_and_the_lifetime_keeps_everything() {
        let l = Latency::new(true);
        l.record_n(Hist::EndToEnd, 100, 3);
        l.rotate();
        l.record_n(Hist::EndToEnd, 900, 1);
        let (life, last) = l.copy(Hist::EndToEnd);
        assert_eq!(life.len(), 4);
        assert_eq!(last.len(), 3);
        l.rotate();
        let (life, last) = l.copy(Hist::EndToEnd);
        assert_eq!((life.len(), last.len()), (4, 1));
        assert_eq!(last.max(), life.max());
        l.rotate();
        assert_eq!(
            l.copy(Hist::EndToEnd).1.len(),
            0,
            "an idle interval is empty"
        );
    }

    #[test]
    fn zero_becomes_the_lowest_bucket_and_huge_values_saturate() {
        let l = Latency::new(true);
        l.record_n(Hist::QueueWait, 0, 1);
        l.record_duration(Hist::QueueWait, Duration::from_secs(3600), 1);
        let (life, _) = l.copy(Hist::QueueWait);
        assert_eq!(life.len(), 2);
        assert_eq!(life.min(), 1);
    }
}
