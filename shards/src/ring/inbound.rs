//! The receiving end of one ring, shared by the task that awaits it and by this shard's
//! client read loops: before a read loop routes a client's input it takes the batches
//! waiting in every ring up to the last one that changes interest
//! ([`Inbound::take_waiting`] with [`Inbound::interest_mark`]). So an interest change that
//! another shard sent before this shard routes a publish is applied first, and a publish
//! reaches a subscriber whose SUB another shard has already processed, PING or not.
//! Batches that only carry publishes are left to the ring's receiver task: a read loop
//! that applied every waiting batch spent its turns on a busy peer's traffic and left its
//! own client unread for a tenth of a second at a time under overload.
//!
//! Which batches are waiting is told by [`RingCounters`] (batches each shard has put in
//! each ring, and the number of the last one that changed interest), not by polling the
//! channel: glommio 0.9 registers a waker on every empty poll, so polling idle rings
//! once per read would pile them up.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use glommio::channels::shared_channel::ConnectedReceiver;

use crate::ring::RingMsg;

/// Batches put in each ring so far, and the number of the last one that changed
/// interest: one pair of counters per ordered pair of shards.
#[derive(Debug, Clone)]
pub struct RingCounters {
    shards: usize,
    sent: Arc<[AtomicU64]>,
    interest: Arc<[AtomicU64]>,
}

impl RingCounters {
    pub fn new(shards: usize) -> Self {
        let counters = || (0..shards * shards).map(|_| AtomicU64::new(0)).collect();
        RingCounters {
            shards,
            sent: counters(),
            interest: counters(),
        }
    }

    fn slot<'a>(&self, of: &'a [AtomicU64], from: usize, to: usize) -> Option<&'a AtomicU64> {
        of.get(from * self.shards + to)
    }

    /// `from` put one more batch in its ring to `to` (called after the send succeeded);
    /// `changes_interest` when the batch adds or removes interest.
    pub fn note_sent(&self, from: usize, to: usize, changes_interest: bool) {
        let Some(sent) = self.slot(&self.sent, from, to) else {
            return;
        };
        let n = sent.fetch_add(1, Ordering::Release) + 1;
        if changes_interest {
            if let Some(c) = self.slot(&self.interest, from, to) {
                c.fetch_max(n, Ordering::Release);
            }
        }
    }

    /// Batches `from` has put in its ring to `to`.
    pub fn sent(&self, from: usize, to: usize) -> u64 {
        self.slot(&self.sent, from, to)
            .map_or(0, |c| c.load(Ordering::Acquire))
    }

    /// The number (counting from 1) of the last batch `from` put in its ring to `to`
    /// that changes interest; 0 if none did.
    pub fn interest_sent(&self, from: usize, to: usize) -> u64 {
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
}

impl Inbound {
    pub fn new(from: usize, rx: ConnectedReceiver<RingMsg>) -> Self {
        Inbound {
            from,
            rx,
            received: Cell::new(0),
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

    /// The number of the last batch in this ring that changes interest: the mark up to
    /// which a read loop takes batches ([`Inbound::take_waiting`]). Taken once per read,
    /// it also keeps the read loop from being held by batches that arrive meanwhile.
    pub fn interest_mark(&self, counters: &RingCounters, me: usize) -> u64 {
        counters.interest_sent(self.from, me)
    }

    /// The next batch, if it is already in the ring and numbered up to `mark`, without
    /// waiting.
    pub async fn take_waiting(&self, mark: u64) -> Option<RingMsg> {
        if mark <= self.received.get() {
            return None;
        }
        // A batch is in the ring, so this poll is ready at once and registers no waker.
        let batch = futures_lite::future::poll_once(self.rx.recv())
            .await
            .flatten();
        if batch.is_some() {
            self.received.set(self.received.get() + 1);
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
        c.note_sent(0, 2, false);
        c.note_sent(0, 2, true);
        c.note_sent(0, 2, false);
        c.note_sent(2, 0, false);
        assert_eq!((c.sent(0, 2), c.sent(2, 0), c.sent(1, 2)), (3, 1, 0));
        assert_eq!((c.interest_sent(0, 2), c.interest_sent(2, 0)), (2, 0));
        // Out of range is nothing, not a panic.
        c.note_sent(7, 7, true);
        assert_eq!(c.sent(7, 7), 0);
    }
}
