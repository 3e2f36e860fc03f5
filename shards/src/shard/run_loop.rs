//! The pipeline, in order. For a client connection: read a chunk → let its front-end
//! parse and apply every complete operation (the router delivers locally and queues
//! forwards per peer) → end the turn (one ring batch per peer, sharing the chunk's bytes)
//! → pause for subscribers it congested → yield so writers flush. For a ring: take a
//! batch → apply its items in order → end the turn. Nothing else calls the stages.
//!
//! Flow control acts on the read side here: a publisher whose next message does not fit
//! its rate limits is not read until it does, and while the shard is over its memory
//! budget neither its publishers nor its rings are read. Both are pushback: TCP (or the
//! ring) slows the sender, nothing is dropped.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::close::CloseReason;
use crate::conn::reader::ReadBuf;
use crate::conn::writer_task::{self, WriterParams};
use crate::conn::{Conn, Transport};
use crate::flow::Accounted;
use crate::front::Session;
use crate::limits::{PUSHBACK_RECHECK, RING_RECEIVE_SLICE, THROTTLE_WAIT_MAX};
use crate::metrics::Counter;
use crate::ring::{Inbound, RingBatch};
use crate::route::Router;
use crate::shard::ShardCtx;
use crate::writer::{stall, Outbox};

/// Whether a connection went through the door (`conn::admission`: bans, per-IP limit,
/// accept rate) before it was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// Not yet: `serve_conn` checks it.
    Unchecked,
    /// Admitted already (a TLS connection, before its handshake).
    Admitted,
    /// Dialled by this server (the leaf link): not a client of ours, so neither admitted
    /// nor counted against the per-IP and connection limits.
    Dialled,
}

/// Serves one accepted connection, client id `cid` (see [`ShardCtx::next_cid`]), with
/// `session` until it closes.
pub async fn serve_conn<T: Transport + 'static>(
    ctx: Rc<ShardCtx>,
    cid: u64,
    transport: T,
    mut session: impl Session,
    door: Door,
) {
    let transport = Rc::new(transport);
    let (outbox, params, connections_max) = {
        let limits = ctx.limits();
        let params = WriterParams {
            write_bytes_max: limits.write_bytes_max,
            flush_delay: limits.flush_delay,
            shutdown_grace: limits.shutdown_grace,
        };
        let outbox = Outbox::new(cid, Rc::clone(&ctx.outbox_env), &limits);
        (Rc::new(outbox), params, limits.connections_max)
    };
    let (wire, flags) = session.start();
    let conn = Rc::new(Conn::new(cid, transport.peer(), outbox, wire, flags));
    *conn.tls.borrow_mut() = transport.tls_info();
    session.greet(&conn);

    let open = ctx
        .global
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    ctx.conns.borrow_mut().insert(cid, Rc::clone(&conn));
    let writer = glommio::spawn_local(writer_task::run(
        Rc::clone(&conn.outbox),
        Rc::clone(&transport),
        params,
    ));
    // Only clients hold a per-IP slot (taken at the door, given back at the end).
    let ip = conn.peer.map(|p| p.ip()).filter(|_| door != Door::Dialled);
    let admitted = if door != Door::Unchecked {
        Ok(())
    } else {
        let g = &ctx.global;
        let limits = ctx.limits();
        g.admission
            .admit(ip, &limits, &g.failures)
            .map_err(|refused| refused.close_reason())
    };
    let admitted = match admitted {
        Ok(()) if open > connections_max && door != Door::Dialled => {
            if let Some(ip) = ip {
                ctx.global.admission.release(ip);
            }
            Err(CloseReason::MaxConnections)
        }
        other => other,
    };
    match admitted {
        Err(reason) => {
            ctx.metrics.add(Counter::ConnsRejected, 1);
            tracing::warn!(shard = ctx.id, cid, peer = %conn.peer_text(), reason = reason.name(), "connection refused");
            conn.close_with(reason);
        }
        Ok(()) => {
            ctx.metrics.add(Counter::ConnsAccepted, 1);
            tracing::debug!(shard = ctx.id, cid, peer = ?conn.peer, "client connected");
            if let Some(deadline) = session.auth_deadline() {
                glommio::spawn_local(auth_timer(Rc::clone(&ctx), Rc::downgrade(&conn), deadline))
                    .detach();
            }
            read_loop(&ctx, &conn, &*transport, &mut session).await;
            if let Some(ip) = ip {
                ctx.global.admission.release(ip);
            }
        }
    }

    // The reader is done: withdraw interest, let the writer finish, forget the client.
    conn.close(CloseReason::ClientClosed);
    if let Some(links) = &ctx.links {
        links.wait_for_room().await;
    }
    {
        let mut router = ctx.router.borrow_mut();
        session.closed(&mut router, &conn);
        router.detach(&conn);
        end_turn(&ctx, &mut router, None);
    }
    writer.await;
    ctx.conns.borrow_mut().remove(&cid);
    ctx.global
        .connections
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    log_closed(&ctx, &conn);
}

/// Closes `conn` with `Authentication Timeout` if it has not authenticated `deadline`
/// after it connected.
async fn auth_timer(ctx: Rc<ShardCtx>, conn: std::rc::Weak<Conn>, deadline: Duration) {
    glommio::timer::sleep(deadline).await;
    let Some(conn) = conn.upgrade() else {
        return;
    };
    if !conn.is_authenticated() && !conn.is_closing() {
        ctx.metrics.add(Counter::AuthFailures, 1);
        tracing::warn!(shard = ctx.id, cid = conn.cid, peer = %conn.peer_text(), "authentication timeout: no CONNECT in time");
        conn.close_with(CloseReason::AuthTimeout);
    }
}

/// Counts the connection as closed, by its reason, and logs it.
fn log_closed(ctx: &ShardCtx, conn: &Conn) {
    let reason = conn
        .outbox
        .close_reason()
        .unwrap_or(CloseReason::ClientClosed);
    ctx.metrics.counters.closed(reason);
    let (shard, cid, peer, reason_name) = (ctx.id, conn.cid, conn.peer, reason.name());
    if reason.is_slow_consumer() {
        ctx.metrics.add(Counter::SlowConsumers, 1);
        let tally = conn.outbox.tally();
        tracing::warn!(
            shard,
            cid,
            ?peer,
            reason = reason_name,
            matched_msgs = tally.matched,
            out_msgs = tally.delivered_msgs,
            dropped_msgs = tally.dropped_total(),
            "slow consumer closed"
        );
    } else {
        tracing::debug!(shard, cid, ?peer, reason = reason_name, "client closed");
    }
}

async fn read_loop(
    ctx: &ShardCtx,
    conn: &Rc<Conn>,
    transport: &impl Transport,
    session: &mut impl Session,
) {
    let mut rb = ReadBuf::default();
    let mut needed = 0;
    while !conn.is_closing() {
        if conn.has_published() && ctx.memory.is_paused() {
            pushback(ctx, || conn.is_closing()).await;
        }
        // A close by the server (a slow consumer, an error sent) ends the read at once:
        // the session's goodbye (an IRC QUIT to the channels) is not held back until
        // the writer has given up on the client.
        let read = async { Some(rb.read_from(transport, needed).await) };
        let closed = async {
            conn.outbox.closed().await;
            None
        };
        match futures_lite::future::or(read, closed).await {
            None => return,
            Some(Ok(0)) => return conn.close(CloseReason::ClientClosed),
            Some(Ok(_)) => {}
            Some(Err(_)) => return conn.close(CloseReason::ReadError),
        }
        if conn.is_closing() {
            return;
        }
        let now = Instant::now();
        conn.touched(now);
        // What other shards sent before this input arrived takes effect first (their
        // interest changes above all), as it would on a single-threaded server.
        apply_waiting_batches(ctx).await;
        // Room for this turn's ring batches; from here to its end nothing awaits, so
        // they find it (the overflow bound is enforced here, see `ring::links`).
        if let Some(links) = &ctx.links {
            links.wait_for_room().await;
        }
        let mut turn = client_turn(ctx, conn, &mut rb, session, now);
        // Give congested subscribers a bounded chance to drain before reading more.
        stall::pause(&ctx.congestion).await;
        // Credentials to check, or over its rate limits: what is left of the input waits
        // for the check's outcome or for its tokens, and the socket is not read meanwhile.
        loop {
            if let Some(request) = session.take_credentials() {
                authenticate(ctx, conn, session, request).await;
            } else if let Some(wait) = turn.throttled {
                throttle(ctx, conn, wait).await;
            } else {
                break;
            }
            if conn.is_closing() {
                return;
            }
            apply_waiting_batches(ctx).await;
            if let Some(links) = &ctx.links {
                links.wait_for_room().await;
            }
            turn = client_turn(ctx, conn, &mut rb, session, Instant::now());
            stall::pause(&ctx.congestion).await;
        }
        needed = turn.needed;
        // Let writers and ring receivers run before reading more.
        futures_lite::future::yield_now().await;
    }
}

/// Waits while the shard is over its memory budget (rechecking every
/// `PUSHBACK_RECHECK`, and giving up when `give_up` says so).
async fn pushback(ctx: &ShardCtx, give_up: impl Fn() -> bool) {
    if !ctx.memory.is_paused() {
        return;
    }
    ctx.metrics.add(Counter::PushbackWaits, 1);
    while ctx.memory.is_paused() && !give_up() && !ctx.stopping.get() {
        let _ = glommio::timer::timeout(PUSHBACK_RECHECK, async {
            ctx.memory.wait_for_room().await;
            Ok(())
        })
        .await;
    }
}

/// Checks the credentials `session` stopped at and gives it the outcome.
async fn authenticate(
    ctx: &ShardCtx,
    conn: &Rc<Conn>,
    session: &mut impl Session,
    request: crate::front::AuthRequest,
) {
    let peer = conn.peer.map(|p| p.ip());
    let outcome =
        crate::auth::authenticate(&request.auth, &ctx.global.failures, peer, request.creds).await;
    if let Some(links) = &ctx.links {
        links.wait_for_room().await;
    }
    let mut router = ctx.router.borrow_mut();
    session.authenticated(&mut router, &ctx.metrics, conn, outcome);
    end_turn(ctx, &mut router, None);
}

/// Leaves `conn` unread for `wait` (at most `THROTTLE_WAIT_MAX` at a time: the wait is
/// worked out again with the load then), counting it.
async fn throttle(ctx: &ShardCtx, conn: &Conn, wait: Duration) {
    let began = Instant::now();
    glommio::timer::sleep(wait.min(THROTTLE_WAIT_MAX)).await;
    let waited = began.elapsed();
    conn.throttle().note_throttled(waited);
    ctx.metrics.add(Counter::Throttles, 1);
    ctx.metrics
        .add(Counter::ThrottledUs, waited.as_micros() as u64);
}

/// What a client turn left to do.
struct Turn {
    /// The size of the operation still being received, if known.
    needed: usize,
    /// Set when a publish did not fit the rate limits: how long until it does.
    throttled: Option<Duration>,
}

/// One turn of a client: parse and apply what was read, then end the turn.
fn client_turn(
    ctx: &ShardCtx,
    conn: &Rc<Conn>,
    rb: &mut ReadBuf,
    session: &mut impl Session,
    now: Instant,
) -> Turn {
    // The messages of this turn were parsed now, here.
    ctx.metrics.latency.start_turn(now, now);
    let mut router = ctx.router.borrow_mut();
    let input = session.input(&mut router, &ctx.metrics, conn, rb.data());
    let blob = if router.turn_uses_blob() {
        Some(rb.freeze_consumed(input.consumed))
    } else {
        rb.consume(input.consumed);
        None
    };
    end_turn(ctx, &mut router, blob);
    Turn {
        needed: input.needed,
        throttled: input.throttled,
    }
}

/// Ends a turn: the router's run is delivered and each peer gets its queued items as one
/// batch. `blob` holds the bytes that forwarded publishes point into.
pub(crate) fn end_turn(ctx: &ShardCtx, router: &mut Router, blob: Option<Bytes>) {
    let (parsed_at, _) = ctx.metrics.latency.turn();
    // The bytes travel to other shards: this shard's budget holds them until the last
    // peer has applied them.
    let blob = blob.map(|b| Bytes::from_owner(Accounted::new(b, ctx.memory.shared_counter())));
    if blob.is_some() {
        ctx.memory.check_pause();
    }
    let end = router.end_turn(blob, parsed_at, |peer, batch| {
        if let Some(links) = &ctx.links {
            if links.send(peer, batch) {
                ctx.metrics.add(Counter::RingFull, 1);
            }
        }
    });
    ctx.metrics.add(Counter::RingBatchesOut, end.batches as u64);
}

/// Applies the batches waiting in the rings up to the last one that changes interest,
/// each as the ring's own receiver would: its acks sent, and paced like any turn that
/// feeds subscribers. Later batches, and batches that arrive meanwhile, are the ring
/// receiver's (see `ring::inbound`).
pub(crate) async fn apply_waiting_batches(ctx: &ShardCtx) {
    let counters = &ctx.global.ring_counters;
    for inbound in &ctx.inbound {
        let mark = inbound.interest_mark(counters, ctx.id);
        inbound
            .wait_applied(
                counters,
                ctx.id,
                mark,
                |batch| async move { ring_turn(ctx, inbound, &batch).await },
                || ctx.stopping.get(),
            )
            .await;
    }
}

/// One batch as a turn of its own: applied, its acks sent, then paced for the
/// subscribers it fed.
async fn ring_turn(ctx: &ShardCtx, inbound: &Inbound, batch: &RingBatch) {
    // Over the memory budget, the rings wait too (their senders then wait for room).
    if ctx.memory.is_paused() {
        pushback(ctx, || false).await;
    }
    let now = Instant::now();
    ctx.metrics.add(Counter::RingBatchesIn, 1);
    ctx.metrics
        .record_ring_transit(now.saturating_duration_since(batch.sent_at));
    ctx.metrics.latency.start_turn(batch.parsed_at, now);
    {
        let mut router = ctx.router.borrow_mut();
        let applied = router.apply_batch(inbound.from, batch);
        inbound.note_applied();
        ctx.metrics
            .add(Counter::QueueMisses, applied.queue_misses as u64);
        end_turn(ctx, &mut router, None);
    }
    stall::pause(&ctx.congestion).await;
}

/// Applies every batch `inbound.from` sends, in order, until its ring closes.
pub async fn ring_receive(ctx: Rc<ShardCtx>, inbound: Rc<Inbound>) {
    let mut since_yield = Instant::now();
    while let Some(batch) = inbound.recv().await {
        ring_turn(&ctx, &inbound, &batch).await;
        // A busy peer's batches get `RING_RECEIVE_SLICE` at a time: then the shard's read
        // loops and writers get their turns. (Yielding after every batch instead cost
        // the fixed-rate latency entry its p99: 4-5 ms became 6-80 ms.)
        if since_yield.elapsed() >= RING_RECEIVE_SLICE {
            futures_lite::future::yield_now().await;
            since_yield = Instant::now();
        } else {
            glommio::yield_if_needed().await;
        }
    }
}
