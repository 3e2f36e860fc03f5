//! One shard's life: join the ring mesh, listen on the shared port, spawn the ring
//! receivers, forwarders and keepalive, report ready, accept until told to stop, then
//! close every connection (flushing what is buffered, bounded) and return its metrics.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::{Full, MeshBuilder};

use std::future::Future;

use crate::conn::tls::{self, HandshakeError, TlsSetup};
use crate::conn::{CloseReason, Tcp, Transport};
use crate::front::irc::IrcSession;
use crate::front::logs::{LogFormat, LogSession};
use crate::front::nats::NatsSession;
use crate::limits::{Limits, ACCEPT_RETRY_DELAY, SHUTDOWN_SLACK};
use crate::metrics::Counter;
use crate::metrics::{MetricsSnapshot, ShardSnapshot, SnapshotRequest};
use crate::ring::{Inbound, RingLinks, RingMsg};
use crate::shard::listener::Listener;
use crate::shard::run_loop::Door;
use crate::shard::{keepalive, lame_duck, run_loop, stats, Global, ShardCtx};

/// What a shard tells the main thread once it has started (or failed to).
#[derive(Debug)]
pub enum ShardReport {
    Ready(usize),
    Failed(String),
}

/// What the main thread tells a running shard.
#[derive(Debug)]
pub enum Control {
    /// Stop accepting, flush and close every client, return the metrics.
    Stop,
    /// Put these limits in force (already validated against the running ones).
    Reload(Box<Limits>),
    /// Put these log routing rules in force (already validated).
    LogRules(Box<crate::logs::LogsConfig>),
    /// Send a snapshot of the shard back on the channel given.
    Snapshot(SnapshotRequest, flume::Sender<ShardSnapshot>),
    /// Lame duck mode (see [`crate::server::Controller::lame_duck`]).
    LameDuck { duration: Duration, grace: Duration },
}

/// Why a shard stops accepting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Stop,
    LameDuck { duration: Duration, grace: Duration },
}

/// Everything a shard needs to start; cloned into every executor.
#[derive(Clone)]
pub struct ShardStart {
    pub global: Arc<Global>,
    pub mesh: Option<MeshBuilder<RingMsg, Full>>,
    pub ready: mpsc::Sender<ShardReport>,
    /// One control channel per shard, indexed by shard id.
    pub controls: Arc<Vec<flume::Receiver<Control>>>,
}

/// The root future of one shard executor.
pub async fn run(start: ShardStart) -> Option<MetricsSnapshot> {
    let ShardStart {
        global,
        mesh,
        ready,
        controls,
    } = start;
    let (id, links, receivers) = match mesh {
        Some(mesh) => match mesh.join().await {
            Ok((senders, receivers)) => {
                let id = senders.peer_id();
                let links = RingLinks::new(
                    senders,
                    global.ring_counters.clone(),
                    global.limits.ring_overflow_batches_max,
                    global.limits.connections_max,
                );
                (id, Some(links), Some(receivers))
            }
            Err(e) => {
                let _ = ready.send(ShardReport::Failed(format!(
                    "could not join the shard ring mesh: {e}"
                )));
                return None;
            }
        },
        None => (0, None, None),
    };
    let listener = match Listener::bind(global.addr) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(ShardReport::Failed(format!(
                "shard {id} cannot listen on {}: {e}",
                global.addr
            )));
            return None;
        }
    };
    let listen = |addr: Option<SocketAddr>, what: &str| match addr.map(Listener::bind) {
        None => Ok(None),
        Some(Ok(l)) => Ok(Some(l)),
        Some(Err(e)) => {
            let addr = addr.map(|a| a.to_string()).unwrap_or_default();
            let _ = ready.send(ShardReport::Failed(format!(
                "shard {id} cannot listen for {what} on {addr}: {e}"
            )));
            Err(())
        }
    };
    let Ok(irc_listener) = listen(global.irc.as_ref().map(|(a, _)| *a), "IRC") else {
        return None;
    };
    let Ok(log_listener) = listen(global.log_tcp, "logs") else {
        return None;
    };
    let Ok(syslog_listener) = listen(global.syslog_tcp, "syslog") else {
        return None;
    };
    let syslog_udp = match &global.syslog_udp {
        Some(addr) => match glommio::net::UdpSocket::bind(*addr) {
            Ok(s) => Some(s),
            Err(e) => {
                let _ = ready.send(ShardReport::Failed(format!(
                    "shard {id} cannot take syslog datagrams on {addr}: {e}"
                )));
                return None;
            }
        },
        None => None,
    };
    let inbound: Vec<Rc<Inbound>> = match receivers {
        Some(mut receivers) => receivers
            .streams()
            .into_iter()
            .map(|(from, rx)| Rc::new(Inbound::new(from, rx)))
            .collect(),
        None => Vec::new(),
    };
    let ctx = Rc::new(ShardCtx::new(id, global, links, inbound));
    spawn_background(&ctx);
    if let (Some(socket), Some(logs)) = (syslog_udp, &ctx.logs) {
        glommio::spawn_local(crate::logs::udp::serve(
            Rc::clone(&ctx),
            socket,
            Rc::clone(logs),
        ))
        .detach();
    }
    let _ = ready.send(ShardReport::Ready(id));

    let accept = accept_loop(&ctx, &listener, |ctx, tcp| {
        let ctx = Rc::clone(ctx);
        async move {
            let session = nats_session(&ctx);
            match ctx.global.tls.clone() {
                Some(setup) => serve_nats_tls(ctx, tcp, session, setup).await,
                None => {
                    let cid = ctx.next_cid();
                    run_loop::serve_conn(ctx, cid, tcp, session, Door::Unchecked).await
                }
            }
        }
    });
    let accept_irc = async {
        match (&irc_listener, &ctx.irc) {
            (Some(l), Some(shard)) => {
                accept_loop(&ctx, l, |ctx, tcp| {
                    let session = IrcSession::new(Rc::clone(shard), ctx.global.authenticator());
                    run_loop::serve_conn(
                        Rc::clone(ctx),
                        ctx.next_cid(),
                        tcp,
                        session,
                        Door::Unchecked,
                    )
                })
                .await
            }
            _ => futures_lite::future::pending().await,
        }
    };
    let Some(control) = controls.get(id) else {
        unreachable!("the server makes one control channel per shard");
    };
    let accept_logs = accept_log_port(&ctx, log_listener.as_ref(), LogFormat::Lines);
    let accept_syslog = accept_log_port(&ctx, syslog_listener.as_ref(), LogFormat::Syslog);
    let accepting = futures_lite::future::or(accept, accept_irc);
    let accepting = futures_lite::future::or(accepting, accept_logs);
    let accepting = futures_lite::future::or(accepting, accept_syslog);
    let accepting = async {
        accepting.await;
        Exit::Stop
    };
    let exit = futures_lite::future::or(accepting, obey(&ctx, control)).await;
    listener.stop();
    drop(listener);
    if let Some(l) = log_listener {
        l.stop();
    }
    if let Some(l) = syslog_listener {
        l.stop();
    }
    if let Some(l) = irc_listener {
        l.stop();
    }
    if let Exit::LameDuck { duration, grace } = exit {
        // Still answering the main thread (snapshots; a stop ends it at once).
        let ldm = lame_duck::run(&ctx, duration, grace);
        let until_stopped = async {
            // A second lame duck request changes nothing.
            while obey(&ctx, control).await != Exit::Stop {}
        };
        futures_lite::future::or(ldm, until_stopped).await;
    }
    shutdown(&ctx).await;
    Some(MetricsSnapshot::of(&ctx.metrics))
}

fn spawn_background(ctx: &Rc<ShardCtx>) {
    for inbound in &ctx.inbound {
        glommio::spawn_local(run_loop::ring_receive(Rc::clone(ctx), Rc::clone(inbound))).detach();
    }
    if ctx.links.is_some() {
        let peers: Vec<usize> = ctx.router.borrow().peers().collect();
        for peer in peers {
            let ctx = Rc::clone(ctx);
            glommio::spawn_local(async move {
                if let Some(links) = &ctx.links {
                    links.forward(peer).await;
                }
            })
            .detach();
        }
    }
    if let Some(irc) = &ctx.irc {
        glommio::spawn_local(crate::front::irc::service::run(
            Rc::clone(ctx),
            Rc::clone(irc),
        ))
        .detach();
        glommio::spawn_local(crate::front::irc::timeouts::run(
            Rc::clone(ctx),
            Rc::clone(irc),
        ))
        .detach();
        if ctx.id == 0 && ctx.global.leaf.is_some() {
            let node = ctx.global.server_id.clone();
            glommio::spawn_local(crate::front::irc::nodes::run(Rc::clone(ctx), node)).detach();
        }
    }
    let history = &ctx.global.history;
    if history.is_on() && (ctx.irc.is_some() || !history.subjects.is_empty()) {
        glommio::spawn_local(crate::history::service::run(
            Rc::clone(ctx),
            history.clone(),
        ))
        .detach();
    }
    if let Some(logs) = &ctx.logs {
        glommio::spawn_local(crate::logs::service::run(Rc::clone(ctx), Rc::clone(logs))).detach();
    }
    if let (0, Some(cfg)) = (ctx.id, &ctx.global.leaf) {
        let state = Rc::new(crate::leaf::LinkState::default());
        *ctx.leaf.borrow_mut() = Some(Rc::clone(&state));
        glommio::spawn_local(crate::leaf::run(Rc::clone(ctx), cfg.clone(), state)).detach();
    }
    glommio::spawn_local(keepalive::run(Rc::clone(ctx))).detach();
    glommio::spawn_local(stats::run(Rc::clone(ctx))).detach();
    glommio::spawn_local(stats::sample_load(Rc::clone(ctx))).detach();
}

/// Applies what the main thread sends until it says stop (or is gone), or lame duck.
async fn obey(ctx: &ShardCtx, control: &flume::Receiver<Control>) -> Exit {
    loop {
        match control.recv_async().await {
            Ok(Control::Reload(limits)) => {
                ctx.reload(*limits);
                tracing::debug!(shard = ctx.id, "limits reloaded");
            }
            Ok(Control::LogRules(cfg)) => {
                if let Some(logs) = &ctx.logs {
                    match crate::logs::Rules::compile(&cfg.routes, cfg.all_subject.as_deref()) {
                        Ok(rules) => {
                            *logs.rules.borrow_mut() = Rc::new(rules);
                            tracing::debug!(shard = ctx.id, "log rules reloaded");
                        }
                        Err(e) => tracing::error!(shard = ctx.id, error = %e, "log rules kept"),
                    }
                }
            }
            Ok(Control::Snapshot(request, reply)) => {
                // The asker may have given up waiting; nothing to do then.
                let _ = reply.send(ctx.snapshot(request));
            }
            Ok(Control::LameDuck { duration, grace }) => {
                return Exit::LameDuck { duration, grace };
            }
            Ok(Control::Stop) | Err(_) => return Exit::Stop,
        }
    }
}

/// A NATS client's session, with the credentials in force now.
fn nats_session(ctx: &ShardCtx) -> NatsSession {
    let control_line_max = ctx.limits().control_line_bytes_max;
    NatsSession::new(
        ctx.nats_info(),
        control_line_max,
        ctx.global.authenticator(),
    )
}

/// A NATS client on a TLS server: INFO in plain text (unless `handshake_first`), the
/// door (bans, per-IP limit, accept rate: checked before the handshake's work), a client
/// that does not start TLS refused with `-ERR 'Secure Connection - TLS Required'`, the
/// handshake within `tls.timeout`, then the client served over TLS.
async fn serve_nats_tls(ctx: Rc<ShardCtx>, tcp: Tcp, session: NatsSession, setup: TlsSetup) {
    let cid = ctx.next_cid();
    let peer = tcp.peer();
    let ip = peer.map(|p| p.ip());
    let first = setup.files.handshake_first;
    if !first {
        let info = session.info_line(cid, peer);
        if tls::write_all(&tcp, &info).await.is_err() {
            return;
        }
    }
    let door = {
        let limits = ctx.limits();
        ctx.global
            .admission
            .admit(ip, &limits, &ctx.global.failures)
    };
    if let Err(refused) = door {
        let reason = refused.close_reason();
        ctx.metrics.add(Counter::ConnsRejected, 1);
        ctx.metrics.counters.closed(reason);
        let shown = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
        tracing::warn!(shard = ctx.id, cid, peer = %shown, reason = reason.name(), "connection refused");
        if let (false, Some(text)) = (first, crate::wire::nats::close_text(reason)) {
            let _ = tls::write_all(&tcp, format!("-ERR '{text}'\r\n").as_bytes()).await;
        }
        tcp.shutdown();
        return;
    }
    let started = match tls::first_record(&tcp, setup.files.timeout).await {
        Ok(record) => tls::handshake(&setup, tcp, record).await,
        Err(e) => {
            if matches!(e, HandshakeError::Plaintext) && !first {
                let _ = tls::write_all(&tcp, b"-ERR 'Secure Connection - TLS Required'\r\n").await;
            }
            tcp.shutdown();
            Err(e)
        }
    };
    match started {
        Ok(transport) => {
            let names = if setup.files.verify_and_map {
                transport.peer_names().to_vec()
            } else {
                Vec::new()
            };
            let session = if first { session } else { session.greeted() };
            let session = session.with_cert_names(names);
            run_loop::serve_conn(ctx, cid, transport, session, Door::Admitted).await;
        }
        Err(e) => {
            if let Some(ip) = ip {
                ctx.global.admission.release(ip);
            }
            ctx.metrics.add(Counter::TlsFailures, 1);
            let peer = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
            tracing::warn!(shard = ctx.id, cid, peer = %peer, error = %e, "TLS connection refused");
        }
    }
}

/// Accepts on a log port, if it is open and logs are on; otherwise never returns.
async fn accept_log_port(ctx: &Rc<ShardCtx>, listener: Option<&Listener>, format: LogFormat) {
    match (listener, &ctx.logs) {
        (Some(l), Some(shard)) => {
            accept_loop(ctx, l, |ctx, tcp| {
                let session = LogSession::new(Rc::clone(shard), format);
                run_loop::serve_conn(
                    Rc::clone(ctx),
                    ctx.next_cid(),
                    tcp,
                    session,
                    Door::Unchecked,
                )
            })
            .await
        }
        _ => futures_lite::future::pending().await,
    }
}

/// Accepts connections on `listener`, each served by the task `serve` makes.
async fn accept_loop<F: Future<Output = ()> + 'static>(
    ctx: &Rc<ShardCtx>,
    listener: &Listener,
    serve: impl Fn(&Rc<ShardCtx>, Tcp) -> F,
) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let transport = Tcp::new(stream, ctx.limits().write_deadline);
                let served = serve(ctx, transport);
                match ctx.tasks.spawn(served) {
                    Some(task) => {
                        task.detach();
                    }
                    None => return,
                }
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(shard = ctx.id, error = %e, "accept failed");
                glommio::timer::sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
    }
}

async fn shutdown(ctx: &Rc<ShardCtx>) {
    ctx.stopping.set(true);
    if let Some(links) = &ctx.links {
        links.stop();
    }
    let conns: Vec<_> = ctx.conns.borrow().values().cloned().collect();
    tracing::debug!(shard = ctx.id, connections = conns.len(), "shard stopping");
    for conn in conns {
        conn.close(CloseReason::ServerShutdown);
    }
    ctx.congestion.clear();
    let bound = ctx.limits().shutdown_grace + SHUTDOWN_SLACK;
    ctx.tasks.close();
    let closed = glommio::timer::timeout(bound, async {
        ctx.tasks.all_done().await;
        Ok(())
    })
    .await;
    if closed.is_err() {
        tracing::warn!(
            shard = ctx.id,
            "connections still open after the shutdown grace period"
        );
    }
    if let Some(links) = &ctx.links {
        links.close();
    }
}
