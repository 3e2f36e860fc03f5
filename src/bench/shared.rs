//! Owns what the coordinator thread and the generator executors share: the run's phase,
//! progress counters and the first error. Counters are updated once per read or write
//! batch, never per message.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Connections are being opened and subscribed.
pub const CONNECTING: u8 = 0;
/// Publishers send marked warm-up messages that receivers discard.
pub const WARMUP: u8 = 1;
/// Measured publishing.
pub const GO: u8 = 2;
/// Everyone stops, closes and reports.
pub const STOP: u8 = 3;

/// State shared by all generator threads.
pub struct Shared {
    phase: AtomicU8,
    /// Connections that finished their handshake (and subscriptions).
    pub ready: AtomicUsize,
    /// Publishers that finished warming up (their warm-up messages were acknowledged).
    pub warmed: AtomicUsize,
    /// Publishers (requesters) that finished and whose messages the server acknowledged.
    pub senders_done: AtomicUsize,
    /// Measured messages published so far.
    pub published: AtomicU64,
    /// Measured messages sent to each subject, final once all senders are done.
    pub sent_per_subject: Vec<AtomicU64>,
    /// Measured deliveries counted by each receiver.
    pub received: Vec<AtomicU64>,
    /// When measured publishing must end (duration mode), in [`now_ns`] time; 0 = no deadline.
    pub deadline_ns: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    /// Shared state for `subjects` subjects and `receivers` counted receivers.
    pub fn new(subjects: usize, receivers: usize) -> Shared {
        Shared {
            phase: AtomicU8::new(CONNECTING),
            ready: AtomicUsize::new(0),
            warmed: AtomicUsize::new(0),
            senders_done: AtomicUsize::new(0),
            published: AtomicU64::new(0),
            sent_per_subject: (0..subjects).map(|_| AtomicU64::new(0)).collect(),
            received: (0..receivers).map(|_| AtomicU64::new(0)).collect(),
            deadline_ns: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> u8 {
        self.phase.load(Relaxed)
    }

    /// Moves to `phase` (phases only move forward).
    pub fn set_phase(&self, phase: u8) {
        self.phase.fetch_max(phase, Relaxed);
    }

    /// Records an error; the first one ends the run.
    pub fn fail(&self, what: String) {
        if let Ok(mut e) = self.first_error.lock() {
            e.get_or_insert(what);
        }
        self.set_phase(STOP);
    }

    /// The first error recorded, if any.
    pub fn error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }

    /// Deliveries counted so far, over all receivers.
    pub fn received_total(&self) -> u64 {
        self.received.iter().map(|r| r.load(Relaxed)).sum()
    }

    /// Whether measured publishing is past its deadline.
    pub fn past_deadline(&self, now: u64) -> bool {
        let d = self.deadline_ns.load(Relaxed);
        d != 0 && now >= d
    }
}

/// Monotonic clock in nanoseconds, comparable across threads and processes on one machine
/// (payloads carry it, so a receiver in another process can time a message).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// `d` in nanoseconds, saturating.
pub fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
