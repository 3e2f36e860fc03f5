//! The outbox: the one gate every outbound byte of a connection goes through, deliveries,
//! PONGs, `+OK` and errors alike. It owns the connection's pending bytes ([`Outbound`]),
//! enforces `max_pending` on every append (a connection over it is closed as a slow
//! consumer, whatever it was sent), applies each message's slow-consumer policy and
//! priority (`flow::rules`) against its watermarks, tracks congestion for publisher
//! pacing ([`Stall`]), charges the bytes it copies to the shard's memory budget, keeps
//! its delivery accounting ([`Tally`]), holds why the connection is closing, and wakes
//! the connection's writer task.
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
use crate::flow::{MemoryBudget, MsgClass, Policy, Priority, Watermarks};
use crate::limits::{Limits, DRAIN_WAITERS_MAX};
use crate::metrics::{Counter, Hist, ShardMetrics};
use crate::trace;
use crate::wakers::WakerSet;
use crate::wire::{Reply, Wire};
use crate::writer::marks::Marks;
use crate::writer::stall::{Congestion, Stall};
use crate::writer::tally::{DropReason, Tally, TallyValues};
use crate::writer::{ChunkPool, Outbound};

/// What the outboxes of one shard share.
#[derive(Debug)]
pub struct OutboxEnv {
    /// Outbound chunks for reuse.
    pub pool: Rc<ChunkPool>,
    /// The outboxes congested this turn.
    pub congestion: Rc<Congestion>,
    /// The shard's counters and histograms.
    pub metrics: Rc<ShardMetrics>,
    /// The shard's share of `memory.budget`.
    pub memory: Rc<MemoryBudget>,
}

/// One connection's outbound side.
pub struct Outbox {
    /// The connection this outbox belongs to (for logs and echo suppression).
    cid: u64,
    out: RefCell<Outbound>,
    pending_bytes_max: Cell<usize>,
    /// Above `high`, `drop_new` messages are dropped until the outbox is under `low`.
    marks_high: Cell<usize>,
    marks_low: Cell<usize>,
    dropping: Cell<bool>,
    /// Messages of a policy other than `drop_new` were queued since the last complete
    /// flush: a write stuck past `write_deadline` then closes the connection.
    strict: Cell<bool>,
    closing: Cell<Option<CloseReason>>,
    /// Set by appends, taken by the writer: one flush per turn however many appends.
    flush_requested: Cell<bool>,
    /// A high-priority message is queued: the writer flushes without its flush delay.
    urgent: Cell<bool>,
    writer_waker: Cell<Option<Waker>>,
    /// The read loop waiting for its client, woken when the connection closes: the
    /// client's input ends there (its QUIT is told at once, not after the writer gives up).
    reader_waker: Cell<Option<Waker>>,
    stall: Stall,
    /// Publishers waiting for this outbox to drain.
    drain_waiters: RefCell<WakerSet>,
    env: Rc<OutboxEnv>,
    /// Deliveries queued, for timing when the kernel takes them.
    marks: RefCell<Marks>,
    tally: Tally,
    /// What the client is told when it is closed as a slow consumer, after its backlog is
    /// dropped (IRC: `ERROR :Closing Link: … (Slow consumer)`); NATS says nothing.
    farewell: RefCell<Option<Box<[u8]>>>,
}

/// What one append delivers: messages and their payload bytes (headers included), for
/// the counters and the latency marks, and how they are treated (their subject's
/// slow-consumer policy and priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub msgs: u64,
    pub payload_bytes: u64,
    pub class: MsgClass,
}

impl Delivered {
    pub fn one(payload_bytes: usize, class: MsgClass) -> Self {
        Delivered {
            msgs: 1,
            payload_bytes: payload_bytes as u64,
            class,
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
    pub fn new(cid: u64, env: Rc<OutboxEnv>, limits: &Limits) -> Self {
        let marks = watermarks(limits);
        Outbox {
            cid,
            out: RefCell::new(Outbound::new(Rc::clone(&env.pool))),
            pending_bytes_max: Cell::new(limits.pending_bytes_max),
            marks_high: Cell::new(marks.high),
            marks_low: Cell::new(marks.low),
            dropping: Cell::new(false),
            strict: Cell::new(false),
            closing: Cell::new(None),
            flush_requested: Cell::new(false),
            urgent: Cell::new(false),
            writer_waker: Cell::new(None),
            reader_waker: Cell::new(None),
            stall: Stall::new(marks.high, limits.stall_budget, limits.flow.stall_max),
            drain_waiters: RefCell::new(WakerSet::new(DRAIN_WAITERS_MAX)),
            env,
            marks: RefCell::new(Marks::default()),
            tally: Tally::default(),
            farewell: RefCell::new(None),
        }
    }

    /// Sets what the client is told if it is closed as a slow consumer.
    pub fn set_farewell(&self, line: &[u8]) {
        *self.farewell.borrow_mut() = Some(line.into());
    }

    /// Changes the pending bytes with `f`, charging the shard's memory budget for the
    /// bytes copied into (or released from) this connection's own chunks.
    fn with_out<R>(&self, f: impl FnOnce(&mut Outbound) -> R) -> R {
        let mut out = self.out.borrow_mut();
        let before = out.own_bytes();
        let r = f(&mut out);
        let after = out.own_bytes();
        drop(out);
        if after > before {
            self.env.memory.hold(after - before);
        } else if before > after {
            self.env.memory.release(before - after);
        }
        r
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
            let discarded = self.with_out(|out| {
                let n = out.pending_bytes();
                out.clear();
                n
            });
            if reason.is_slow_consumer() {
                self.env
                    .metrics
                    .add(Counter::BacklogDroppedBytes, discarded as u64);
                if let Some(line) = self.farewell.borrow_mut().take() {
                    self.with_out(|out| {
                        out.append_control_with(line.len(), |v| v.extend_from_slice(&line))
                    });
                }
            }
            self.marks.borrow_mut().clear();
        }
        self.relieve();
        self.flush_requested.set(true);
        if let Some(w) = self.writer_waker.take() {
            w.wake();
        }
        if let Some(w) = self.reader_waker.take() {
            w.wake();
        }
    }

    /// Resolves once the connection is closing: raced against the read of the client's
    /// input.
    pub async fn closed(&self) {
        poll_fn(|cx| {
            if self.is_closing() {
                return Poll::Ready(());
            }
            self.reader_waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await
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
        self.with_out(|out| out.append_control_with(len_max, |v| wire.encode_reply(v, reply)));
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
        self.with_out(|out| out.append_control_with(bytes.len(), |v| v.extend_from_slice(bytes)));
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
        let pushed = self.push_with(frames.len(), delivered, |out| {
            out.append_shared(frames.clone())
        });
        // The block's bytes count in the shard's shared figure.
        self.env.memory.check_pause();
        pushed
    }

    /// Appends at most `len` bytes of deliveries with `write`. Returns false (writing
    /// nothing, counting the messages as dropped) if the outbox is closing, if they are
    /// `drop_new` messages and it is over its high watermark, or if this append made it a
    /// slow consumer.
    pub fn push_with(
        self: &Rc<Self>,
        len: usize,
        delivered: Delivered,
        write: impl FnOnce(&mut Outbound),
    ) -> bool {
        let metrics = &*self.env.metrics;
        let msgs = delivered.msgs;
        self.tally.matched(msgs, metrics);
        if let Some(reason) = self.closing.get() {
            let why = if reason.is_slow_consumer() {
                DropReason::SlowConsumer
            } else {
                DropReason::Closed
            };
            self.tally.dropped(why, msgs, metrics);
            return false;
        }
        let class = delivered.class;
        let pending = self.pending_bytes();
        if class.policy == Policy::DropNew && class.priority == Priority::Normal {
            if self.dropping.get() && pending < self.marks_low.get() {
                self.dropping.set(false);
            }
            // Over the high watermark, publishers are paced for it as for any reader; it
            // sheds once that stops helping (it made no progress for the stall budget), and
            // it never goes past max_pending for a drop_new message.
            let over = pending + len > self.marks_high.get();
            if self.dropping.get()
                || (over && self.stall.exhausted())
                || pending + len > self.pending_bytes_max.get()
            {
                self.dropping.set(true);
                self.tally.dropped(DropReason::DropNew, msgs, metrics);
                return false;
            }
        }
        if pending + len > self.pending_bytes_max.get() {
            self.close(CloseReason::SlowConsumerPending);
            self.tally.dropped(DropReason::SlowConsumer, msgs, metrics);
            return false;
        }
        let (pending, end) = self.with_out(|out| {
            write(out);
            let pending = out.pending_bytes();
            (pending, out.written_total() + pending as u64)
        });
        self.tally.delivered(msgs, delivered.payload_bytes, metrics);
        if class.policy != Policy::DropNew {
            self.strict.set(true);
        }
        if metrics.latency.enabled() {
            let (arrived, here) = metrics.latency.turn();
            self.marks.borrow_mut().note(end, arrived, here, msgs);
        }
        if self
            .stall
            .note_pending(pending, class.policy == Policy::StallPublishers)
        {
            self.env.congestion.note(Rc::clone(self));
        }
        if class.priority == Priority::High {
            // Flushed at once, even with a flush delay (see `conn::writer_task`).
            self.urgent.set(true);
            self.flush_requested.set(true);
            if let Some(w) = self.writer_waker.take() {
                w.wake();
            }
        } else {
            self.wake_writer();
        }
        true
    }

    /// Writer side: `n` more bytes were accepted by the transport. Times the deliveries
    /// that completed, counts the write.
    pub fn written(&self, n: usize) {
        let (total, pending) = self.with_out(|out| {
            out.consume(n);
            (out.written_total(), out.pending_bytes())
        });
        if self.dropping.get() && pending < self.marks_low.get() {
            self.dropping.set(false);
        }
        // Shared blocks written out may be released now, which no local count saw.
        self.env.memory.check_resume();
        self.env.metrics.add(Counter::Writes, 1);
        let latency = &self.env.metrics.latency;
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
        let t = self.tally.values();
        (t.delivered_msgs, t.delivered_bytes)
    }

    /// Its delivery accounting: matched, delivered, dropped by reason.
    pub fn tally(&self) -> TallyValues {
        self.tally.values()
    }

    /// Whether it is above its high watermark (the load figure's network pressure).
    pub fn is_above_high(&self) -> bool {
        self.pending_bytes() > self.marks_high.get()
    }

    /// Whether `drop_new` messages are being dropped for it.
    pub fn is_dropping(&self) -> bool {
        self.dropping.get()
    }

    /// Whether a write stuck past `write_deadline` closes it: true unless everything it
    /// holds is of the `drop_new` policy (such a connection sheds instead, and keepalive
    /// closes it if its peer is dead).
    pub fn deadline_closes(&self) -> bool {
        self.strict.get()
    }

    /// Writer side: flush again at the next turn, whether or not anything is appended.
    pub fn retry_flush(&self) {
        self.flush_requested.set(true);
    }

    /// Writer side: takes the request to flush without the flush delay.
    pub fn take_urgent(&self) -> bool {
        self.urgent.replace(false)
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

    /// Takes reloaded limits: the pending bound, the watermarks and the pacing
    /// thresholds. Bytes already queued stay; the next append is checked against the new
    /// bounds.
    pub fn set_limits(&self, limits: &Limits) {
        let marks = watermarks(limits);
        self.pending_bytes_max.set(limits.pending_bytes_max);
        self.marks_high.set(marks.high);
        self.marks_low.set(marks.low);
        self.stall
            .set_limits(marks.high, limits.stall_budget, limits.flow.stall_max);
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
        if self.pending_bytes() == 0 {
            self.strict.set(false);
        }
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

    /// The shard's outbox environment.
    pub fn env(&self) -> &Rc<OutboxEnv> {
        &self.env
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

impl Drop for Outbox {
    fn drop(&mut self) {
        // What is still queued leaves the shard's budget with the connection.
        let own = self.out.get_mut().own_bytes();
        if own > 0 {
            self.env.memory.release(own);
        }
    }
}

/// A connection's watermarks under `limits`.
fn watermarks(limits: &Limits) -> Watermarks {
    Watermarks::new(
        &limits.flow,
        limits.stall_above_bytes,
        limits.pending_bytes_max,
    )
}

#[cfg(test)]
mod tests;
