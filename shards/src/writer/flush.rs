//! Writes a connection's pending output: one non-blocking vectored `sendmsg` carries
//! everything pending (up to a byte cap); only when the socket is full does the writer
//! await it through glommio, with the connection's write deadline armed.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;

use futures_lite::future::poll_fn;
use futures_lite::AsyncWrite;
use glommio::net::TcpStream;

use crate::limits::WRITE_IOVECS_MAX;
use crate::writer::Outbound;

/// Why a flush stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// No progress within the write deadline: a slow consumer.
    #[error("write deadline exceeded")]
    Deadline,
    /// The peer went away or the socket failed.
    #[error("write failed: {0}")]
    Io(#[from] io::Error),
}

/// Writes until `out` is empty. Returns the bytes written.
pub async fn flush(
    stream: &RefCell<TcpStream>,
    out: &RefCell<Outbound>,
    write_bytes_max: usize,
) -> Result<usize, FlushError> {
    let fd = stream.borrow().as_raw_fd();
    let mut total = 0;
    loop {
        let sent = {
            let out = out.borrow();
            if out.is_empty() {
                return Ok(total);
            }
            send_pending(fd, &out, write_bytes_max)
        };
        match sent {
            Ok(n) => {
                out.borrow_mut().consume(n);
                total += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                total += wait_and_write_front(stream, out).await?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FlushError::Io(e)),
        }
    }
}

/// One `sendmsg(MSG_DONTWAIT | MSG_NOSIGNAL)` over the pending chunks.
fn send_pending(fd: RawFd, out: &Outbound, write_bytes_max: usize) -> io::Result<usize> {
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; WRITE_IOVECS_MAX];
    let n = out.iovecs(&mut iov, write_bytes_max);
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = n as _;
    // SAFETY: the iovecs point into `out`'s chunks, which stay borrowed and unmodified
    // for the duration of this synchronous call.
    let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// The socket is full: lend the front chunk out of `out` (so deliveries can keep
/// appending) and let glommio wait for room and write part of it.
async fn wait_and_write_front(
    stream: &RefCell<TcpStream>,
    out: &RefCell<Outbound>,
) -> Result<usize, FlushError> {
    let Some((chunk, head)) = out.borrow_mut().lend_front() else {
        return Ok(0);
    };
    let result =
        poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_write(cx, &chunk.bytes()[head..]))
            .await;
    let written = *result.as_ref().unwrap_or(&0);
    out.borrow_mut().return_front(chunk, head, written);
    match result {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(FlushError::Deadline),
        Err(e) => Err(FlushError::Io(e)),
    }
}
