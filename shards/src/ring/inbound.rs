//! The receiving end of one ring, shared by the task that awaits it and by this shard's
//! client read loops: before a read loop routes a client's input it takes the batches
//! waiting in every ring up to the last one that changes interest
//! ([`Inbound::wait_applied`] with [`Inbound::interest_mark`]). So an interest change that
//! another shard sent before this shard routes a publish is applied first, and a publish
//! reaches a subscriber whose SUB another shard has already processed, PING or not.
//! Batches that only carry publishes are left to the ring's receiver task: a read loop
//! that applied every waiting batch spent its turns on a busy peer's traffic and left its
//! own client unread for a tenth of a second at a time under overload.
//!
//! Which batches are waiting is told by [`RingCounters`] (batches each shard has queued
//! for each peer and put in its ring, and the number of the last one that changed
//! interest), not by polling the channel: glommio 0.9 registers a waker on every empty
//! poll, so polling idle rings once per read would pile them up. The interest mark counts
//! batches when they are *queued*, not when they enter the ring: a batch that found the
//! ring full waits in the sender's overflow queue (`ring::links`), and the read loop then
//! waits for it ([`Inbound::wait_applied`]) rather than route a publish past it.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::shared_channel::ConnectedReceiver;

use crate::ring::RingMsg;

/// Batches queued for and put in each ring so far, and the number of the last one that
/// changed interest: counters per ordered pair of shards.
#[derive(Debug, Clone)]
pub struct RingCounters {
    shards: usize,
    queued: Arc<[AtomicU64]>,
    sent: Arc<[AtomicU64]>,
    interest: Arc<[AtomicU64]>,
}

impl RingCounters {
    pub fn new(shards: usize) -> Self {
        let counters = || (0..shards * shards).map(|_| AtomicU64::new(0)).collect();
        RingCounters {
            shards,
            queued: counters(),
            sent: counters(),
            interest: counters(),
        }
    }

    fn slot<'a>(&self, of: &'a [AtomicU64], from: usize, to: usize) -> Option<&'a AtomicU64> {
        of.get(from * self.shards + to)
    }

    /// `from` queued one more batch for `to`, in the ring or behind it in the overflow
    /// queue (batches reach the ring in the order they are queued);
    /// `changes_interest` when the batch adds or removes interest.
    pub fn note_queued(&self, from: usize, to: usize, changes_interest: bool) {
        let Some(queued) = self.slot(&self.queued, from, to) else {
            return;
        };
        let n = queued.fetch_add(1, Ordering::Release) + 1;
        if changes_interest {
            if let Some(c) = self.slot(&self.interest, from, to) {
                c.fetch_max(n, Ordering::Release);
            }
        }
    }

    /// `from` put one more batch in its ring to `to` (called after the send succeeded).
    pub fn note_sent(&self, from: usize, to: usize) {
        if let Some(sent) = self.slot(&self.sent, from, to) {
            sent.fetch_add(1, Ordering::Release);
        }
    }

    /// Batches `from` has put in its ring to `to`.
    pub fn sent(&self, from: usize, to: usize) -> u64 {
        self.slot(&self.sent, from, to)
            .map_or(0, |c| c.load(Ordering::Acquire))
    }

    /// The number (counting from 1) of the last batch `from` queued for `to` that
    /// changes interest; 0 if none did.
    pub fn interest_queued(&self, from: usize, to: usize) -> u64 {
        self.slot(&self.interest, from, to)
            .map_or(0, |c| c.load(Ordering::Acquire))
    }
}

/// This shard's end of the ring from shard `from`.
pub struct Inbound {
    pub from: usize,
    rx: ConnectedReceiver<RingMsg>,
    /// Batches taken from this ring so far.
    received: Cell<u64>,
    /// Batches applied to this shard's router so far (a batch is taken, then applied,
    /// possibly after the taker waited out a memory pause).
    applied: Cell<u64>,
}

/// Empty checks a read loop makes, yielding in between, before it sleeps between checks
/// while it waits for a batch still in the sender's overflow queue.
const WAIT_YIELDS: u32 = 64;
const WAIT_SLEEP: Duration = Duration::from_micros(50);

impl Inbound {
    pub fn new(from: usize, rx: ConnectedReceiver<RingMsg>) -> Self {
        Inbound {
            from,
            rx,
            received: Cell::new(0),
            applied: Cell::new(0),
        }
    }

    /// Waits for the next batch; None once the sender has closed the ring.
    pub async fn recv(&self) -> Option<RingMsg> {
        let batch = self.rx.recv().await;
        if batch.is_some() {
            self.received.set(self.received.get() + 1);
        }
        batch
    }

    /// The taker of a batch has applied it.
    pub fn note_applied(&self) {
        self.applied.set(self.applied.get() + 1);
    }

    /// The number of the last batch queued for this ring that changes interest: the mark
    /// up to which a read loop has batches applied ([`Inbound::wait_applied`]). Taken once
    /// per read, it also keeps the read loop from being held by batches that arrive
    /// meanwhile.
    pub fn interest_mark(&self, counters: &RingCounters, me: usize) -> u64 {
        counters.interest_queued(self.from, me)
    }

    /// Applies with `apply` the batches up to `mark` that are in the ring, and waits for
    /// those still in the sender's overflow queue or being applied by the ring's
    /// receiver, until every batch up to `mark` is applied, or `give_up` says so (the
    /// server is stopping: a stopped peer drops what it had queued).
    pub async fn wait_applied<F, Fut>(
        &self,
        counters: &RingCounters,
        me: usize,
        mark: u64,
        apply: F,
        give_up: impl Fn() -> bool,
    ) where
        F: Fn(RingMsg) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut empty = 0u32;
        while self.applied.get() < mark && !give_up() {
            match self.take_waiting(counters, me, mark).await {
                Some(batch) => apply(batch).await,
                None if empty < WAIT_YIELDS => {
                    empty += 1;
                    futures_lite::future::yield_now().await;
                }
                None => glommio::timer::sleep(WAIT_SLEEP).await,
            }
        }
    }

    /// The next batch, if it is already in the ring and numbered up to `mark`, without
    /// waiting.
    async fn take_waiting(&self, counters: &RingCounters, me: usize, mark: u64) -> Option<RingMsg> {
        let received = self.received.get();
        if mark <= received || counters.sent(self.from, me) <= received {
            return None;
        }
        // A batch is in the ring, so this poll is ready at once and registers no waker.
        let batch = futures_lite::future::poll_once(self.rx.recv())
            .await
            .flatten();
        if batch.is_some() {
            self.received.set(received + 1);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_per_ordered_pair() {
        let c = RingCounters::new(3);
        c.note_queued(0, 2, false);
        c.note_queued(0, 2, true);
        c.note_queued(0, 2, false);
        c.note_queued(2, 0, false);
        c.note_sent(0, 2);
        c.note_sent(2, 0);
        assert_eq!((c.sent(0, 2), c.sent(2, 0), c.sent(1, 2)), (1, 1, 0));
        // The mark counts queued batches: the second is still behind the ring.
        assert_eq!((c.interest_queued(0, 2), c.interest_queued(2, 0)), (2, 0));
        // Out of range is nothing, not a panic.
        c.note_queued(7, 7, true);
        c.note_sent(7, 7);
        assert_eq!((c.sent(7, 7), c.interest_queued(7, 7)), (0, 0));
    }
}
