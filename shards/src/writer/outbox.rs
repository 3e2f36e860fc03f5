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
mod tests {
    use super::*;
    use crate::writer::stall::Plan;
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(1);

    fn env(budget_bytes: usize) -> Rc<OutboxEnv> {
        let memory = crate::flow::MemoryConfig {
            budget_bytes,
            high: 0.8,
            low: 0.6,
        };
        Rc::new(OutboxEnv {
            pool: Rc::new(ChunkPool::new(4)),
            congestion: Rc::new(Congestion::default()),
            metrics: Rc::new(ShardMetrics::new(true)),
            memory: Rc::new(MemoryBudget::new(&memory, 1, 8)),
        })
    }

    fn limits(pending_max: usize) -> Limits {
        Limits {
            pending_bytes_max: pending_max,
            payload_bytes_max: 16,
            stall_above_bytes: 64,
            stall_budget: Duration::from_millis(10),
            ..Limits::default()
        }
    }

    fn outbox(pending_max: usize) -> Rc<Outbox> {
        Rc::new(Outbox::new(7, env(1 << 30), &limits(pending_max)))
    }

    const NATS: Wire = Wire::Nats { headers: true };
    const ONE: Delivered = Delivered {
        msgs: 1,
        payload_bytes: 1,
        class: MsgClass {
            policy: Policy::Disconnect,
            priority: Priority::Normal,
        },
    };

    fn one(policy: Policy, priority: Priority) -> Delivered {
        Delivered {
            class: MsgClass { policy, priority },
            ..ONE
        }
    }

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
        assert!(o.env.congestion.is_empty());
        assert!(o.push_frames(&[b'x'; 1], ONE));
        assert!(o.push_frames(&[b'x'; 100], ONE));
        assert!(o.is_congested());
        assert_eq!(o.env.congestion.len(), 1);
        assert_eq!(o.take_written().len(), 165);
        assert!(!o.is_congested(), "written out: relieved");
        assert_eq!(o.out_totals(), (3, 3));
        let (e2e, _) = o.env.metrics.latency.copy(Hist::EndToEnd);
        assert_eq!(e2e.len(), 3, "the three deliveries were timed when written");
        o.env.congestion.clear();
    }

    #[test]
    fn drop_new_is_paced_first_then_sheds_until_under_low_and_counts_it() {
        // High watermark 64 (stall_above), low 32, a 10 ms stall budget.
        let o = outbox(1 << 20);
        let shed = one(Policy::DropNew, Priority::Normal);
        assert!(o.push_frames(&[b'x'; 60], shed));
        assert!(
            o.push_frames(&[b'x'; 10], shed),
            "over 64, but its publishers are paced first"
        );
        assert_eq!(o.env.congestion.len(), 1);
        o.env.congestion.clear();
        // It writes nothing for its whole stall budget: pacing does not help any more.
        let (s, t0) = (o.stall(), Instant::now());
        for k in 0..2 {
            assert_eq!(s.begin(t0 + k * 5 * MS, 0), Plan::Wait(5 * MS));
            s.end(t0 + (k + 1) * 5 * MS, 0);
        }
        assert!(s.exhausted());
        assert!(!o.push_frames(&[b'x'; 10], shed), "now it sheds");
        assert!(o.is_dropping());
        o.written(20);
        assert!(
            !o.push_frames(&[b'x'; 1], shed),
            "50 pending: not under 32 yet"
        );
        o.written(20);
        assert!(!o.is_dropping(), "30 pending: under the low watermark");
        assert!(o.push_frames(&[b'x'; 1], shed));
        assert!(!o.is_closing(), "it stays connected");
        assert!(
            !o.deadline_closes(),
            "only drop_new messages: a stuck write sheds"
        );
        assert!(o.push_frames(&[b'x'; 1], ONE));
        assert!(o.deadline_closes(), "a disconnect-policy message is queued");
        let t = o.tally();
        assert_eq!((t.matched, t.delivered_msgs), (6, 4));
        assert_eq!(t.dropped(DropReason::DropNew), 2);
        assert_eq!(t.matched, t.delivered_msgs + t.dropped_total());
        o.env.congestion.clear();
    }

    #[test]
    fn high_priority_is_never_shed_and_asks_for_an_urgent_flush() {
        // No pacing (a zero stall budget): drop_new sheds as soon as it is over 64.
        let limits = Limits {
            stall_budget: Duration::ZERO,
            ..limits(1 << 20)
        };
        let o = Rc::new(Outbox::new(7, env(1 << 30), &limits));
        assert!(!o.push_frames(&[b'x'; 100], one(Policy::DropNew, Priority::Normal)));
        assert!(o.push_frames(&[b'x'; 100], one(Policy::DropNew, Priority::High)));
        assert!(o.take_urgent());
        assert!(!o.take_urgent(), "taken once");
        assert!(!o.push_frames(&[b'x'; 1], one(Policy::DropNew, Priority::Normal)));
        assert_eq!(o.tally().dropped(DropReason::DropNew), 2);
    }

    #[test]
    fn a_slow_consumer_close_counts_what_it_refuses_and_discards() {
        let o = outbox(100);
        assert!(o.push_frames(&[b'x'; 90], ONE));
        assert!(!o.push_frames(&[b'x'; 20], ONE));
        assert!(!o.push_frames(&[b'x'; 1], ONE));
        let t = o.tally();
        assert_eq!(t.dropped(DropReason::SlowConsumer), 2);
        assert_eq!(t.matched, t.delivered_msgs + t.dropped_total());
        let c = o.env.metrics.counters.values();
        assert_eq!(c.get(Counter::BacklogDroppedBytes), 90);
    }

    #[test]
    fn copied_bytes_count_against_the_memory_budget_until_written() {
        let env = env(10_000);
        let o = Rc::new(Outbox::new(1, Rc::clone(&env), &limits(1 << 20)));
        assert!(o.push_frames(&[b'x'; 5000], ONE));
        assert!(o.push_reply(NATS, Reply::Flushed));
        assert_eq!(env.memory.held(), 5006);
        let block = Bytes::from(vec![b'y'; 3000]);
        assert!(o.push_shared(&block, ONE));
        assert_eq!(
            env.memory.held(),
            5006,
            "shared blocks are counted by their owner"
        );
        o.written(4000);
        assert_eq!(env.memory.held(), 1006);
        assert!(o.push_frames(&[b'x'; 7000], ONE));
        assert!(env.memory.is_paused(), "8006 is over 80% of 10 000");
        env.congestion.clear(); // the shard's list of congested outboxes held it too
        drop(o);
        assert_eq!(
            env.memory.held(),
            0,
            "a closed connection gives its bytes back"
        );
        assert!(!env.memory.is_paused());
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
