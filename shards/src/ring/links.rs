//! This shard's sending ends of the rings. `send` never waits: a batch that finds its
//! ring full joins an ordered overflow queue drained by one forwarder task per peer
//! (the only task that ever awaits that ring, avoiding glommio's mesh deadlock #555).
//!
//! The overflow bound (`ring.overflow_batches_max`) is enforced where batches are made:
//! a client's turn waits for room ([`RingLinks::wait_for_room`]) after its read and
//! before it routes anything, with no await between that check and its send, so its
//! batch finds room. Ring receivers never wait (that could deadlock two shards feeding
//! each other); their turns send only barrier acks, one per barrier a peer sent, so those
//! are bounded by the peers' own bounded turns.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::task::{Poll, Waker};

use futures_lite::future::poll_fn;
use glommio::channels::channel_mesh::Senders;
use glommio::{GlommioError, ResourceType};

use crate::ring::{RingCounters, RingMsg};
use crate::wakers::WakerSet;

/// Sending side of every ring out of one shard.
pub struct RingLinks {
    senders: Senders<RingMsg>,
    /// This shard's id, and the shared count of batches put in each ring.
    me: usize,
    counters: RingCounters,
    overflow: Vec<RefCell<VecDeque<RingMsg>>>,
    /// The forwarder holds a batch it is awaiting room for: later batches must queue.
    busy: Vec<Cell<bool>>,
    forwarder_wakers: Vec<Cell<Option<Waker>>>,
    /// Client turns waiting for room: at most one per connection on the shard.
    room_waiters: RefCell<WakerSet>,
    overflow_batches_max: usize,
    /// The shard is stopping: client turns no longer wait for room (a peer that stopped
    /// first takes nothing more, and glommio does not wake a sender waiting on a full
    /// ring whose receiver is gone).
    stopping: Cell<bool>,
}

impl RingLinks {
    /// `waiters_max` bounds the tasks that may wait for room (the shard's connections).
    pub fn new(
        senders: Senders<RingMsg>,
        counters: RingCounters,
        overflow_batches_max: usize,
        waiters_max: usize,
    ) -> Self {
        let n = senders.nr_consumers();
        RingLinks {
            me: senders.peer_id(),
            counters,
            senders,
            overflow: (0..n).map(|_| RefCell::new(VecDeque::new())).collect(),
            busy: (0..n).map(|_| Cell::new(false)).collect(),
            forwarder_wakers: (0..n).map(|_| Cell::new(None)).collect(),
            room_waiters: RefCell::new(WakerSet::new(waiters_max)),
            overflow_batches_max,
            stopping: Cell::new(false),
        }
    }

    /// Queues `msg` for `peer` without waiting, preserving order. Returns true when the
    /// ring was full (or others already waited) and the batch joined the overflow queue.
    pub fn send(&self, peer: usize, msg: RingMsg) -> bool {
        let Some(overflow) = self.overflow.get(peer) else {
            return false;
        };
        let mut overflow = overflow.borrow_mut();
        let interest = msg.changes_interest();
        if overflow.is_empty() && !self.busy[peer].get() {
            match self.senders.try_send_to(peer, msg) {
                Ok(()) => {
                    self.counters.note_queued(self.me, peer, interest);
                    self.counters.note_sent(self.me, peer);
                    return false;
                }
                Err(GlommioError::WouldBlock(ResourceType::Channel(msg))) => {
                    overflow.push_back(msg)
                }
                // The peer is gone (shutting down): nothing will read this batch.
                Err(_) => return false,
            }
        } else {
            overflow.push_back(msg);
        }
        // Counted as queued now: the peer's read loops wait for it before they route
        // a publish past it (`ring::inbound`).
        self.counters.note_queued(self.me, peer, interest);
        drop(overflow);
        if let Some(w) = self.forwarder_wakers[peer].take() {
            w.wake();
        }
        true
    }

    /// True while every overflow queue is under its bound (or the shard is stopping).
    pub fn has_room(&self) -> bool {
        self.stopping.get()
            || self
                .overflow
                .iter()
                .all(|q| q.borrow().len() < self.overflow_batches_max)
    }

    /// The shard is stopping: every turn waiting for room goes on, and none waits again.
    pub fn stop(&self) {
        self.stopping.set(true);
        self.wake_room_waiters();
    }

    /// Waits until `has_room`.
    pub async fn wait_for_room(&self) {
        poll_fn(|cx| {
            if self.has_room() {
                return Poll::Ready(());
            }
            let registered = self.room_waiters.borrow_mut().register(cx.waker());
            debug_assert!(
                registered,
                "more client turns wait than the shard has connections"
            );
            if registered {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }

    /// The forwarder for `peer`: drains its overflow queue in order, awaiting room in
    /// the ring. Returns when the peer's receiver is gone.
    pub async fn forward(&self, peer: usize) {
        loop {
            let msg = poll_fn(|cx| match self.overflow[peer].borrow_mut().pop_front() {
                Some(m) => Poll::Ready(m),
                None => {
                    self.forwarder_wakers[peer].set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            })
            .await;
            self.busy[peer].set(true);
            let sent = self.senders.send_to(peer, msg).await;
            self.busy[peer].set(false);
            if sent.is_ok() {
                self.counters.note_sent(self.me, peer);
            }
            // The peer is gone (shutting down), and with it every read loop that could
            // wait for these batches.
            if sent.is_err() {
                self.overflow[peer].borrow_mut().clear();
                self.wake_room_waiters();
                return;
            }
            if self.has_room() {
                self.wake_room_waiters();
            }
        }
    }

    fn wake_room_waiters(&self) {
        self.room_waiters.borrow_mut().wake_all();
    }

    /// Closes this shard's sending ends so peers' receive loops end.
    pub fn close(&self) {
        self.senders.close();
    }
}
