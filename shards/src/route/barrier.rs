//! The flush barrier. A PING whose connection changed interest or forwarded a publish
//! since its last PONG waits here: at the end of the turn a `Barrier(epoch)` item goes to
//! every peer behind everything queued before it, each peer echoes `BarrierAck(epoch)`
//! after applying it, and the PONG is released when all peers have acked. Rings are
//! FIFO, so every shard has then applied what the connection sent before its PING.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::conn::Conn;

/// Barrier epochs and the connections waiting on them.
#[derive(Debug)]
pub struct Barrier {
    /// Epoch that PINGs arriving this turn wait for.
    next_epoch: u64,
    requested: bool,
    /// Highest epoch each peer has acknowledged (own slot unused).
    acked: Vec<u64>,
    me: usize,
    waiters: VecDeque<(u64, Rc<Conn>)>,
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

    /// Holds one PONG for `conn` until the current epoch completes.
    pub fn wait(&mut self, conn: Rc<Conn>) {
        self.waiters.push_back((self.next_epoch, conn));
        self.requested = true;
    }

    /// At the end of a turn: the epoch to send to every peer, if a PING asked for one.
    pub fn take_request(&mut self) -> Option<u64> {
        if !std::mem::take(&mut self.requested) {
            return None;
        }
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        Some(epoch)
    }

    /// Records `peer`'s ack; appends to `done` every connection whose epoch is now
    /// acknowledged by all peers, in the order the PINGs arrived.
    pub fn ack(&mut self, peer: usize, epoch: u64, done: &mut Vec<Rc<Conn>>) {
        if let Some(a) = self.acked.get_mut(peer) {
            debug_assert!(*a < epoch, "barrier acks arrive in order");
            *a = epoch;
        }
        let me = self.me;
        let complete = self
            .acked
            .iter()
            .enumerate()
            .filter(|&(p, _)| p != me)
            .map(|(_, &e)| e)
            .min()
            .unwrap_or(u64::MAX);
        while let Some((e, _)) = self.waiters.front() {
            if *e > complete {
                break;
            }
            if let Some((_, conn)) = self.waiters.pop_front() {
                done.push(conn);
            }
        }
    }
}
