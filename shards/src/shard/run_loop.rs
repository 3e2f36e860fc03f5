//! The pipeline, in order. For a client connection: read a chunk → parse every complete
//! operation → route it (local fan-out, forwards queued per peer) → end the turn (one ring
//! batch per peer, sharing the chunk's bytes) → yield so writers flush. For a ring: take
//! a batch → apply its items in order → end the turn. Nothing else calls the stages.

use std::rc::Rc;

use bytes::Bytes;
use glommio::net::TcpStream;

use crate::conn::reader::ReadBuf;
use crate::conn::writer_task::{self, WriterParams};
use crate::conn::{CloseReason, Conn, ConnFlags, MsgView, Sub};
use crate::fanout::stall::pause_for_congestion;
use crate::limits::SID_BYTES_MAX;
use crate::metrics::add;
use crate::protocol::{self, info::encode_info, Op, Parsed, Parser, ProtoError, ServerInfo};
use crate::ring::{Inbound, RingBatch, RingItem, Span};
use crate::route::publish::PubSpans;
use crate::shard::ShardCtx;
use crate::subject::validate::{is_valid_literal_subject, is_valid_queue_name, is_valid_subject};
use crate::writer::Outbound;

/// Serves one accepted client until it closes.
pub async fn serve_conn(ctx: Rc<ShardCtx>, stream: TcpStream) {
    let cid = ctx
        .global
        .next_cid
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(ctx.limits.write_deadline));
    let peer = stream.peer_addr().ok();
    let out = Outbound::new(Rc::clone(&ctx.pool));
    let conn = Rc::new(Conn::new(
        cid,
        peer,
        stream,
        out,
        &ctx.limits,
        Rc::clone(&ctx.congestion),
    ));
    conn.push_raw(&info_line(&ctx, cid, peer));

    let open = ctx
        .global
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    ctx.conns.borrow_mut().insert(cid, Rc::clone(&conn));
    let writer = glommio::spawn_local(writer_task::run(
        Rc::clone(&conn),
        WriterParams {
            write_bytes_max: ctx.limits.write_bytes_max,
            flush_delay: ctx.limits.flush_delay,
            shutdown_grace: ctx.limits.shutdown_grace,
        },
    ));
    if open > ctx.limits.connections_max {
        add(&ctx.metrics.conns_rejected, 1);
        conn.close(CloseReason::MaxConnections);
    } else {
        add(&ctx.metrics.conns_accepted, 1);
        tracing::debug!(shard = ctx.id, cid, ?peer, "client connected");
        read_loop(&ctx, &conn).await;
    }

    // The reader is done: withdraw interest, let the writer finish, forget the client.
    conn.close(CloseReason::ClientClosed);
    let subs: Vec<Rc<Sub>> = conn.subs.borrow_mut().drain().map(|(_, s)| s).collect();
    {
        let mut router = ctx.router.borrow_mut();
        for sub in &subs {
            router.remove_local(sub);
        }
    }
    drop(subs);
    end_turn(&ctx, None);
    writer.await;
    ctx.conns.borrow_mut().remove(&cid);
    ctx.global
        .connections
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    let reason = conn.close_reason().unwrap_or(CloseReason::ClientClosed);
    if reason.is_slow_consumer() {
        add(&ctx.metrics.slow_consumers, 1);
        tracing::warn!(
            shard = ctx.id,
            cid,
            ?peer,
            reason = reason.name(),
            "slow consumer closed"
        );
    } else {
        tracing::debug!(
            shard = ctx.id,
            cid,
            ?peer,
            reason = reason.name(),
            "client closed"
        );
    }
}

fn info_line(ctx: &ShardCtx, cid: u64, peer: Option<std::net::SocketAddr>) -> Vec<u8> {
    let g = &ctx.global;
    let info = ServerInfo {
        server_id: g.server_id.clone(),
        server_name: g.server_name.clone(),
        version: crate::server::NATS_COMPAT_VERSION.to_string(),
        proto: 1,
        go: concat!("shardcast/", env!("CARGO_PKG_VERSION")).to_string(),
        host: g.addr.ip().to_string(),
        port: g.addr.port(),
        headers: true,
        max_payload: ctx.limits.payload_bytes_max,
        client_id: cid,
        client_ip: peer.map(|p| p.ip().to_string()),
    };
    let mut line = Vec::with_capacity(320);
    encode_info(&mut line, &info);
    line
}

async fn read_loop(ctx: &ShardCtx, conn: &Rc<Conn>) {
    let mut rb = ReadBuf::default();
    let mut parser = Parser::new(
        ctx.limits.control_line_bytes_max,
        ctx.limits.payload_bytes_max,
    );
    let mut needed = 0;
    loop {
        // Publishers pause while a ring to a busy peer is over its bound.
        if let Some(links) = &ctx.links {
            if !links.has_room() {
                links.wait_for_room().await;
            }
        }
        if conn.is_closing() {
            return;
        }
        match rb.read_from(&conn.stream, needed).await {
            Ok(0) => return conn.close(CloseReason::ClientClosed),
            Ok(_) => {}
            Err(_) => return conn.close(CloseReason::ReadError),
        }
        if conn.is_closing() {
            return;
        }
        conn.active.set(true);
        // What other shards sent before this input arrived takes effect first (their
        // interest changes above all), as it would on a single-threaded server.
        apply_waiting_batches(ctx).await;
        needed = process_chunk(ctx, conn, &mut rb, &mut parser);
        if conn.is_closing() {
            return;
        }
        // Give congested subscribers a bounded chance to drain before reading more.
        pause_for_congestion(ctx).await;
        // Let writers and ring receivers run before reading more.
        futures_lite::future::yield_now().await;
    }
}

/// Parses and routes every complete operation in the buffer, then ends the turn.
/// Returns the size of the operation still being received, if known.
fn process_chunk(ctx: &ShardCtx, conn: &Rc<Conn>, rb: &mut ReadBuf, parser: &mut Parser) -> usize {
    let data = rb.data();
    let mut pos = 0;
    let mut needed = 0;
    let mut expired = Vec::new();
    while pos < data.len() {
        match parser.parse(&data[pos..]) {
            Ok(Parsed::Op { op, consumed }) => {
                handle_op(ctx, conn, data, op, &mut expired);
                pos += consumed;
                if conn.is_closing() {
                    break;
                }
            }
            Ok(Parsed::NeedMore { needed_bytes }) => {
                needed = needed_bytes;
                break;
            }
            Err(e) => {
                add(&ctx.metrics.protocol_errors, 1);
                tracing::debug!(shard = ctx.id, cid = conn.cid, error = ?e, "protocol error");
                conn.close(CloseReason::Protocol(e));
                break;
            }
        }
    }
    flush_run(ctx);
    let uses_blob = ctx.router.borrow().outgoing_uses_blob;
    let blob = if uses_blob {
        Some(rb.freeze_consumed(pos))
    } else {
        rb.consume(pos);
        None
    };
    end_turn(ctx, blob);
    needed
}

fn handle_op(ctx: &ShardCtx, conn: &Rc<Conn>, base: &[u8], op: Op<'_>, expired: &mut Vec<Rc<Sub>>) {
    let verbose = conn.flags.get().verbose;
    if !matches!(op, Op::Pub(_)) {
        // Publishes batched so far are delivered before anything else takes effect.
        flush_run(ctx);
    }
    match op {
        Op::Connect(json) => match protocol::connect::parse_connect(json) {
            Ok(opts) => {
                conn.flags.set(ConnFlags::from(&opts));
                *conn.name.borrow_mut() = opts.name;
                if opts.verbose {
                    conn.push_raw(protocol::errors::OK);
                }
            }
            Err(e) => conn.close(CloseReason::Protocol(e)),
        },
        Op::Pub(p) => {
            add(&ctx.metrics.msgs_in, 1);
            add(&ctx.metrics.bytes_in, p.body.len() as u64);
            let literal = is_valid_literal_subject(p.subject);
            if !literal && conn.flags.get().pedantic {
                // nats-server: reported, connection stays open, message matches nothing.
                conn.push_err("Invalid Publish Subject");
            }
            if verbose {
                // Acked before delivery, as nats-server does.
                conn.push_raw(protocol::errors::OK);
            }
            if literal {
                let m = MsgView {
                    subject: p.subject,
                    reply: p.reply,
                    header_len: p.has_headers.then_some(p.header_len),
                    body: p.body,
                };
                let spans = PubSpans {
                    subject: Span::of(base, p.subject),
                    reply: p.reply.map(|r| Span::of(base, r)),
                    body: Span::of(base, p.body),
                };
                let routed = ctx.router.borrow_mut().publish(conn, &m, spans, expired);
                add(&ctx.metrics.deliveries, routed.local as u64);
                add(&ctx.metrics.forwards, routed.forwarded as u64);
            }
        }
        Op::Sub(s) => subscribe(ctx, conn, s.subject, s.queue, s.sid),
        Op::Unsub(u) => {
            let sub = conn.subs.borrow().get(u.sid).cloned();
            if let Some(sub) = sub {
                match u.max_msgs {
                    Some(max) if max > sub.delivered.get() => sub.max_msgs.set(max),
                    _ => {
                        conn.subs.borrow_mut().remove(u.sid);
                        ctx.router.borrow_mut().remove_local(&sub);
                        conn.cross_dirty.set(ctx.shards() > 1);
                    }
                }
            }
            if verbose {
                conn.push_raw(protocol::errors::OK);
            }
        }
        Op::Ping => {
            if ctx.shards() > 1 && (conn.cross_dirty.get() || conn.pongs_waiting.get() > 0) {
                // Hold the PONG until every shard has applied what came before the PING.
                conn.cross_dirty.set(false);
                conn.pongs_waiting.set(conn.pongs_waiting.get() + 1);
                ctx.router.borrow_mut().barrier.wait(Rc::clone(conn));
            } else {
                conn.push_raw(protocol::errors::PONG);
            }
        }
        Op::Pong => conn.pings_out.set(0),
        Op::Info | Op::Ok | Op::Err => {}
    }
    debug_assert!(
        expired.is_empty(),
        "the router removes expired subscriptions"
    );
}

/// Delivers the current run of publishes (see `fanout::run`).
fn flush_run(ctx: &ShardCtx) {
    let delivered = ctx.router.borrow_mut().run.flush();
    add(&ctx.metrics.deliveries, delivered as u64);
}

fn subscribe(ctx: &ShardCtx, conn: &Rc<Conn>, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
    let verbose = conn.flags.get().verbose;
    if !is_valid_subject(subject) || queue.is_some_and(|q| !is_valid_queue_name(q)) {
        conn.push_err("Invalid Subject");
        return;
    }
    if sid.len() > SID_BYTES_MAX {
        conn.close(CloseReason::Protocol(ProtoError::BadArguments(
            "SUB sid too long",
        )));
        return;
    }
    let mut subs = conn.subs.borrow_mut();
    if subs.contains_key(sid) {
        // Re-using an active sid is a silent no-op, as in nats-server.
        drop(subs);
        if verbose {
            conn.push_raw(protocol::errors::OK);
        }
        return;
    }
    let max = ctx.limits.subscriptions_max;
    if max != 0 && subs.len() >= max {
        drop(subs);
        conn.push_err("maximum subscriptions exceeded");
        return;
    }
    let sub = Rc::new(Sub {
        conn: Rc::clone(conn),
        sid: sid.into(),
        subject: subject.into(),
        queue: queue.map(Into::into),
        max_msgs: std::cell::Cell::new(0),
        delivered: std::cell::Cell::new(0),
        removed: std::cell::Cell::new(false),
    });
    subs.insert(sid.into(), Rc::clone(&sub));
    drop(subs);
    ctx.router.borrow_mut().add_local(&sub);
    conn.cross_dirty.set(ctx.shards() > 1);
    if verbose {
        conn.push_raw(protocol::errors::OK);
    }
}

/// Ends a turn: adds a barrier token if a PING asked for one, then sends each peer its
/// queued items as one batch. `blob` holds the bytes that forwarded publishes point into.
pub fn end_turn(ctx: &ShardCtx, blob: Option<Bytes>) {
    let mut router = ctx.router.borrow_mut();
    if let Some(epoch) = router.barrier.take_request() {
        router.broadcast(|| RingItem::Barrier(epoch));
    }
    router.outgoing_uses_blob = false;
    let Some(links) = &ctx.links else {
        return;
    };
    if !router.has_outgoing() {
        return;
    }
    let blob = blob.unwrap_or_default();
    let now = std::time::Instant::now();
    for peer in 0..router.outgoing.len() {
        if router.outgoing[peer].is_empty() {
            continue;
        }
        let items = std::mem::take(&mut router.outgoing[peer]);
        add(&ctx.metrics.ring_batches_out, 1);
        links.send(
            peer,
            Box::new(RingBatch {
                blob: blob.clone(),
                items,
                sent_at: now,
            }),
        );
    }
}

/// Applies the batches already waiting in the rings into this shard, each as the ring's
/// own receiver would: its acks sent, and paced like any turn that feeds subscribers.
async fn apply_waiting_batches(ctx: &ShardCtx) {
    for inbound in &ctx.inbound {
        while let Some(batch) = inbound
            .take_waiting(&ctx.global.ring_counters, ctx.id)
            .await
        {
            apply_turn(ctx, inbound.from, *batch).await;
        }
    }
}

/// One batch as a turn of its own: applied, its acks and forwards sent, then paced for
/// the subscribers it fed.
async fn apply_turn(ctx: &ShardCtx, from: usize, batch: RingBatch) {
    apply_batch(ctx, from, batch);
    end_turn(ctx, None);
    pause_for_congestion(ctx).await;
}

/// Applies every batch `inbound.from` sends, in order, until its ring closes.
pub async fn ring_receive(ctx: Rc<ShardCtx>, inbound: Rc<Inbound>) {
    while let Some(batch) = inbound.recv().await {
        apply_turn(&ctx, inbound.from, *batch).await;
        glommio::yield_if_needed().await;
    }
}

fn apply_batch(ctx: &ShardCtx, from: usize, batch: RingBatch) {
    add(&ctx.metrics.ring_batches_in, 1);
    ctx.metrics.record_ring_transit(batch.sent_at.elapsed());
    let mut expired = Vec::new();
    let mut pongs = Vec::new();
    let mut router = ctx.router.borrow_mut();
    for item in batch.items {
        match item {
            RingItem::InterestAdd { subject, queue } => router.add_remote(from, subject, queue),
            RingItem::InterestRemove { subject, queue } => {
                router.remove_remote(from, subject, queue)
            }
            RingItem::Publish(fwd) => {
                let o = router.deliver_forward(&batch.blob, &fwd, &mut expired);
                add(&ctx.metrics.deliveries, o.delivered as u64);
                add(&ctx.metrics.queue_misses, o.queue_misses as u64);
            }
            RingItem::Barrier(epoch) => router.outgoing[from].push(RingItem::BarrierAck(epoch)),
            RingItem::BarrierAck(epoch) => router.barrier.ack(from, epoch, &mut pongs),
        }
    }
    add(&ctx.metrics.deliveries, router.run.flush() as u64);
    drop(router);
    for conn in pongs {
        conn.pongs_waiting
            .set(conn.pongs_waiting.get().saturating_sub(1));
        conn.push_raw(protocol::errors::PONG);
    }
}
