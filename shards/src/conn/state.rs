//! What a shard knows about one client connection: its socket, its outbound buffer,
//! its CONNECT options, its subscriptions and why it is closing. Deliveries enter here
//! (`Conn::push_msg`), which is where the slow-consumer rule is applied.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

use glommio::net::TcpStream;
use rustc_hash::FxHashMap;

use crate::conn::close::CloseReason;
use crate::fanout::stall::Congestion;
use crate::limits::Limits;
use crate::protocol::{self, msg::encode_msg_line, ConnectOptions};
use crate::writer::Outbound;

/// CONNECT options the hot path reads, copied out of `ConnectOptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnFlags {
    pub verbose: bool,
    pub pedantic: bool,
    pub echo: bool,
    pub headers: bool,
    pub no_responders: bool,
}

impl From<&ConnectOptions> for ConnFlags {
    fn from(o: &ConnectOptions) -> Self {
        ConnFlags {
            verbose: o.verbose,
            pedantic: o.pedantic,
            echo: o.echo,
            headers: o.headers,
            no_responders: o.no_responders,
        }
    }
}

impl Default for ConnFlags {
    fn default() -> Self {
        ConnFlags::from(&ConnectOptions::default())
    }
}

/// One subscription of one connection.
#[derive(Debug)]
pub struct Sub {
    pub conn: Rc<Conn>,
    pub sid: Box<[u8]>,
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
    /// Auto-unsubscribe after this many deliveries; 0 means none.
    pub max_msgs: Cell<u64>,
    pub delivered: Cell<u64>,
    /// Set once the subscription is gone; stale match results skip it.
    pub removed: Cell<bool>,
}

impl Sub {
    /// Counts one delivery; returns true when it reached its auto-unsubscribe limit.
    pub fn count_delivery(&self) -> bool {
        let d = self.delivered.get() + 1;
        self.delivered.set(d);
        let max = self.max_msgs.get();
        max != 0 && d >= max
    }

    pub fn is_live(&self) -> bool {
        !self.removed.get() && !self.conn.is_closing()
    }
}

/// A subscription as stored in the subject index: compared by identity.
#[derive(Debug, Clone)]
pub struct SubRef(pub Rc<Sub>);

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// A message about to be delivered, borrowed from a read buffer or a ring batch.
#[derive(Debug, Clone, Copy)]
pub struct MsgView<'a> {
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    /// Size of the header block at the start of `body` (HMSG); None for a plain MSG.
    pub header_len: Option<usize>,
    pub body: &'a [u8],
}

/// A client connection owned by one shard.
pub struct Conn {
    pub cid: u64,
    pub peer: Option<SocketAddr>,
    pub stream: RefCell<TcpStream>,
    fd: RawFd,
    pub out: RefCell<Outbound>,
    pub flags: Cell<ConnFlags>,
    pub name: RefCell<Option<String>>,
    pub subs: RefCell<FxHashMap<Box<[u8]>, Rc<Sub>>>,
    closing: Cell<Option<CloseReason>>,
    /// Inbound traffic since the last keepalive tick (traffic stands in for PONGs).
    pub active: Cell<bool>,
    pub pings_out: Cell<u32>,
    /// PONGs owed once a cross-shard barrier completes.
    pub pongs_waiting: Cell<u32>,
    /// Something this connection did crossed to other shards since its last PONG.
    pub cross_dirty: Cell<bool>,
    flush_requested: Cell<bool>,
    writer_waker: Cell<Option<Waker>>,
    pending_bytes_max: usize,
    /// Pending bytes above which this connection is congested (`stall_above`, at most 75% of the maximum).
    congested_above: usize,
    congested: Cell<bool>,
    /// Listed in the shard's congestion list, waiting for the turn that fed it to pause.
    pub stall_listed: Cell<bool>,
    /// Publisher pause time this connection may still cost in the current episode.
    pub stall_left: Cell<Duration>,
    pub stall_budget: Duration,
    /// Bytes written to the socket when publishers last paused for this connection: any
    /// progress since then shows it is still reading.
    pub stall_mark: Cell<u64>,
    drain_wakers: RefCell<Vec<Waker>>,
    congestion: Rc<Congestion>,
}

impl Conn {
    pub fn new(
        cid: u64,
        peer: Option<SocketAddr>,
        stream: TcpStream,
        out: Outbound,
        limits: &Limits,
        congestion: Rc<Congestion>,
    ) -> Self {
        let pending_bytes_max = limits.pending_bytes_max;
        let fd = stream.as_raw_fd();
        Conn {
            cid,
            peer,
            stream: RefCell::new(stream),
            fd,
            out: RefCell::new(out),
            flags: Cell::new(ConnFlags::default()),
            name: RefCell::new(None),
            subs: RefCell::new(FxHashMap::default()),
            closing: Cell::new(None),
            active: Cell::new(false),
            pings_out: Cell::new(0),
            pongs_waiting: Cell::new(0),
            cross_dirty: Cell::new(false),
            flush_requested: Cell::new(false),
            writer_waker: Cell::new(None),
            pending_bytes_max,
            congested_above: limits.stall_above_bytes.min(pending_bytes_max / 4 * 3),
            congested: Cell::new(false),
            stall_listed: Cell::new(false),
            stall_left: Cell::new(limits.stall_budget),
            stall_budget: limits.stall_budget,
            stall_mark: Cell::new(0),
            drain_wakers: RefCell::new(Vec::new()),
            congestion,
        }
    }

    pub fn is_closing(&self) -> bool {
        self.closing.get().is_some()
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closing.get()
    }

    /// Starts closing for `reason` (first reason wins): queues its -ERR if it has one,
    /// drops a slow consumer's backlog, and wakes the writer, which flushes and shuts
    /// the socket down (which in turn ends the reader).
    pub fn close(&self, reason: CloseReason) {
        if self.closing.get().is_some() {
            return;
        }
        self.closing.set(Some(reason));
        let mut out = self.out.borrow_mut();
        if reason.is_slow_consumer() {
            out.clear();
        }
        if let Some(text) = reason.err_text() {
            let mut line = Vec::with_capacity(text.len() + 10);
            protocol::errors::encode_err(&mut line, text);
            out.append(&line);
        }
        drop(out);
        self.relieve();
        if reason.is_slow_consumer() || reason == CloseReason::WriteError {
            // Nothing more will be written: unblock a writer stuck on a full socket
            // and end the reader now rather than at the write deadline.
            self.shutdown_socket();
        }
        self.wake_writer_now();
    }

    pub fn is_congested(&self) -> bool {
        self.congested.get()
    }

    /// The writer caught up (or the connection closed): end the congestion episode and
    /// release publishers waiting for it.
    pub fn relieve(&self) {
        if self.congested.replace(false) {
            self.stall_left.set(self.stall_budget);
        }
        for w in self.drain_wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Resolves once this connection is no longer congested (or is closing).
    pub async fn drained(&self) {
        futures_lite::future::poll_fn(|cx| {
            if !self.congested.get() || self.is_closing() {
                std::task::Poll::Ready(())
            } else {
                self.drain_wakers.borrow_mut().push(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }

    /// Shuts both directions of the socket; pending reads and writes end at once.
    pub fn shutdown_socket(&self) {
        // SAFETY: `fd` is this connection's open socket, owned by `stream`, which is
        // closed only when the connection is dropped.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }

    /// Appends raw protocol bytes (INFO, PONG, +OK, -ERR) and wakes the writer.
    pub fn push_raw(&self, bytes: &[u8]) {
        if self.is_closing() {
            return;
        }
        self.out.borrow_mut().append(bytes);
        self.wake_writer();
    }

    /// Appends `-ERR '<text>'` for an error that leaves the connection open.
    pub fn push_err(&self, text: &str) {
        let mut line = Vec::with_capacity(text.len() + 10);
        protocol::errors::encode_err(&mut line, text);
        self.push_raw(&line);
    }

    /// Encodes one MSG/HMSG for subscription `sid`. Returns false if the connection is
    /// closing or just became a slow consumer (the message was not queued).
    pub fn push_msg(&self, m: &MsgView<'_>, sid: &[u8]) -> bool {
        let (header_len, body) = match m.header_len {
            // A client that did not ask for headers gets the payload only, as nats-server does.
            Some(h) if !self.flags.get().headers => (None, m.body.get(h..).unwrap_or_default()),
            other => (other, m.body),
        };
        let reply_len = m.reply.map_or(0, <[u8]>::len);
        let line_max = m.subject.len() + sid.len() + reply_len + 64;
        self.push_with(line_max + body.len() + 2, |out| {
            out.append_with(line_max, |v| {
                encode_msg_line(v, m.subject, sid, m.reply, header_len, body.len())
            });
            out.append(body);
            out.append(b"\r\n");
        })
    }

    /// Whether this connection wants `m` re-encoded for it (it did not ask for headers
    /// and `m` has some), so a frame encoded for others does not fit.
    pub fn strips_headers(&self, m: &MsgView<'_>) -> bool {
        m.header_len.is_some() && !self.flags.get().headers
    }

    /// Appends one complete, already encoded MSG/HMSG frame (or several back to back).
    /// Returns false if the connection is closing or just became a slow consumer.
    pub fn push_frame(&self, frame: &[u8]) -> bool {
        self.push_with(frame.len(), |out| out.append(frame))
    }

    /// Queues deliveries encoded once and shared with other connections (no copy).
    /// Returns false if the connection is closing or just became a slow consumer.
    pub fn push_shared(&self, frames: &bytes::Bytes) -> bool {
        self.push_with(frames.len(), |out| out.append_shared(frames.clone()))
    }

    /// Appends at most `len` bytes of deliveries with `write`. Returns false (writing
    /// nothing) if the connection is closing or just became a slow consumer.
    pub fn push_with(&self, len: usize, write: impl FnOnce(&mut Outbound)) -> bool {
        if self.is_closing() {
            return false;
        }
        let mut out = self.out.borrow_mut();
        if out.pending_bytes() + len > self.pending_bytes_max {
            drop(out);
            self.close(CloseReason::SlowConsumerPending);
            return false;
        }
        write(&mut out);
        self.queued(out);
        true
    }

    /// After a delivery was appended: note congestion and wake the writer.
    fn queued(&self, out: std::cell::RefMut<'_, Outbound>) {
        let congested = out.pending_bytes() > self.congested_above;
        drop(out);
        if congested && !self.stall_budget.is_zero() {
            self.congested.set(true);
            // Listed once per turn that fed it: only that turn pauses for it.
            if !self.stall_listed.replace(true) {
                self.congestion.note(self.cid);
            }
        }
        self.wake_writer();
    }

    /// Asks the writer to flush at its next turn (once per turn, however many appends).
    pub fn wake_writer(&self) {
        if !self.flush_requested.replace(true) {
            if let Some(w) = self.writer_waker.take() {
                w.wake();
            }
        }
    }

    fn wake_writer_now(&self) {
        self.flush_requested.set(true);
        if let Some(w) = self.writer_waker.take() {
            w.wake();
        }
    }

    /// Writer side: takes the pending flush request, or parks the waker until one comes.
    pub fn poll_flush_request(&self, waker: &Waker) -> bool {
        if self.flush_requested.replace(false) {
            return true;
        }
        self.writer_waker.set(Some(waker.clone()));
        false
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("cid", &self.cid)
            .field("peer", &self.peer)
            .field("closing", &self.closing.get())
            .finish_non_exhaustive()
    }
}
