//! Owns what each generator connection does once connected: publish batches, count and time
//! deliveries, answer or send requests, or sit idle. Each role reports one [`ClientStats`].
//!
//! Payloads of 8 bytes or more start with the send time ([`now_ns`], little endian), or 0 for
//! a warm-up message; receivers time each message against their clock at read time.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use glommio::sync::Semaphore;
use glommio::timer::sleep;
use hdrhistogram::Histogram;
use shards::protocol::msg::encode_pub;
use shards::protocol::ServerOp;

use super::client::{Client, ClientError, SubSpec, IDLE_READ_POLL};
use super::irc::{self, IrcTarget};
use super::plan::Role;
use super::shared::{now_ns, ns, Shared, GO, STOP, WARMUP};

/// Publishers write batches of about this many bytes.
const BATCH_BYTES: usize = 64 * 1024;
/// How long a publisher waits for the server to acknowledge its messages (PING → PONG).
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// What a run needs to know to drive one connection.
#[derive(Clone)]
pub struct RoleCtx {
    pub shared: Arc<Shared>,
    pub addr: Rc<str>,
    /// Credentials from `--url`, as CONNECT fields ("" for none).
    pub auth: Rc<str>,
    /// TLS for every connection (`--tls`).
    pub tls: Option<Rc<super::client::TlsTarget>>,
    pub prefix: Rc<str>,
    pub size: usize,
    /// Messages per second for each publisher; 0 = as fast as possible.
    pub rate_per_pub: f64,
    pub warmup: Duration,
    pub timeout: Duration,
    pub hist: Rc<RefCell<Histogram<u64>>>,
    /// Limits connection attempts in flight on this executor (the server's accept backlog is finite).
    pub gate: Rc<Semaphore>,
    /// The `irc` scenario's server and channel.
    pub irc: Rc<IrcTarget>,
    /// Limits IRC registrations in flight on this executor (see [`irc::REGISTRATIONS_IN_FLIGHT`]).
    pub irc_gate: Rc<Semaphore>,
}

/// Connection attempts in flight per generator thread.
pub const CONNECTS_IN_FLIGHT: u64 = 128;

/// What one connection did.
#[derive(Debug, Clone, Default)]
pub struct ClientStats {
    pub kind: Kind,
    pub msgs: u64,
    pub bytes: u64,
    /// When the first and last measured message was sent or received ([`now_ns`]).
    pub first_ns: u64,
    pub last_ns: u64,
    /// Why the server ended this receiver's connection before the run did.
    pub lost_connection: Option<String>,
}

/// The counted kinds of connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    Other,
    Publisher,
    Subscriber,
}

/// Runs `role` to the end of the run.
pub async fn run(role: Role, ctx: RoleCtx) -> Result<ClientStats, ClientError> {
    let subject = |k: usize| format!("{}.{k}", ctx.prefix);
    match role {
        Role::Publisher { index, count } => publisher(&ctx, index, count).await,
        Role::Requester { index, count } => requester(&ctx, index, count).await,
        Role::Subscriber {
            index,
            subject: k,
            queue,
        } => {
            let client = subscribed(&ctx, &subject(k), queue.then_some("bench.q")).await?;
            let mut stats = ClientStats {
                kind: Kind::Subscriber,
                ..ClientStats::default()
            };
            // Losing the connection mid-run (e.g. cut off as a slow consumer) is a result,
            // not a failure: what it missed is counted as lost.
            if let Err(e) = subscriber(&ctx, client, index, &mut stats).await {
                stats.lost_connection = Some(e.to_string());
            }
            Ok(stats)
        }
        Role::Stalled { subject: k } => {
            let _client = subscribed(&ctx, &subject(k), None).await?;
            // Never read: the server's buffers for this connection fill up.
            while ctx.shared.phase() < STOP {
                sleep(Duration::from_millis(20)).await;
            }
            Ok(ClientStats::default())
        }
        Role::Idle { index } => {
            let client = subscribed(&ctx, &format!("{}.idle.{index}", ctx.prefix), None).await?;
            client.set_read_poll(IDLE_READ_POLL)?;
            idle(&ctx, client).await
        }
        Role::IrcMember { index } => irc::member(&ctx, index).await,
        Role::IrcPublisher { count } => irc::publisher(&ctx, count).await,
        Role::Responder => {
            let s = format!("{}.req", ctx.prefix);
            let client = subscribed(&ctx, &s, Some("bench.responders")).await?;
            responder(&ctx, client).await
        }
    }
}

/// Connects with one subscription (sid 1) and counts the connection as ready.
async fn subscribed(
    ctx: &RoleCtx,
    subject: &str,
    queue: Option<&str>,
) -> Result<Client, ClientError> {
    let sub = [SubSpec {
        subject,
        queue,
        sid: 1,
    }];
    let client = Client::connect(&ctx.gate, &ctx.addr, &ctx.auth, ctx.tls.as_deref(), &sub).await?;
    ctx.shared.ready.fetch_add(1, Relaxed);
    Ok(client)
}

/// Waits until the run reaches `phase` (or stops). Returns false if it stopped first.
pub(super) async fn wait_for(shared: &Shared, phase: u8) -> bool {
    loop {
        let now = shared.phase();
        if now >= phase {
            return now < STOP || phase == STOP;
        }
        sleep(Duration::from_millis(1)).await;
    }
}

/// A payload of `size` bytes; the timestamp goes in its first 8 bytes.
fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

fn stamp(payload: &mut [u8], t: u64) {
    if let Some(head) = payload.get_mut(..8) {
        head.copy_from_slice(&t.to_le_bytes());
    }
}

fn stamp_of(payload: &[u8]) -> Option<u64> {
    let head: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(head))
}

/// Encodes a publisher's PUB frames a batch at a time: message j of publisher p goes to
/// subject (p + j) mod K and carries a timestamp.
struct Batcher {
    index: u64,
    subjects: Vec<Vec<u8>>,
    body: Vec<u8>,
    buf: Vec<u8>,
    /// Measured messages sent to each subject.
    per_subject: Vec<u64>,
    /// Messages per full batch (about `BATCH_BYTES`).
    batch_max: u64,
}

impl Batcher {
    fn new(ctx: &RoleCtx, index: usize) -> Batcher {
        let subjects: Vec<Vec<u8>> = (0..ctx.shared.sent_per_subject.len())
            .map(|k| format!("{}.{k}", ctx.prefix).into_bytes())
            .collect();
        let frame_bytes = ctx.size + subjects.last().map_or(0, Vec::len) + 24;
        Batcher {
            index: index as u64,
            per_subject: vec![0; subjects.len()],
            subjects,
            body: payload(ctx.size),
            buf: Vec::with_capacity(BATCH_BYTES + frame_bytes),
            batch_max: (BATCH_BYTES / frame_bytes).max(1) as u64,
        }
    }

    /// Encodes messages `first .. first + n`, message `seq` stamped with `time(seq)`
    /// (0 marks warm-up); measured ones are counted per subject.
    fn encode(&mut self, first: u64, n: u64, time: impl Fn(u64) -> u64, measured: bool) -> &[u8] {
        self.buf.clear();
        let k = self.subjects.len().max(1);
        for seq in first..first + n {
            stamp(&mut self.body, time(seq));
            let s = (self.index + seq) as usize % k;
            if measured {
                if let Some(c) = self.per_subject.get_mut(s) {
                    *c += 1;
                }
            }
            let subject = self.subjects.get(s).map_or(&[][..], Vec::as_slice);
            encode_pub(&mut self.buf, subject, None, &self.body);
        }
        &self.buf
    }
}

async fn publisher(
    ctx: &RoleCtx,
    index: usize,
    count: Option<u64>,
) -> Result<ClientStats, ClientError> {
    let mut client =
        Client::connect(&ctx.gate, &ctx.addr, &ctx.auth, ctx.tls.as_deref(), &[]).await?;
    fits(&client, ctx.size)?;
    let shared = &ctx.shared;
    shared.ready.fetch_add(1, Relaxed);
    let mut batcher = Batcher::new(ctx, index);
    if !ctx.warmup.is_zero() && wait_for(shared, WARMUP).await {
        let end = now_ns().saturating_add(ns(ctx.warmup));
        let mut j = 0;
        while now_ns() < end && shared.phase() < STOP {
            let n = batcher.batch_max;
            client.write(batcher.encode(j, n, |_| 0, false)).await?;
            j += n;
        }
        client.write(b"PING\r\n").await?;
        client.await_pong(ACK_TIMEOUT).await?;
        shared.warmed.fetch_add(1, Relaxed);
    }
    if !wait_for(shared, GO).await {
        return Ok(ClientStats::default());
    }
    let start = now_ns();
    let sent = publish_measured(ctx, &mut client, &mut batcher, count, start).await?;
    client.write(b"PING\r\n").await?;
    client.await_pong(ACK_TIMEOUT).await?;
    let end = now_ns();
    for (total, mine) in shared.sent_per_subject.iter().zip(&batcher.per_subject) {
        total.fetch_add(*mine, Relaxed);
    }
    shared.senders_done.fetch_add(1, Relaxed);
    Ok(ClientStats {
        kind: Kind::Publisher,
        msgs: sent,
        bytes: sent * ctx.size as u64,
        first_ns: start,
        last_ns: end,
        lost_connection: None,
    })
}

/// Publishes until `count` messages, the deadline or the end of the run: full batches as
/// fast as the socket takes them, or at a fixed rate the messages due by now. Returns how
/// many were sent.
async fn publish_measured(
    ctx: &RoleCtx,
    client: &mut Client,
    batcher: &mut Batcher,
    count: Option<u64>,
    start: u64,
) -> Result<u64, ClientError> {
    let shared = &ctx.shared;
    let interval_ns = if ctx.rate_per_pub > 0.0 {
        1e9 / ctx.rate_per_pub
    } else {
        0.0
    };
    let mut sent = 0u64;
    loop {
        let now = now_ns();
        if count.is_some_and(|c| sent >= c) || shared.past_deadline(now) || shared.phase() >= STOP {
            return Ok(sent);
        }
        let n = match pace(start, now, sent, interval_ns, batcher.batch_max, count) {
            Pace::Send(n) => n,
            Pace::Wait(d) => {
                sleep(d).await;
                continue;
            }
        };
        // At a fixed rate each message carries its intended send time (coordinated-
        // omission correction); otherwise the time its batch was built.
        let time = |seq: u64| {
            let t = if interval_ns > 0.0 {
                start + (seq as f64 * interval_ns) as u64
            } else {
                now
            };
            t.max(1)
        };
        client.write(batcher.encode(sent, n, time, true)).await?;
        sent += n;
        shared.published.fetch_add(n, Relaxed);
    }
}

async fn subscriber(
    ctx: &RoleCtx,
    mut client: Client,
    index: usize,
    stats: &mut ClientStats,
) -> Result<(), ClientError> {
    let shared = &ctx.shared;
    loop {
        match client.fill().await {
            Ok(_) => {}
            Err(ClientError::Closed) if shared.phase() >= STOP => break,
            Err(e) => return Err(e),
        }
        let now = now_ns();
        // Borrowed only between awaits: other connections on this executor record too.
        let (counted, ping) = count_chunk(&mut client, &mut ctx.hist.borrow_mut(), now, stats)?;
        if counted > 0 {
            if stats.msgs == 0 {
                stats.first_ns = now;
            }
            stats.last_ns = now;
            stats.msgs += counted;
            if let Some(r) = shared.received.get(index) {
                r.store(stats.msgs, Relaxed);
            }
        }
        if ping {
            client.write(b"PONG\r\n").await?;
        }
        if shared.phase() >= STOP {
            break;
        }
    }
    Ok(())
}

/// Fails when the payload is larger than the server accepts (it would close the connection).
fn fits(client: &Client, size: usize) -> Result<(), ClientError> {
    match client.max_payload {
        Some(max) if size as u64 > max => Err(ClientError::PayloadTooLarge { size, max }),
        _ => Ok(()),
    }
}

/// Counts and times the deliveries in the buffer. Returns (measured deliveries, PING seen).
fn count_chunk(
    client: &mut Client,
    hist: &mut Histogram<u64>,
    now: u64,
    stats: &mut ClientStats,
) -> Result<(u64, bool), ClientError> {
    let mut ping = false;
    let mut counted = 0;
    while let Some(op) = client.next_op()? {
        match op {
            ServerOp::Msg(d) => {
                let stamp = stamp_of(d.payload);
                if stamp == Some(0) {
                    continue; // warm-up
                }
                counted += 1;
                stats.bytes += d.payload.len() as u64;
                if let Some(t) = stamp {
                    hist.saturating_record(now.saturating_sub(t).max(1));
                }
            }
            ServerOp::Ping => ping = true,
            ServerOp::Err(text) => {
                return Err(ClientError::Server(String::from_utf8_lossy(text).into()))
            }
            _ => {}
        }
    }
    Ok((counted, ping))
}

async fn idle(ctx: &RoleCtx, mut client: Client) -> Result<ClientStats, ClientError> {
    while ctx.shared.phase() < STOP {
        client.fill().await?;
        let mut ping = false;
        while let Some(op) = client.next_op()? {
            if op == ServerOp::Ping {
                ping = true;
            }
        }
        if ping {
            client.write(b"PONG\r\n").await?;
        }
    }
    Ok(ClientStats::default())
}

async fn responder(ctx: &RoleCtx, mut client: Client) -> Result<ClientStats, ClientError> {
    let mut out = Vec::with_capacity(BATCH_BYTES);
    loop {
        match client.fill().await {
            Ok(_) => {}
            Err(ClientError::Closed) if ctx.shared.phase() >= STOP => break,
            Err(e) => return Err(e),
        }
        while let Some(op) = client.next_op()? {
            match op {
                ServerOp::Msg(d) => {
                    if let Some(reply) = d.reply {
                        encode_pub(&mut out, reply, None, d.payload);
                    }
                }
                ServerOp::Ping => out.extend_from_slice(b"PONG\r\n"),
                ServerOp::Err(text) => {
                    return Err(ClientError::Server(String::from_utf8_lossy(text).into()))
                }
                _ => {}
            }
        }
        if !out.is_empty() {
            client.write(&out).await?;
            out.clear();
        }
        if ctx.shared.phase() >= STOP {
            break;
        }
    }
    Ok(ClientStats::default())
}

async fn requester(
    ctx: &RoleCtx,
    index: usize,
    count: Option<u64>,
) -> Result<ClientStats, ClientError> {
    let inbox = format!("_INBOX.bench.{}.{index}", std::process::id());
    let mut client = subscribed(ctx, &inbox, None).await?;
    fits(&client, ctx.size)?;
    let shared = &ctx.shared;
    if !wait_for(shared, GO).await {
        return Ok(ClientStats::default());
    }
    let subject = format!("{}.req", ctx.prefix);
    let mut body = payload(ctx.size);
    let mut frame = Vec::with_capacity(ctx.size + 64);
    let mut stats = ClientStats {
        kind: Kind::Subscriber,
        first_ns: now_ns(),
        ..ClientStats::default()
    };
    // A request sent and not yet answered (lost if the run ends before its reply).
    let mut outstanding = false;
    'requests: while !count.is_some_and(|c| stats.msgs >= c)
        && !shared.past_deadline(now_ns())
        && shared.phase() < STOP
    {
        let sent_at = now_ns();
        stamp(&mut body, sent_at);
        frame.clear();
        encode_pub(
            &mut frame,
            subject.as_bytes(),
            Some(inbox.as_bytes()),
            &body,
        );
        client.write(&frame).await?;
        outstanding = true;
        let give_up = sent_at.saturating_add(ns(ctx.timeout));
        loop {
            let mut replied = None;
            let mut ping = false;
            while let Some(op) = client.next_op()? {
                match op {
                    ServerOp::Msg(d) => replied = stamp_of(d.payload).filter(|&t| t == sent_at),
                    ServerOp::Ping => ping = true,
                    ServerOp::Err(text) => {
                        return Err(ClientError::Server(String::from_utf8_lossy(text).into()))
                    }
                    _ => {}
                }
            }
            if ping {
                client.write(b"PONG\r\n").await?;
            }
            if replied.is_some() {
                let now = now_ns();
                ctx.hist
                    .borrow_mut()
                    .saturating_record(now.saturating_sub(sent_at).max(1));
                outstanding = false;
                stats.msgs += 1;
                stats.bytes += ctx.size as u64;
                stats.last_ns = now;
                shared.published.fetch_add(1, Relaxed);
                if let Some(r) = shared.received.get(index) {
                    r.store(stats.msgs, Relaxed);
                }
                break;
            }
            if now_ns() > give_up || shared.phase() >= STOP {
                break 'requests; // counted as lost by the coordinator
            }
            client.fill().await?;
        }
    }
    let sent = stats.msgs + u64::from(outstanding);
    if let Some(t) = shared.sent_per_subject.first() {
        t.fetch_add(sent, Relaxed);
    }
    shared.senders_done.fetch_add(1, Relaxed);
    Ok(stats)
}

/// What a publisher does next: send this many messages, or wait this long.
pub(crate) enum Pace {
    Send(u64),
    Wait(Duration),
}

/// The next step of a publisher that has sent `sent` messages since `start`: up to
/// `batch_max` at once, no more than are due at one per `interval_ns` (0: no pacing),
/// nor more than `count` leaves.
pub(crate) fn pace(
    start: u64,
    now: u64,
    sent: u64,
    interval_ns: f64,
    batch_max: u64,
    count: Option<u64>,
) -> Pace {
    let mut n = batch_max;
    if interval_ns > 0.0 {
        let due = ((now - start) as f64 / interval_ns) as u64 + 1;
        if due <= sent {
            let next = start + (sent as f64 * interval_ns) as u64;
            return Pace::Wait(Duration::from_nanos(next.saturating_sub(now)));
        }
        n = n.min(due - sent);
    }
    if let Some(c) = count {
        n = n.min(c - sent);
    }
    Pace::Send(n)
}
