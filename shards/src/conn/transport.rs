//! Transports: how a connection's bytes are framed on the network. The reader reads
//! from one, the writer flushes into it ([`Sink`]); neither knows which it is. Plain TCP
//! is the only one today; TLS (a rustls session around [`Tcp`]) and WebSocket (frames
//! around each read and each flush) plug in as further implementations of [`Transport`],
//! see `docs/architecture.md`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::future::poll_fn;
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::timer::Timer;

use crate::writer::Sink;

/// A connection's byte stream: read by the reader, written by the writer, shut down (both
/// ways, ending both) when the connection closes.
pub trait Transport: Sink {
    /// Reads once into `dst`; 0 at end of stream.
    fn read(&self, dst: &mut [u8]) -> impl std::future::Future<Output = io::Result<usize>>;

    /// Ends both directions at once: a pending read returns, a pending write fails.
    fn shutdown(&self);

    /// The peer's address, if known.
    fn peer(&self) -> Option<SocketAddr>;

    /// The TLS version and cipher suite, for a TLS connection (`1.3`,
    /// `TLS13_AES_128_GCM_SHA256`).
    fn tls_info(&self) -> Option<(String, String)> {
        None
    }
}

/// Plain TCP through glommio (readiness from io_uring, synchronous sends).
///
/// The write deadline is kept here, not by glommio's write timeout: glommio arms its
/// timer when a write first finds the socket full and disarms it only when one of its
/// own writes succeeds, so the sends made with `sendmsg` in between did not count as
/// progress, and a subscriber that had been full once, and read steadily since, was cut
/// off `write_deadline` later as if stuck.
pub struct Tcp {
    stream: RefCell<TcpStream>,
    fd: RawFd,
    peer: Option<SocketAddr>,
    write_deadline: Duration,
    /// Since when writes have found the socket full without any progress.
    stuck_since: Cell<Option<Instant>>,
    /// Wakes the waiting writer when the deadline passes.
    deadline_timer: RefCell<Option<Timer>>,
}

impl Tcp {
    /// Wraps an accepted stream: no Nagle delay, writes that make no progress for
    /// `write_deadline` fail with `TimedOut`.
    pub fn new(stream: TcpStream, write_deadline: Duration) -> Self {
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        let fd = stream.as_raw_fd();
        Tcp {
            stream: RefCell::new(stream),
            fd,
            peer,
            write_deadline,
            stuck_since: Cell::new(None),
            deadline_timer: RefCell::new(None),
        }
    }

    /// Bytes went out: the writes are not stuck.
    fn progressed(&self) {
        self.stuck_since.set(None);
        self.deadline_timer.borrow_mut().take();
    }
}

impl Sink for Tcp {
    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        // IoSlice is ABI-compatible with iovec on Unix; sendmsg only reads through it.
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len() as _;
        // SAFETY: the iovecs point into buffers borrowed for the duration of this call.
        let r = unsafe { libc::sendmsg(self.fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            if r > 0 {
                self.progressed();
            }
            Ok(r as usize)
        }
    }

    fn poll_send(&self, cx: &mut Context<'_>, front: &[u8]) -> Poll<io::Result<usize>> {
        let now = Instant::now();
        let since = self.stuck_since.get().unwrap_or(now);
        self.stuck_since.set(Some(since));
        let left = self
            .write_deadline
            .saturating_sub(now.duration_since(since));
        if left.is_zero() {
            return Poll::Ready(Err(self.timed_out()));
        }
        match Pin::new(&mut *self.stream.borrow_mut()).poll_write(cx, front) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                }
                return Poll::Ready(Ok(n));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let fired = {
            let mut timer = self.deadline_timer.borrow_mut();
            let timer = timer.get_or_insert_with(|| Timer::new(left));
            Pin::new(timer).poll(cx).is_ready()
        };
        if fired {
            Poll::Ready(Err(self.timed_out()))
        } else {
            Poll::Pending
        }
    }
}

impl Tcp {
    /// The deadline passed. A writer that keeps the connection (one holding only
    /// `drop_new` output) waits a whole new deadline before the next `TimedOut`.
    fn timed_out(&self) -> io::Error {
        self.progressed();
        io::Error::new(
            io::ErrorKind::TimedOut,
            "no write progress within write_deadline",
        )
    }
}

impl Transport for Tcp {
    async fn read(&self, dst: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| Pin::new(&mut *self.stream.borrow_mut()).poll_read(cx, dst)).await
    }

    fn shutdown(&self) {
        // SAFETY: `fd` is this connection's open socket, owned by `stream`, which closes
        // it only when dropped.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }

    fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }
}
