//! The receiving end of one ring, shared by the task that awaits it and by this shard's
//! client read loops: before a read loop routes a client's input it takes the batches
//! already waiting in every ring ([`Inbound::take_waiting`]). So an interest change that
//! another shard sent before this shard routes a publish is applied first, and a publish
//! reaches a subscriber whose SUB another shard has already processed, PING or not.
//!
//! Whether a batch is waiting is told by [`RingCounters`] (batches each shard has put in
//! each ring), not by polling the channel: glommio 0.9 registers a waker on every empty
//! poll, so polling idle rings once per read would pile them up.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use glommio::channels::shared_channel::ConnectedReceiver;

use crate::ring::RingMsg;

/// Batches put in each ring so far: one counter per ordered pair of shards.
#[derive(Debug, Clone)]
pub struct RingCounters {
    shards: usize,
    sent: Arc<[AtomicU64]>,
}

impl RingCounters {
    pub fn new(shards: usize) -> Self {
        RingCounters {
            shards,
            sent: (0..shards * shards).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, from: usize, to: usize) -> Option<&AtomicU64> {
        self.sent.get(from * self.shards + to)
    }

    /// `from` put one more batch in its ring to `to` (called after the send succeeded).
    pub fn note_sent(&self, from: usize, to: usize) {
        if let Some(c) = self.slot(from, to) {
            c.fetch_add(1, Ordering::Release);
        }
    }

    /// Batches `from` has put in its ring to `to`.
    pub fn sent(&self, from: usize, to: usize) -> u64 {
        self.slot(from, to).map_or(0, |c| c.load(Ordering::Acquire))
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

    /// The next batch if one is already in the ring, without waiting.
    pub async fn take_waiting(&self, counters: &RingCounters, me: usize) -> Option<RingMsg> {
        if counters.sent(self.from, me) <= self.received.get() {
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
        c.note_sent(0, 2);
        c.note_sent(0, 2);
        c.note_sent(2, 0);
        assert_eq!((c.sent(0, 2), c.sent(2, 0), c.sent(1, 2)), (2, 1, 0));
        // Out of range is nothing, not a panic.
        c.note_sent(7, 7);
        assert_eq!(c.sent(7, 7), 0);
    }
}
