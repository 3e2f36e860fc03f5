//! The task that owns a connection's send side: it sleeps until deliveries ask for a
//! flush, writes everything pending in as few calls as possible, turns a stuck write
//! into a slow-consumer close, and shuts the socket down when the connection closes.

use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use futures_lite::future::poll_fn;

use crate::conn::{CloseReason, Conn};
use crate::writer::{flush, FlushError};

/// How the writer flushes; copied from `Limits`.
#[derive(Debug, Clone, Copy)]
pub struct WriterParams {
    pub write_bytes_max: usize,
    pub flush_delay: Duration,
    pub shutdown_grace: Duration,
}

/// Runs until the connection closes and its last bytes are out (or given up on).
pub async fn run(conn: Rc<Conn>, params: WriterParams) {
    loop {
        poll_fn(|cx| {
            if conn.poll_flush_request(cx.waker()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        if !params.flush_delay.is_zero() && !conn.is_closing() {
            glommio::timer::sleep(params.flush_delay).await;
        }
        match flush(&conn.stream, &conn.out, params.write_bytes_max).await {
            Ok(_) => conn.relieve(),
            Err(FlushError::Deadline) => conn.close(CloseReason::SlowConsumerDeadline),
            Err(FlushError::Io(_)) => conn.close(CloseReason::WriteError),
        }
        if conn.is_closing() {
            final_flush(&conn, params).await;
            conn.shutdown_socket();
            return;
        }
    }
}

/// Sends what is still buffered (an -ERR line, or output at server shutdown), bounded
/// by the shutdown grace period.
async fn final_flush(conn: &Conn, params: WriterParams) {
    if conn.out.borrow().is_empty() {
        return;
    }
    let bounded = glommio::timer::timeout(params.shutdown_grace, async {
        flush(&conn.stream, &conn.out, params.write_bytes_max)
            .await
            .map_err(|e| glommio::GlommioError::IoError(std::io::Error::other(e)))
    });
    let _ = bounded.await;
}
