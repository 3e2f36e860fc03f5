//! Writes an outbox's pending bytes into a [`Sink`]: one non-blocking vectored send
//! carries everything pending (up to a byte cap); only when the transport is full does the
//! writer wait for it, through the sink, with the connection's write deadline armed.
//! Appends continue while it waits (nothing is borrowed across the wait), and a close
//! (a slow consumer's backlog dropped) ends the wait at once.

use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use futures_lite::future::poll_fn;

use crate::limits::WRITE_IOVECS_MAX;
use crate::writer::Outbox;

/// Where a connection's bytes go: a TCP socket today; a TLS session or WebSocket framing
/// wraps one (see `docs/architecture.md`).
pub trait Sink {
    /// Sends a prefix of `bufs` without waiting; `WouldBlock` when the transport is full.
    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Registers `cx` to be woken when the transport may take more, writing a prefix of
    /// `front` if it already can. Fails with `TimedOut` once no progress was made for the
    /// write deadline.
    fn poll_send(&self, cx: &mut Context<'_>, front: &[u8]) -> Poll<io::Result<usize>>;
}

/// Why a flush stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// No progress within the write deadline: a slow consumer.
    #[error("write deadline exceeded")]
    Deadline,
    /// The peer went away or the transport failed.
    #[error("write failed: {0}")]
    Io(#[from] io::Error),
}

/// Writes until `outbox` is empty (or its backlog was dropped). Returns the bytes written.
pub async fn flush(
    sink: &impl Sink,
    outbox: &Outbox,
    write_bytes_max: usize,
) -> Result<usize, FlushError> {
    let mut total = 0;
    poll_fn(|cx| loop {
        let sent = {
            let out = outbox.outbound();
            if out.is_empty() {
                return Poll::Ready(Ok(total));
            }
            let mut iov = [IoSlice::new(&[]); WRITE_IOVECS_MAX];
            let n = out.io_slices(&mut iov, write_bytes_max);
            match sink.try_send(&iov[..n]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Full: wait through the sink, and for appends or a close meanwhile.
                    outbox.park_writer(cx.waker());
                    match sink.poll_send(cx, out.front()) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(r) => r,
                    }
                }
                other => other,
            }
        };
        match sent {
            Ok(n) => {
                outbox.written(n);
                total += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Poll::Ready(Err(FlushError::Deadline))
            }
            Err(e) => return Poll::Ready(Err(FlushError::Io(e))),
        }
    })
    .await
}
