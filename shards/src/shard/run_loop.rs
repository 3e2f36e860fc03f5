//! The pipeline, in order. For a client connection: read a chunk → let its front-end
//! parse and apply every complete operation (the router delivers locally and queues
//! forwards per peer) → end the turn (one ring batch per peer, sharing the chunk's bytes)
//! → pause for subscribers it congested → yield so writers flush. For a ring: take a
//! batch → apply its items in order → end the turn. Nothing else calls the stages.

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

use crate::close::CloseReason;
use crate::conn::reader::ReadBuf;
use crate::conn::writer_task::{self, WriterParams};
use crate::conn::{Conn, Transport};
use crate::front::Session;
use crate::metrics::Counter;
use crate::ring::{Inbound, RingBatch};
use crate::route::Router;
use crate::shard::ShardCtx;
use crate::writer::{stall, Outbox};

/// Serves one accepted connection with `session` until it closes.
pub async fn serve_conn<T: Transport + 'static>(
    ctx: Rc<ShardCtx>,
    transport: T,
    mut session: impl Session,
) {
    let cid = ctx
        .global
        .next_cid
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let transport = Rc::new(transport);
    let limits = ctx.limits().clone();
    let outbox = Rc::new(Outbox::new(
        cid,
        Rc::clone(&ctx.pool),
        &limits,
        Rc::clone(&ctx.congestion),
        Rc::clone(&ctx.metrics),
    ));
    let (wire, flags) = session.start();
    let conn = Rc::new(Conn::new(cid, transport.peer(), outbox, wire, flags));
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
        WriterParams {
            write_bytes_max: limits.write_bytes_max,
            flush_delay: limits.flush_delay,
            shutdown_grace: limits.shutdown_grace,
        },
    ));
    if open > limits.connections_max {
        ctx.metrics.add(Counter::ConnsRejected, 1);
        conn.close_with(CloseReason::MaxConnections);
    } else {
        ctx.metrics.add(Counter::ConnsAccepted, 1);
        tracing::debug!(shard = ctx.id, cid, peer = ?conn.peer, "client connected");
        read_loop(&ctx, &conn, &*transport, &mut session).await;
    }

    // The reader is done: withdraw interest, let the writer finish, forget the client.
    conn.close(CloseReason::ClientClosed);
    if let Some(links) = &ctx.links {
        links.wait_for_room().await;
    }
    {
        let mut router = ctx.router.borrow_mut();
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

fn log_closed(ctx: &ShardCtx, conn: &Conn) {
    let reason = conn
        .outbox
        .close_reason()
        .unwrap_or(CloseReason::ClientClosed);
    let (shard, cid, peer, reason_name) = (ctx.id, conn.cid, conn.peer, reason.name());
    if reason.is_slow_consumer() {
        ctx.metrics.add(Counter::SlowConsumers, 1);
        tracing::warn!(
            shard,
            cid,
            ?peer,
            reason = reason_name,
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
        match rb.read_from(transport, needed).await {
            Ok(0) => return conn.close(CloseReason::ClientClosed),
            Ok(_) => {}
            Err(_) => return conn.close(CloseReason::ReadError),
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
        needed = client_turn(ctx, conn, &mut rb, session, now);
        // Give congested subscribers a bounded chance to drain before reading more.
        stall::pause(&ctx.congestion).await;
        // Let writers and ring receivers run before reading more.
        futures_lite::future::yield_now().await;
    }
}

/// One turn of a client: parse and apply what was read, then end the turn. Returns the
/// size of the operation still being received, if known.
fn client_turn(
    ctx: &ShardCtx,
    conn: &Rc<Conn>,
    rb: &mut ReadBuf,
    session: &mut impl Session,
    now: Instant,
) -> usize {
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
    input.needed
}

/// Ends a turn: the router's run is delivered and each peer gets its queued items as one
/// batch. `blob` holds the bytes that forwarded publishes point into.
fn end_turn(ctx: &ShardCtx, router: &mut Router, blob: Option<Bytes>) {
    let (parsed_at, _) = ctx.metrics.latency.turn();
    let end = router.end_turn(blob, parsed_at, |peer, batch| {
        if let Some(links) = &ctx.links {
            if links.send(peer, batch) {
                ctx.metrics.add(Counter::RingFull, 1);
            }
        }
    });
    ctx.metrics.add(Counter::RingBatchesOut, end.batches as u64);
}

/// Applies the batches already waiting in the rings into this shard, each as the ring's
/// own receiver would: its acks sent, and paced like any turn that feeds subscribers.
async fn apply_waiting_batches(ctx: &ShardCtx) {
    for inbound in &ctx.inbound {
        while let Some(batch) = inbound
            .take_waiting(&ctx.global.ring_counters, ctx.id)
            .await
        {
            ring_turn(ctx, inbound.from, &batch).await;
        }
    }
}

/// One batch as a turn of its own: applied, its acks sent, then paced for the
/// subscribers it fed.
async fn ring_turn(ctx: &ShardCtx, from: usize, batch: &RingBatch) {
    let now = Instant::now();
    ctx.metrics.add(Counter::RingBatchesIn, 1);
    ctx.metrics
        .record_ring_transit(now.saturating_duration_since(batch.sent_at));
    ctx.metrics.latency.start_turn(batch.parsed_at, now);
    {
        let mut router = ctx.router.borrow_mut();
        let applied = router.apply_batch(from, batch);
        ctx.metrics
            .add(Counter::QueueMisses, applied.queue_misses as u64);
        end_turn(ctx, &mut router, None);
    }
    stall::pause(&ctx.congestion).await;
}

/// Applies every batch `inbound.from` sends, in order, until its ring closes.
pub async fn ring_receive(ctx: Rc<ShardCtx>, inbound: Rc<Inbound>) {
    while let Some(batch) = inbound.recv().await {
        ring_turn(&ctx, inbound.from, &batch).await;
        glommio::yield_if_needed().await;
    }
}
