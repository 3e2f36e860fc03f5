//! The flush barrier. A flush (NATS PING) whose connection changed interest or forwarded
//! a publish since its last flush waits here: at the end of the turn a `Barrier(epoch)`
//! item goes to every peer behind everything queued before it, each peer echoes
//! `BarrierAck(epoch)` after applying it, and the flush is answered when all peers have
//! acked. Rings are FIFO, so every shard has then applied what the connection sent first.
//!
//! Bounded: an epoch belongs to one turn, so to one connection, and all the flushes that
//! connection held in that turn share one waiter entry. Waiters therefore never outnumber
//! the epochs in flight, and those travel in rings and overflow queues that are bounded
//! (`ring.slots`, `ring.overflow_batches_max`), since client turns wait for room.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::conn::Conn;

/// One connection's flushes held behind one epoch.
#[derive(Debug)]
struct Waiter {
    epoch: u64,
    conn: Rc<Conn>,
    flushes: u32,
}

/// Barrier epochs and the connections waiting on them.
#[derive(Debug)]
pub struct Barrier {
    /// Epoch that flushes arriving this turn wait for.
    next_epoch: u64,
    requested: bool,
    /// Highest epoch each peer has acknowledged (own slot unused).
    acked: Vec<u64>,
    me: usize,
    waiters: VecDeque<Waiter>,
}

impl Barrier {
    pub fn new(shards: usize, me: usize) -> Self {
        Barrier {
            next_epoch: 1,
            requested: false,
            acked: vec![0; shards],
            me,
            waiters: VecDeque::new(),
        }
    }

    /// Holds one flush of `conn` until the current epoch completes.
    pub fn wait(&mut self, conn: &Rc<Conn>) {
        self.requested = true;
        if let Some(last) = self.waiters.back_mut() {
            if last.epoch == self.next_epoch && Rc::ptr_eq(&last.conn, conn) {
                last.flushes += 1;
                return;
            }
        }
        self.waiters.push_back(Waiter {
            epoch: self.next_epoch,
            conn: Rc::clone(conn),
            flushes: 1,
        });
    }

    /// At the end of a turn: the epoch to send to every peer, if a flush asked for one.
    pub fn take_request(&mut self) -> Option<u64> {
        if !std::mem::take(&mut self.requested) {
            return None;
        }
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        Some(epoch)
    }

    /// Records `peer`'s ack; appends to `done` every connection whose epoch is now
    /// acknowledged by all peers, with its count of flushes, in the order they arrived.
    pub fn ack(&mut self, peer: usize, epoch: u64, done: &mut Vec<(Rc<Conn>, u32)>) {
        let acked = &mut self.acked[peer];
        debug_assert!(*acked < epoch, "barrier acks arrive in order");
        *acked = epoch;
        let me = self.me;
        let complete = self
            .acked
            .iter()
            .enumerate()
            .filter(|&(p, _)| p != me)
            .map(|(_, &e)| e)
            .min()
            .unwrap_or(u64::MAX);
        while self.waiters.front().is_some_and(|w| w.epoch <= complete) {
            if let Some(w) = self.waiters.pop_front() {
                done.push((w.conn, w.flushes));
            }
        }
    }

    /// Connections waiting (one entry per connection and epoch).
    pub fn waiters(&self) -> usize {
        self.waiters.len()
    }
}
