//! Owns the `irc` scenario's connections: IRC members that register, join the channel and
//! count and time the PRIVMSG lines said there, and the one publisher that says them, over
//! NATS (a PUB to the channel's subject) or IRC (PRIVMSG, optionally as an operator with
//! user mode +F, which lifts ngircd's flood throttling).
//!
//! Payloads are ASCII, so every IRC server relays them unchanged: `<seq> <send time ns> `
//! ([`now_ns`], decimal) padded with letters to `--size`. A member counts a line when its
//! sequence number is past the last one it counted; a gap, or lines missing at the end,
//! show up as lost (expected minus received).

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer::sleep;
use hdrhistogram::Histogram;
use shards::protocol::msg::encode_pub;

use super::args::{BenchArgs, IrcPublisher};
use super::client::{Client, ClientError, READ_POLL};
use super::irc_line::Line;
use super::roles::{pace, wait_for, ClientStats, Kind, Pace, RoleCtx};
use super::shared::{now_ns, ns, Shared, GO, STOP};

/// Registrations in flight over all generator threads. ngircd listens with a backlog of
/// 10 and accepts one connection per turn of its loop; with more connections waiting, the
/// kernel drops SYNs and clients retry after 1, 3, 7, 15… s.
pub const REGISTRATIONS_IN_FLIGHT: usize = 8;
/// Each member's read buffer (a thousand members share the generator's memory).
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// A line longer than this (IRC allows 512 with CRLF; some servers send a little more) is
/// not IRC.
const LINE_BYTES_MAX: usize = 8 * 1024;
/// The publisher writes batches of about this many bytes.
const BATCH_BYTES: usize = 64 * 1024;
/// How long registration (NICK/USER to 001), OPER and JOIN (to 366) may each take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the publisher waits for the server to answer its last PING (all lines relayed).
const ACK_TIMEOUT: Duration = Duration::from_secs(120);
/// A write that makes no progress for this long fails the run.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the `irc` scenario connects and how its publisher speaks, from the command line.
#[derive(Debug, Clone)]
pub struct IrcTarget {
    /// The IRC server, HOST:PORT.
    pub addr: String,
    /// `#PREFIX`, the channel everyone is in.
    pub channel: String,
    /// PREFIX, the channel's subject for a NATS publisher.
    pub subject: String,
    pub publisher: IrcPublisher,
    /// The publisher's OPER name and password.
    pub oper: Option<(String, String)>,
    /// Nicks start with `b` and this tag (two base-36 digits of the process id), so two
    /// runs in a row against one server do not collide while the first one's nicks linger.
    pub tag: String,
}

impl IrcTarget {
    /// The target `args` names (no address when there is no `--irc-url`).
    pub fn new(args: &BenchArgs) -> IrcTarget {
        let addr = args.irc_url.as_deref().unwrap_or_default();
        let addr = addr
            .strip_prefix("irc://")
            .unwrap_or(addr)
            .trim_end_matches('/');
        let addr = if addr.contains(':') {
            addr.to_string()
        } else {
            format!("{addr}:6667")
        };
        let subject = args.subject.to_ascii_lowercase();
        let pid = std::process::id() % (36 * 36);
        let digit = |d: u32| char::from_digit(d, 36).unwrap_or('0');
        IrcTarget {
            addr,
            channel: format!("#{subject}"),
            subject,
            publisher: args.irc_publisher,
            oper: args.irc_oper.as_deref().and_then(|o| {
                o.split_once(':')
                    .map(|(n, p)| (n.to_string(), p.to_string()))
            }),
            tag: format!("{}{}", digit(pid / 36), digit(pid % 36)),
        }
    }
}

/// One IRC connection: line reading, PING answering, and waiting for a reply.
struct IrcConn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    nick: String,
    /// The run's phase: a connection still registering stops waiting when the run stops.
    shared: Arc<Shared>,
}

impl IrcConn {
    async fn connect(
        addr: &str,
        nick: String,
        shared: &Arc<Shared>,
    ) -> Result<IrcConn, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::Connect {
                addr: addr.to_string(),
                source: io::Error::other(e.to_string()),
            })?;
        let other = |e: glommio::GlommioError<()>| io::Error::other(e.to_string());
        stream.set_nodelay(true).map_err(other)?;
        stream
            .set_write_timeout(Some(WRITE_TIMEOUT))
            .map_err(other)?;
        stream.set_read_timeout(Some(READ_POLL)).map_err(other)?;
        Ok(IrcConn {
            stream,
            buf: vec![0; READ_BUFFER_BYTES],
            start: 0,
            end: 0,
            nick,
            shared: Arc::clone(shared),
        })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Reads more bytes; Ok(false) when nothing arrived within [`READ_POLL`].
    async fn fill(&mut self) -> Result<bool, ClientError> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(irc_error(format!(
                "the IRC server sent a line longer than {LINE_BYTES_MAX} bytes"
            )));
        }
        let dst = self.buf.get_mut(self.end..).unwrap_or_default();
        match self.stream.read(dst).await {
            Ok(0) => Err(ClientError::Closed),
            Ok(n) => {
                self.end += n;
                Ok(true)
            }
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock =>
            {
                Ok(false)
            }
            Err(e) => Err(ClientError::Io(e)),
        }
    }

    /// The next complete line (without CR LF), if any.
    fn next_line(&mut self) -> Result<Option<&[u8]>, ClientError> {
        let data = self.buf.get(self.start..self.end).unwrap_or_default();
        match memchr::memchr(b'\n', data) {
            Some(i) => {
                let line = &self.buf[self.start..self.start + i];
                self.start += i + 1;
                Ok(Some(line.strip_suffix(b"\r").unwrap_or(line)))
            }
            None if data.len() > LINE_BYTES_MAX => Err(irc_error(format!(
                "the IRC server sent a line longer than {LINE_BYTES_MAX} bytes"
            ))),
            None => Ok(None),
        }
    }

    /// Reads lines until `done` says one is the reply awaited, answering PINGs on the way.
    /// An ERROR line, an error numeric, the connection closing or `within` passing fails,
    /// with `what` in the message.
    async fn await_reply(
        &mut self,
        what: &str,
        within: Duration,
        done: impl Fn(&Line) -> bool,
    ) -> Result<(), ClientError> {
        let deadline = now_ns().saturating_add(ns(within));
        let mut pongs = Vec::new();
        loop {
            let mut found = false;
            while let Some(raw) = self.next_line()? {
                let line = Line::parse(raw);
                if line.command == b"PING" {
                    append_pong(&mut pongs, &line);
                } else if done(&line) {
                    found = true;
                    break;
                } else if line.command == b"ERROR" || line.is_error_numeric() {
                    return Err(irc_error(format!(
                        "{what}: the IRC server answered {}",
                        line.text()
                    )));
                }
            }
            if !pongs.is_empty() {
                self.write(&pongs).await?;
                pongs.clear();
            }
            if found {
                return Ok(());
            }
            if self.shared.phase() >= STOP {
                return Err(irc_error(format!("{what}: the run stopped")));
            }
            if now_ns() > deadline {
                return Err(irc_error(format!("{what}: no reply within {within:?}")));
            }
            match self.fill().await {
                Err(ClientError::Closed) => {
                    return Err(irc_error(format!(
                        "{what}: the IRC server closed the connection"
                    )))
                }
                other => other?,
            };
        }
    }

    /// NICK and USER, then waits for the welcome (001).
    async fn register(&mut self) -> Result<(), ClientError> {
        let nick = self.nick.clone();
        self.write(format!("NICK {nick}\r\nUSER {nick} 0 * :shardcast bench\r\n").as_bytes())
            .await?;
        let what = format!("registering as {nick}");
        self.await_reply(&what, REPLY_TIMEOUT, |l| l.command == b"001")
            .await
    }

    /// JOIN, then waits for the end of the names list (366).
    async fn join(&mut self, channel: &str) -> Result<(), ClientError> {
        self.write(format!("JOIN {channel}\r\n").as_bytes()).await?;
        let what = format!("{} joining {channel}", self.nick);
        self.await_reply(&what, REPLY_TIMEOUT, |l| l.command == b"366")
            .await
    }
}

fn irc_error(text: String) -> ClientError {
    ClientError::Irc(text)
}

fn append_pong(out: &mut Vec<u8>, ping: &Line) {
    out.extend_from_slice(b"PONG :");
    out.extend_from_slice(ping.target());
    out.extend_from_slice(b"\r\n");
}

/// A member: registers, joins, then counts and times the channel's lines until the run stops.
pub async fn member(ctx: &RoleCtx, index: usize) -> Result<ClientStats, ClientError> {
    let target = &ctx.irc;
    let mut conn = {
        // Held until the server has answered: only then has it accepted the connection.
        let _permit = ctx
            .irc_gate
            .acquire_permit(1)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        let nick = format!("b{}{index}", target.tag);
        let mut conn = IrcConn::connect(&target.addr, nick, &ctx.shared).await?;
        conn.register().await?;
        conn
    };
    conn.join(&target.channel).await?;
    ctx.shared.ready.fetch_add(1, Relaxed);
    let mut stats = ClientStats {
        kind: Kind::Subscriber,
        ..ClientStats::default()
    };
    // Losing the connection mid-run is a result: what it missed is counted as lost.
    if let Err(e) = count_lines(ctx, &mut conn, index, &mut stats).await {
        stats.lost_connection = Some(e.to_string());
    }
    Ok(stats)
}

/// The member's read loop.
async fn count_lines(
    ctx: &RoleCtx,
    conn: &mut IrcConn,
    index: usize,
    stats: &mut ClientStats,
) -> Result<(), ClientError> {
    let shared = &ctx.shared;
    let channel = ctx.irc.channel.as_bytes();
    // The next sequence number this member has not counted yet.
    let mut next_seq = 0u64;
    let mut pongs = Vec::new();
    loop {
        match conn.fill().await {
            Ok(_) => {}
            Err(ClientError::Closed) if shared.phase() >= STOP => break,
            Err(e) => return Err(e),
        }
        let now = now_ns();
        let mut counted = 0;
        {
            // Borrowed only between awaits: other members on this executor record too.
            let mut hist = ctx.hist.borrow_mut();
            while let Some(raw) = conn.next_line()? {
                let line = Line::parse(raw);
                match line.command {
                    b"PRIVMSG" if line.target().eq_ignore_ascii_case(channel) => {
                        if let Some((seq, sent)) = parse_payload(line.trailing) {
                            if seq >= next_seq {
                                next_seq = seq + 1;
                                counted += 1;
                                stats.bytes += line.trailing.len() as u64;
                                record(&mut hist, now, sent);
                            }
                        }
                    }
                    b"PING" => append_pong(&mut pongs, &line),
                    b"ERROR" => {
                        return Err(irc_error(format!("the IRC server sent {}", line.text())))
                    }
                    _ => {}
                }
            }
        }
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
        if !pongs.is_empty() {
            conn.write(&pongs).await?;
            pongs.clear();
        }
        if shared.phase() >= STOP {
            break;
        }
    }
    Ok(())
}

fn record(hist: &mut Histogram<u64>, now: u64, sent: u64) {
    hist.saturating_record(now.saturating_sub(sent).max(1));
}

/// `<seq> <send time ns> …` → (seq, send time).
fn parse_payload(text: &[u8]) -> Option<(u64, u64)> {
    let (seq, rest) = leading_number(text)?;
    let (sent, rest) = leading_number(rest.strip_prefix(b" ")?)?;
    matches!(rest.first(), None | Some(b' ')).then_some((seq, sent))
}

/// The decimal number `text` starts with (at most 19 digits, so it fits), and the rest.
fn leading_number(text: &[u8]) -> Option<(u64, &[u8])> {
    let digits = text
        .iter()
        .take(20)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let value = text[..digits]
        .iter()
        .fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
    Some((value, &text[digits..]))
}

/// Writes message `seq`'s payload of `size` bytes, sent at `sent`, over `body`.
fn fill_payload(body: &mut Vec<u8>, size: usize, seq: u64, sent: u64) {
    body.clear();
    body.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    body.push(b' ');
    body.extend_from_slice(itoa::Buffer::new().format(sent).as_bytes());
    body.push(b' ');
    let pad = size.saturating_sub(body.len());
    body.extend((0..pad).map(|i| b'a' + (i % 26) as u8));
}

/// The publisher's connection, NATS or IRC.
enum Sink {
    Nats { client: Client, subject: Vec<u8> },
    Irc { conn: IrcConn, prefix: Vec<u8> },
}

impl Sink {
    async fn open(ctx: &RoleCtx) -> Result<Sink, ClientError> {
        let target = &ctx.irc;
        match target.publisher {
            IrcPublisher::Nats => Ok(Sink::Nats {
                client: Client::connect(&ctx.gate, &ctx.addr, &ctx.auth, ctx.tls.as_deref(), &[])
                    .await?,
                subject: target.subject.as_bytes().to_vec(),
            }),
            IrcPublisher::Irc => {
                let nick = format!("p{}", target.tag);
                let mut conn = IrcConn::connect(&target.addr, nick.clone(), &ctx.shared).await?;
                conn.register().await?;
                if let Some((name, password)) = &target.oper {
                    conn.write(format!("OPER {name} {password}\r\n").as_bytes())
                        .await?;
                    conn.await_reply(&format!("OPER {name}"), REPLY_TIMEOUT, |l| {
                        l.command == b"381"
                    })
                    .await?;
                    // ngircd's +F; a server without it says 501 (its operators' privileges
                    // are then what lifts its flood limits).
                    conn.write(format!("MODE {nick} +F\r\n").as_bytes()).await?;
                    conn.await_reply(&format!("MODE {nick} +F"), REPLY_TIMEOUT, |l| {
                        l.command == b"MODE" && l.trailing.contains(&b'F')
                            || l.command == b"221"
                            || l.command == b"501"
                    })
                    .await?;
                }
                conn.join(&target.channel).await?;
                Ok(Sink::Irc {
                    conn,
                    prefix: format!("PRIVMSG {} :", target.channel).into_bytes(),
                })
            }
        }
    }

    fn encode(&self, out: &mut Vec<u8>, body: &[u8]) {
        match self {
            Sink::Nats { subject, .. } => encode_pub(out, subject, None, body),
            Sink::Irc { prefix, .. } => {
                out.extend_from_slice(prefix);
                out.extend_from_slice(body);
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match self {
            Sink::Nats { client, .. } => client.write(bytes).await,
            Sink::Irc { conn, .. } => conn.write(bytes).await,
        }
    }

    /// Waits until the server has handled everything sent (PING → PONG).
    async fn ack(&mut self) -> Result<(), ClientError> {
        match self {
            Sink::Nats { client, .. } => {
                client.write(b"PING\r\n").await?;
                client.await_pong(ACK_TIMEOUT).await
            }
            Sink::Irc { conn, .. } => {
                conn.write(b"PING :bench-ack\r\n").await?;
                conn.await_reply("waiting for PONG", ACK_TIMEOUT, |l| {
                    l.command == b"PONG" && l.trailing == b"bench-ack"
                })
                .await
            }
        }
    }
}

/// The publisher: opens its connection once every member is in the channel, then says
/// `count` lines (or until the deadline), at `--rate` or as fast as the socket takes them.
pub async fn publisher(ctx: &RoleCtx, count: Option<u64>) -> Result<ClientStats, ClientError> {
    let shared = &ctx.shared;
    // Joining after the members spares the publisher their JOIN lines.
    while shared.ready.load(Relaxed) < shared.received.len() {
        if shared.phase() >= STOP {
            return Ok(ClientStats::default());
        }
        sleep(Duration::from_millis(5)).await;
    }
    let mut sink = Sink::open(ctx).await?;
    shared.ready.fetch_add(1, Relaxed);
    if !wait_for(shared, GO).await {
        return Ok(ClientStats::default());
    }
    let start = now_ns();
    let sent = publish(ctx, &mut sink, count, start).await?;
    sink.ack().await?;
    let end = now_ns();
    if let Some(s) = shared.sent_per_subject.first() {
        s.fetch_add(sent, Relaxed);
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

/// Sends until `count`, the deadline or the end of the run; returns how many were sent.
/// At a fixed rate each line carries its intended send time (coordinated-omission
/// correction), otherwise the time its batch was built.
async fn publish(
    ctx: &RoleCtx,
    sink: &mut Sink,
    count: Option<u64>,
    start: u64,
) -> Result<u64, ClientError> {
    let shared = &ctx.shared;
    let interval_ns = if ctx.rate_per_pub > 0.0 {
        1e9 / ctx.rate_per_pub
    } else {
        0.0
    };
    let batch_max = (BATCH_BYTES / (ctx.size + 64)).max(1) as u64;
    let mut body = Vec::with_capacity(ctx.size + 40);
    let mut buf = Vec::with_capacity(BATCH_BYTES + ctx.size + 128);
    let mut sent = 0u64;
    loop {
        let now = now_ns();
        if count.is_some_and(|c| sent >= c) || shared.past_deadline(now) || shared.phase() >= STOP {
            return Ok(sent);
        }
        let n = match pace(start, now, sent, interval_ns, batch_max, count) {
            Pace::Send(n) => n,
            Pace::Wait(d) => {
                sleep(d).await;
                continue;
            }
        };
        buf.clear();
        for seq in sent..sent + n {
            let t = if interval_ns > 0.0 {
                start + (seq as f64 * interval_ns) as u64
            } else {
                now
            };
            fill_payload(&mut body, ctx.size, seq, t.max(1));
            sink.encode(&mut buf, &body);
        }
        sink.write(&buf).await?;
        sent += n;
        shared.published.fetch_add(n, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_sequence_and_time_in_ascii() {
        let mut body = Vec::new();
        fill_payload(&mut body, 64, 42, 1_234_567_890_123);
        assert_eq!(body.len(), 64);
        assert!(body.iter().all(|b| b.is_ascii_graphic() || *b == b' '));
        assert_eq!(parse_payload(&body), Some((42, 1_234_567_890_123)));
        assert_eq!(parse_payload(b"[binary 64 bytes]"), None);
        assert_eq!(parse_payload(b"hello there"), None);
        assert_eq!(parse_payload(b"1 2"), Some((1, 2)));
        assert_eq!(parse_payload(b"1 2x"), None);
        assert_eq!(parse_payload(b"99999999999999999999 1"), None);
    }
}
