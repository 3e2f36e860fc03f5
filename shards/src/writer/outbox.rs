//! The outbox: the one gate every outbound byte of a connection goes through, deliveries,
//! PONGs, `+OK` and errors alike. It owns the connection's pending bytes ([`Outbound`]),
//! enforces `max_pending` on every append (a connection over it is closed as a slow
//! consumer, whatever it was sent), tracks congestion for publisher pacing ([`Stall`]),
//! holds why the connection is closing, and wakes the connection's writer task.
//!
//! Subscriptions hold an `Rc<Outbox>`, never the connection: fan-out needs nothing else,
//! and tests drive the whole middle of the engine against in-memory outboxes.

use std::cell::{Cell, Ref, RefCell};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use futures_lite::future::poll_fn;

use crate::close::CloseReason;
use crate::limits::{Limits, DRAIN_WAITERS_MAX};
use crate::metrics::{Counter, Hist, ShardMetrics};
use crate::trace;
use crate::wakers::WakerSet;
use crate::wire::{Reply, Wire};
use crate::writer::marks::Marks;
use crate::writer::stall::{Congestion, Stall};
use crate::writer::{ChunkPool, Outbound};

/// One connection's outbound side.
pub struct Outbox {
    /// The connection this outbox belongs to (for logs and echo suppression).
    cid: u64,
    out: RefCell<Outbound>,
    pending_bytes_max: Cell<usize>,
    closing: Cell<Option<CloseReason>>,
    /// Set by appends, taken by the writer: one flush per turn however many appends.
    flush_requested: Cell<bool>,
    writer_waker: Cell<Option<Waker>>,
    stall: Stall,
    /// Publishers waiting for this outbox to drain.
    drain_waiters: RefCell<WakerSet>,
    /// The shard's list of outboxes congested this turn.
    congestion: Rc<Congestion>,
    /// The shard's counters and histograms.
    metrics: Rc<ShardMetrics>,
    /// Deliveries queued, for timing when the kernel takes them.
    marks: RefCell<Marks>,
    /// Messages and payload bytes delivered to this connection.
    out_msgs: Cell<u64>,
    out_bytes: Cell<u64>,
}

/// What one append delivers: messages and their payload bytes (headers included), for
/// the counters and the latency marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub msgs: u64,
    pub payload_bytes: u64,
}

impl Delivered {
    pub fn one(payload_bytes: usize) -> Self {
        Delivered {
            msgs: 1,
            payload_bytes: payload_bytes as u64,
        }
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("cid", &self.cid)
            .field("pending_bytes", &self.pending_bytes())
            .field("closing", &self.closing.get())
            .finish_non_exhaustive()
    }
}

impl Outbox {
    pub fn new(
        cid: u64,
        pool: Rc<ChunkPool>,
        limits: &Limits,
        congestion: Rc<Congestion>,
        metrics: Rc<ShardMetrics>,
    ) -> Self {
        Outbox {
            cid,
            out: RefCell::new(Outbound::new(pool)),
            pending_bytes_max: Cell::new(limits.pending_bytes_max),
            closing: Cell::new(None),
            flush_requested: Cell::new(false),
            writer_waker: Cell::new(None),
            stall: Stall::new(
                limits.stall_above_bytes,
                limits.pending_bytes_max,
                limits.stall_budget,
            ),
            drain_waiters: RefCell::new(WakerSet::new(DRAIN_WAITERS_MAX)),
            congestion,
            metrics,
            marks: RefCell::new(Marks::default()),
            out_msgs: Cell::new(0),
            out_bytes: Cell::new(0),
        }
    }

    pub fn cid(&self) -> u64 {
        self.cid
    }

    pub fn is_closing(&self) -> bool {
        self.closing.get().is_some()
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closing.get()
    }

    /// Starts closing for `reason` (the first reason wins): drops a slow consumer's
    /// backlog, releases publishers waiting for it, and wakes the writer, which flushes
    /// what is left (bounded) and shuts the transport down. Any error text must have been
    /// queued before.
    pub fn close(&self, reason: CloseReason) {
        if self.closing.get().is_some() {
            return;
        }
        self.closing.set(Some(reason));
        if reason.drops_backlog() {
            self.out.borrow_mut().clear();
            self.marks.borrow_mut().clear();
        }
        self.relieve();
        self.flush_requested.set(true);
        if let Some(w) = self.writer_waker.take() {
            w.wake();
        }
    }

    /// Bytes waiting to be written.
    pub fn pending_bytes(&self) -> usize {
        self.out.borrow().pending_bytes()
    }

    /// Bytes written to the transport so far.
    pub fn written_total(&self) -> u64 {
        self.out.borrow().written_total()
    }

    /// Queues a reply to the connection's own operation, encoded by its wire. Bounded like
    /// a delivery: past `max_pending` the connection is closed as a slow consumer.
    pub fn push_reply(self: &Rc<Self>, wire: Wire, reply: Reply<'_>) -> bool {
        let len_max = wire.reply_len_max(reply);
        if len_max == 0 {
            return !self.is_closing(); // nothing to say on this wire
        }
        if !self.admit(len_max) {
            return false;
        }
        self.out
            .borrow_mut()
            .append_control_with(len_max, |v| wire.encode_reply(v, reply));
        if trace::enabled() {
            let mut text = Vec::with_capacity(len_max);
            wire.encode_reply(&mut text, reply);
            trace::outgoing(self.cid, &text, None);
        }
        self.wake_writer();
        true
    }

    /// Queues raw bytes the front-end encoded itself (a greeting such as NATS `INFO`).
    pub fn push_control(self: &Rc<Self>, bytes: &[u8]) -> bool {
        if !self.admit(bytes.len()) {
            return false;
        }
        self.out
            .borrow_mut()
            .append_control_with(bytes.len(), |v| v.extend_from_slice(bytes));
        if trace::enabled() {
            trace::outgoing(self.cid, trace::first_line(bytes), None);
        }
        self.wake_writer();
        true
    }

    /// Queues one or more whole, already encoded delivery frames. Returns false (queuing
    /// nothing) if the outbox is closing or this append made it a slow consumer.
    pub fn push_frames(self: &Rc<Self>, frames: &[u8], delivered: Delivered) -> bool {
        self.push_with(frames.len(), delivered, |out| out.append(frames))
    }

    /// Queues deliveries encoded once and shared with other outboxes (no copy).
    pub fn push_shared(self: &Rc<Self>, frames: &Bytes, delivered: Delivered) -> bool {
        self.push_with(frames.len(), delivered, |out| {
            out.append_shared(frames.clone())
        })
    }

    /// Appends at most `len` bytes of deliveries with `write`. Returns false (writing
    /// nothing) if the outbox is closing or this append made it a slow consumer.
    pub fn push_with(
        self: &Rc<Self>,
        len: usize,
        delivered: Delivered,
        write: impl FnOnce(&mut Outbound),
    ) -> bool {
        if !self.admit(len) {
            return false;
        }
        let (pending, end) = {
            let mut out = self.out.borrow_mut();
            write(&mut out);
            let pending = out.pending_bytes();
            (pending, out.written_total() + pending as u64)
        };
        self.out_msgs.set(self.out_msgs.get() + delivered.msgs);
        self.out_bytes
            .set(self.out_bytes.get() + delivered.payload_bytes);
        self.metrics.add(Counter::MsgsOut, delivered.msgs);
        self.metrics.add(Counter::BytesOut, delivered.payload_bytes);
        if self.metrics.latency.enabled() {
            let (arrived, here) = self.metrics.latency.turn();
            self.marks
                .borrow_mut()
                .note(end, arrived, here, delivered.msgs);
        }
        if self.stall.note_pending(pending) {
            self.congestion.note(Rc::clone(self));
        }
        self.wake_writer();
        true
    }

    /// Writer side: `n` more bytes were accepted by the transport. Times the deliveries
    /// that completed, counts the write.
    pub fn written(&self, n: usize) {
        let total = {
            let mut out = self.out.borrow_mut();
            out.consume(n);
            out.written_total()
        };
        self.metrics.add(Counter::Writes, 1);
        let latency = &self.metrics.latency;
        if latency.enabled() {
            let now = Instant::now();
            let msgs = self.marks.borrow_mut().written(total, now, latency);
            latency.record_n(Hist::WriteBytes, n as u64, 1);
            if msgs > 0 {
                latency.record_n(Hist::WriteMsgs, msgs, 1);
            }
        }
    }

    /// Messages and payload bytes delivered to this connection so far.
    pub fn out_totals(&self) -> (u64, u64) {
        (self.out_msgs.get(), self.out_bytes.get())
    }

    /// The bound every append passes: `len` more bytes must fit under `max_pending`.
    fn admit(&self, len: usize) -> bool {
        if self.is_closing() {
            return false;
        }
        if self.out.borrow().pending_bytes() + len > self.pending_bytes_max.get() {
            self.close(CloseReason::SlowConsumerPending);
            return false;
        }
        true
    }

    /// Takes reloaded limits: the pending bound and the pacing thresholds. Bytes already
    /// queued stay; the next append is checked against the new bound.
    pub fn set_limits(&self, limits: &Limits) {
        self.pending_bytes_max.set(limits.pending_bytes_max);
        self.stall.set_limits(
            limits.stall_above_bytes,
            limits.pending_bytes_max,
            limits.stall_budget,
        );
    }

    pub fn stall(&self) -> &Stall {
        &self.stall
    }

    pub fn is_congested(&self) -> bool {
        self.stall.is_congested()
    }

    /// The writer caught up (or the connection is closing): end the congestion episode
    /// and release publishers waiting for it.
    pub fn relieve(&self) {
        self.stall.relieve();
        self.drain_waiters.borrow_mut().wake_all();
    }

    /// Resolves once this outbox is no longer congested (or is closing), or at once when
    /// too many publishers already wait for it (the pause is a courtesy, never owed).
    pub async fn drained(&self) {
        poll_fn(|cx| {
            if !self.stall.is_congested()
                || self.is_closing()
                || !self.drain_waiters.borrow_mut().register(cx.waker())
            {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Asks the writer to flush at its next turn (once per turn, however many appends).
    fn wake_writer(&self) {
        if !self.flush_requested.replace(true) {
            if let Some(w) = self.writer_waker.take() {
                w.wake();
            }
        }
    }

    /// Writer side: takes the pending flush request, or parks `waker` until one comes.
    pub fn poll_flush_request(&self, waker: &Waker) -> bool {
        if self.flush_requested.replace(false) {
            return true;
        }
        self.writer_waker.set(Some(waker.clone()));
        false
    }

    /// Writer side, while it waits for the transport: wake `waker` on the next append or
    /// close as well.
    pub fn park_writer(&self, waker: &Waker) {
        self.writer_waker.set(Some(waker.clone()));
    }

    /// Writer side: the pending bytes, to write from.
    pub fn outbound(&self) -> Ref<'_, Outbound> {
        self.out.borrow()
    }

    /// Everything pending, copied out (tests).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        self.out.borrow().to_vec()
    }

    /// Takes everything pending as if it had been written (tests): returns the bytes.
    #[cfg(test)]
    pub fn take_written(&self) -> Vec<u8> {
        let bytes = self.out.borrow().to_vec();
        if !bytes.is_empty() {
            self.written(bytes.len());
        }
        self.relieve();
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outbox(pending_max: usize) -> Rc<Outbox> {
        let limits = Limits {
            pending_bytes_max: pending_max,
            payload_bytes_max: 16,
            stall_above_bytes: 64,
            stall_budget: Duration::from_millis(10),
            ..Limits::default()
        };
        Rc::new(Outbox::new(
            7,
            Rc::new(ChunkPool::new(4)),
            &limits,
            Rc::new(Congestion::default()),
            Rc::new(ShardMetrics::new(true)),
        ))
    }

    const NATS: Wire = Wire::Nats { headers: true };
    const ONE: Delivered = Delivered {
        msgs: 1,
        payload_bytes: 1,
    };

    #[test]
    fn replies_are_bounded_like_deliveries() {
        let o = outbox(600);
        let mut pongs = 0;
        while o.push_reply(NATS, Reply::Flushed) {
            pongs += 1;
        }
        assert_eq!(pongs, 100, "600 bytes hold 100 PONGs and no more");
        assert_eq!(o.close_reason(), Some(CloseReason::SlowConsumerPending));
        assert_eq!(o.pending_bytes(), 0, "a slow consumer's backlog is dropped");
        assert!(
            !o.push_reply(NATS, Reply::Ok),
            "nothing is queued once closing"
        );
        assert!(!o.push_frames(b"MSG a 1 0\r\n\r\n", ONE));
    }

    #[test]
    fn deliveries_past_max_pending_close_as_slow_consumer() {
        let o = outbox(100);
        assert!(o.push_frames(&[b'x'; 60], ONE));
        assert!(o.push_frames(&[b'x'; 40], ONE));
        assert!(!o.push_frames(&[b'x'; 1], ONE));
        assert_eq!(o.close_reason(), Some(CloseReason::SlowConsumerPending));
    }

    #[test]
    fn a_congested_outbox_is_listed_once_per_turn() {
        let o = outbox(1 << 20);
        assert!(o.push_frames(&[b'x'; 64], ONE));
        assert!(o.congestion.is_empty());
        assert!(o.push_frames(&[b'x'; 1], ONE));
        assert!(o.push_frames(&[b'x'; 100], ONE));
        assert!(o.is_congested());
        assert_eq!(o.congestion.len(), 1);
        assert_eq!(o.take_written().len(), 165);
        assert!(!o.is_congested(), "written out: relieved");
        assert_eq!(o.out_totals(), (3, 3));
        let (e2e, _) = o.metrics.latency.copy(Hist::EndToEnd);
        assert_eq!(e2e.len(), 3, "the three deliveries were timed when written");
        o.congestion.clear();
    }

    #[test]
    fn close_keeps_an_error_queued_before_it_but_drops_a_slow_backlog() {
        let o = outbox(1 << 20);
        assert!(o.push_reply(NATS, Reply::Err("Stale Connection")));
        o.close(CloseReason::StaleConnection);
        assert_eq!(o.to_vec(), b"-ERR 'Stale Connection'\r\n");
        o.close(CloseReason::SlowConsumerPending);
        assert_eq!(
            o.close_reason(),
            Some(CloseReason::StaleConnection),
            "first reason wins"
        );
    }
}
