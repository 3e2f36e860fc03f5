//! A shard's share of `memory.budget`: the bytes it holds queued for its connections
//! (copied into their outbound chunks, or shared run blocks, each counted once) and in
//! its ring overflow queues. Above `memory.high` of the share the shard stops reading
//! publishers (pushback: TCP slows them, nothing is lost) until the figure falls under
//! `memory.low`; its writers, which drain the queues, never wait on it.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_lite::future::poll_fn;

use crate::wakers::WakerSet;

/// The operator's memory settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryConfig {
    /// Bytes all shards together may hold queued (split evenly between shards).
    pub budget_bytes: usize,
    /// Share of the budget above which publishers are paused.
    pub high: f64,
    /// Share of the budget under which they read again.
    pub low: f64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            budget_bytes: default_budget_bytes(),
            high: 0.8,
            low: 0.6,
        }
    }
}

/// A quarter of the machine's memory (`MemTotal`), or 1 GiB when it cannot be read.
pub fn default_budget_bytes() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<usize>()
                .ok()
        })
        .map_or(1 << 30, |kib| kib.saturating_mul(1024) / 4)
}

/// One shard's queued bytes against its share of the budget.
#[derive(Debug)]
pub struct MemoryBudget {
    share_bytes: Cell<usize>,
    high_bytes: Cell<usize>,
    low_bytes: Cell<usize>,
    /// Bytes copied into outbound chunks and held in overflow queues.
    local: Cell<usize>,
    /// Bytes of shared run blocks alive (counted once however many outboxes hold them;
    /// released from whichever thread drops the last reference).
    shared: Arc<AtomicI64>,
    paused: Cell<Option<Instant>>,
    waiters: RefCell<WakerSet>,
    /// Pushback episodes and the time publishers spent paused in them.
    episodes: Cell<u64>,
    paused_total: Cell<Duration>,
}

impl MemoryBudget {
    /// The share of `config` for one of `shards` shards; `waiters_max` bounds the tasks
    /// that may wait (one per connection).
    pub fn new(config: &MemoryConfig, shards: usize, waiters_max: usize) -> Self {
        let b = MemoryBudget {
            share_bytes: Cell::new(0),
            high_bytes: Cell::new(0),
            low_bytes: Cell::new(0),
            local: Cell::new(0),
            shared: Arc::new(AtomicI64::new(0)),
            paused: Cell::new(None),
            waiters: RefCell::new(WakerSet::new(waiters_max)),
            episodes: Cell::new(0),
            paused_total: Cell::new(Duration::ZERO),
        };
        b.reconfigure(config, shards);
        b
    }

    /// Takes a new budget (a reload); bytes held stay held.
    pub fn reconfigure(&self, config: &MemoryConfig, shards: usize) {
        let share = config.budget_bytes / shards.max(1);
        self.share_bytes.set(share);
        self.high_bytes.set((share as f64 * config.high) as usize);
        self.low_bytes.set((share as f64 * config.low) as usize);
        self.check_pause();
        self.check_resume();
    }

    /// Starts a pushback episode if over the high mark (called after local holds, and
    /// after shared blocks are made, whose counter grows without a local call).
    pub fn check_pause(&self) {
        if self.paused.get().is_none() && self.held() > self.high_bytes.get() {
            self.paused.set(Some(Instant::now()));
            self.episodes.set(self.episodes.get() + 1);
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        let shared = self.shared.load(Ordering::Relaxed).max(0) as usize;
        self.local.get() + shared
    }

    /// Held bytes over the share, in [0, 1] (the load figure's memory pressure).
    pub fn pressure(&self) -> f64 {
        let share = self.share_bytes.get();
        if share == 0 {
            return 1.0;
        }
        (self.held() as f64 / share as f64).min(1.0)
    }

    /// The counter shared run blocks add to and release from.
    pub fn shared_counter(&self) -> Arc<AtomicI64> {
        Arc::clone(&self.shared)
    }

    /// `n` more bytes are held locally.
    #[inline]
    pub fn hold(&self, n: usize) {
        self.local.set(self.local.get() + n);
        self.check_pause();
    }

    /// `n` bytes held locally were released (written, or dropped).
    #[inline]
    pub fn release(&self, n: usize) {
        debug_assert!(n <= self.local.get(), "released more than held");
        self.local.set(self.local.get().saturating_sub(n));
        self.check_resume();
    }

    /// Lets publishers read again once under the low mark.
    pub fn check_resume(&self) {
        if let Some(since) = self.paused.get() {
            if self.held() < self.low_bytes.get() {
                self.paused.set(None);
                self.paused_total
                    .set(self.paused_total.get() + since.elapsed());
                self.waiters.borrow_mut().wake_all();
            }
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused.get().is_some()
    }

    /// Waits (a publisher's read loop) until the shard is under its low mark.
    pub async fn wait_for_room(&self) {
        poll_fn(|cx| {
            self.check_resume();
            if !self.is_paused() || !self.waiters.borrow_mut().register(cx.waker()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Pushback episodes so far, and the time they lasted (the one under way included).
    pub fn pushback(&self) -> (u64, Duration) {
        let ongoing = self.paused.get().map_or(Duration::ZERO, |s| s.elapsed());
        (self.episodes.get(), self.paused_total.get() + ongoing)
    }

    pub fn share_bytes(&self) -> usize {
        self.share_bytes.get()
    }

    /// When the current pushback episode began, if one is under way.
    pub fn paused_since(&self) -> Option<Instant> {
        self.paused.get()
    }
}

/// A block of bytes shared by reference (a run's frames, a ring batch's blob) whose size
/// counts against a shard's budget for as long as any reference lives, on whichever
/// thread drops the last one (`bytes::Bytes::from_owner`).
#[derive(Debug)]
pub struct Accounted<T: AsRef<[u8]>> {
    bytes: T,
    counter: Arc<AtomicI64>,
}

impl<T: AsRef<[u8]>> Accounted<T> {
    pub fn new(bytes: T, counter: Arc<AtomicI64>) -> Self {
        counter.fetch_add(bytes.as_ref().len() as i64, Ordering::Relaxed);
        Accounted { bytes, counter }
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Accounted<T> {
    fn as_ref(&self) -> &[u8] {
        self.bytes.as_ref()
    }
}

impl<T: AsRef<[u8]>> Drop for Accounted<T> {
    fn drop(&mut self) {
        self.counter
            .fetch_sub(self.bytes.as_ref().len() as i64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> MemoryBudget {
        let config = MemoryConfig {
            budget_bytes: 2000,
            high: 0.8,
            low: 0.6,
        };
        MemoryBudget::new(&config, 2, 8)
    }

    #[test]
    fn publishers_pause_above_high_and_resume_under_low() {
        let b = budget();
        assert_eq!(b.share_bytes(), 1000);
        b.hold(800);
        assert!(!b.is_paused(), "at the mark is not above it");
        b.hold(1);
        assert!(b.is_paused());
        b.release(150);
        assert!(b.is_paused(), "650 is still over the low mark");
        b.release(100);
        assert!(!b.is_paused());
        assert_eq!(b.pushback().0, 1);
        assert!((b.pressure() - 0.551).abs() < 1e-9);
    }

    #[test]
    fn shared_blocks_count_once_until_their_last_reference_goes() {
        let b = budget();
        let block = bytes::Bytes::from_owner(Accounted::new(vec![0; 500], b.shared_counter()));
        let copies: Vec<bytes::Bytes> = (0..100).map(|_| block.clone()).collect();
        assert_eq!(b.held(), 500, "one block, a hundred references");
        drop(block);
        drop(copies);
        assert_eq!(b.held(), 0);
    }
}
