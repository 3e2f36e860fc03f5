//! Applying operations: the engine's vocabulary ([`Op`]) that every front-end translates
//! its wire into, [`Router::apply`] for one operation of one connection,
//! [`Router::apply_batch`] for a batch from a peer shard, [`Router::end_turn`] to hand the
//! turn's items to the rings, and [`Router::detach`] when a connection goes.
//!
//! Ordering rules live here: publishes batched into a run are delivered before any other
//! operation takes effect, a verbose client's `+OK` precedes its own deliveries, and a
//! flush waits for the barrier when the connection's earlier operations crossed shards.

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

use crate::close::CloseReason;
use crate::conn::Conn;
use crate::ring::{RingBatch, RingItem};
use crate::route::publish::{PubSpans, Scope};
use crate::route::Router;
use crate::subject::validate::is_valid_literal_subject;
use crate::wire::{MsgView, Refusal, Reply};

/// One operation on the engine, borrowing the front-end's input.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Publish `msg`; `spans` locate its parts in the turn's input buffer, so forwarding
    /// it to other shards shares that buffer instead of copying.
    Publish { msg: MsgView<'a>, spans: PubSpans },
    /// Publish `msg`, whose parts lie in `owner`, a block of its own (a message the
    /// front-end composed rather than read); forwards share the block.
    PublishOwned { msg: MsgView<'a>, owner: &'a Bytes },
    /// A message from the leaf link's hub, its parts in `owner`: it reaches the plain
    /// subscriptions and one member of each group in `queues` (the hub's LMSG queue list).
    PublishFromHub {
        msg: MsgView<'a>,
        owner: &'a Bytes,
        queues: &'a [&'a [u8]],
    },
    /// Subscribe to `subject` (optionally in queue group `queue`) under tag `sid`.
    Subscribe {
        sid: &'a [u8],
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
    },
    /// Remove subscription `sid` now, or after `max_msgs` deliveries in all.
    Unsubscribe {
        sid: &'a [u8],
        max_msgs: Option<u64>,
    },
    /// Answer (`Reply::Flushed`) once everything this connection sent before is in
    /// effect on every shard.
    Flush,
}

/// What an operation did to the connection that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (replies, if any, are queued).
    Done,
    /// A flush is held until the barrier completes; the router answers it then.
    Held,
    /// Refused; the connection was told and stays open.
    Refused(Refusal),
    /// The operation broke a rule that closes the connection.
    Closed(CloseReason),
}

/// What applying one operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub outcome: Outcome,
    /// Deliveries queued on this shard (including a run delivered meanwhile).
    pub delivered: usize,
    /// Peer shards a publish was forwarded to.
    pub forwarded: usize,
}

impl Applied {
    fn outcome(outcome: Outcome) -> Self {
        Applied {
            outcome,
            delivered: 0,
            forwarded: 0,
        }
    }
}

/// What applying one ring batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchApplied {
    pub delivered: usize,
    /// Queue-group picks whose member left before the message arrived.
    pub queue_misses: usize,
}

/// What ending a turn did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TurnEnd {
    /// Deliveries of the run delivered at the end of the turn.
    pub delivered: usize,
    /// Ring batches handed to `send`.
    pub batches: usize,
}

impl Router {
    /// Applies one operation of `conn`, queuing its replies and deliveries.
    pub fn apply(&mut self, conn: &Rc<Conn>, op: Op<'_>) -> Applied {
        let mut flushed = 0;
        if !matches!(
            op,
            Op::Publish { .. } | Op::PublishOwned { .. } | Op::PublishFromHub { .. }
        ) {
            // Publishes batched so far are delivered before anything else takes effect.
            flushed = self.run.flush(&mut self.subjects);
        }
        let mut applied = match op {
            Op::Publish { msg, spans } => self.apply_publish(conn, &msg, spans, None, Scope::All),
            Op::PublishOwned { msg, owner } => {
                let spans = PubSpans::of(owner, &msg);
                self.apply_publish(conn, &msg, spans, Some(owner), Scope::All)
            }
            Op::PublishFromHub { msg, owner, queues } => {
                let spans = PubSpans::of(owner, &msg);
                self.apply_publish(conn, &msg, spans, Some(owner), Scope::Hub(queues))
            }
            Op::Subscribe {
                sid,
                subject,
                queue,
            } => {
                let outcome = self.subscribe(conn, sid, subject, queue);
                match outcome {
                    Outcome::Refused(why) => {
                        conn.reply(Reply::Refused(why));
                    }
                    Outcome::Done => ack(conn),
                    Outcome::Held | Outcome::Closed(_) => {}
                }
                Applied::outcome(outcome)
            }
            Op::Unsubscribe { sid, max_msgs } => {
                self.unsubscribe(conn, sid, max_msgs);
                ack(conn);
                Applied::outcome(Outcome::Done)
            }
            Op::Flush => Applied::outcome(self.flush(conn)),
        };
        applied.delivered += flushed;
        self.remove_expired();
        applied
    }

    fn apply_publish(
        &mut self,
        conn: &Rc<Conn>,
        msg: &MsgView<'_>,
        spans: PubSpans,
        owner: Option<&Bytes>,
        scope: Scope<'_>,
    ) -> Applied {
        if !is_valid_literal_subject(msg.subject) {
            // nats-server: reported to pedantic clients, the connection stays open, the
            // message reaches nobody. A verbose client still gets its +OK after the error.
            if conn.flags().pedantic {
                conn.reply(Reply::Refused(Refusal::InvalidPublishSubject));
            }
            ack(conn);
            return Applied::outcome(Outcome::Refused(Refusal::InvalidPublishSubject));
        }
        // Acked before delivery, as nats-server does.
        ack(conn);
        let routed = self.publish(conn, msg, spans, owner, scope);
        Applied {
            outcome: Outcome::Done,
            delivered: routed.local,
            forwarded: routed.forwarded,
        }
    }

    fn flush(&mut self, conn: &Rc<Conn>) -> Outcome {
        if self.shards > 1 && (conn.is_cross_dirty() || conn.flushes_held() > 0) {
            // Held until every shard has applied what came before; answered in order.
            conn.set_cross_dirty(false);
            conn.hold_flushes(1);
            self.barrier.wait(conn);
            Outcome::Held
        } else {
            conn.reply(Reply::Flushed);
            Outcome::Done
        }
    }

    /// Applies a batch from shard `from`: its items in order, then the run they formed.
    pub fn apply_batch(&mut self, from: usize, batch: &RingBatch) -> BatchApplied {
        debug_assert!(
            from != self.shard && from < self.shards,
            "a batch comes from a peer"
        );
        let mut out = BatchApplied::default();
        let mut released = Vec::new();
        for item in &batch.items {
            match item {
                RingItem::InterestAdd { subject, queue } => {
                    out.delivered += self.run.flush(&mut self.subjects);
                    self.add_remote(from, subject, queue.as_deref());
                }
                RingItem::InterestRemove { subject, queue } => {
                    out.delivered += self.run.flush(&mut self.subjects);
                    self.remove_remote(from, subject, queue.as_deref());
                }
                RingItem::Publish(fwd) => {
                    let blob = fwd.blob.as_deref().unwrap_or(&batch.blob);
                    let o = self.deliver_forward(blob, fwd);
                    out.delivered += o.delivered;
                    out.queue_misses += o.queue_misses;
                }
                RingItem::Barrier(epoch) => self.outgoing[from].push(RingItem::BarrierAck(*epoch)),
                RingItem::BarrierAck(epoch) => self.barrier.ack(from, *epoch, &mut released),
            }
        }
        out.delivered += self.run.flush(&mut self.subjects);
        self.remove_expired();
        for (conn, flushes) in released {
            conn.release_flushes(flushes);
            for _ in 0..flushes {
                conn.reply(Reply::Flushed);
            }
        }
        out
    }

    /// Ends a turn: delivers the current run, adds a barrier token if a flush asked for
    /// one, and hands each peer its queued items as one batch. `blob` is the turn's input
    /// buffer (frozen) when [`Router::turn_uses_blob`] says forwarded items point into it.
    pub fn end_turn(
        &mut self,
        blob: Option<Bytes>,
        parsed_at: Instant,
        mut send: impl FnMut(usize, Box<RingBatch>),
    ) -> TurnEnd {
        let mut end = TurnEnd {
            delivered: self.run.flush(&mut self.subjects),
            batches: 0,
        };
        if let Some(epoch) = self.barrier.take_request() {
            self.broadcast(|| RingItem::Barrier(epoch));
        }
        debug_assert!(
            !self.outgoing_uses_blob || blob.is_some(),
            "forwarded publishes travel with their bytes"
        );
        self.outgoing_uses_blob = false;
        if !self.has_outgoing() {
            return end;
        }
        let blob = blob.unwrap_or_default();
        let now = Instant::now();
        for peer in 0..self.outgoing.len() {
            if self.outgoing[peer].is_empty() {
                continue;
            }
            let items = std::mem::take(&mut self.outgoing[peer]);
            send(
                peer,
                Box::new(RingBatch {
                    blob: blob.clone(),
                    items,
                    parsed_at,
                    sent_at: now,
                }),
            );
            end.batches += 1;
        }
        end
    }

    /// Forgets a connection that is going away: its subscriptions leave the index (and
    /// the other shards are told at the end of the turn).
    pub fn detach(&mut self, conn: &Conn) {
        debug_assert!(self.run.is_empty(), "runs end with their turn");
        let Some(subs) = self.subs.remove(&conn.cid) else {
            return;
        };
        for sub in subs.into_values() {
            self.remove_local(&sub);
        }
    }
}

/// Acknowledges an applied operation to a verbose client.
fn ack(conn: &Conn) {
    if conn.flags().verbose {
        conn.reply(Reply::Ok);
    }
}
