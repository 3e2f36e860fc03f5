//! The task that owns a connection's send side: it sleeps until appends ask for a flush,
//! writes everything pending in as few calls as possible, turns a stuck write into a
//! slow-consumer close, and shuts the transport down when the connection closes (which
//! also ends the reader).

use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use futures_lite::future::poll_fn;

use crate::close::CloseReason;
use crate::conn::Transport;
use crate::writer::{flush, FlushError, Outbox};

/// How the writer flushes; copied from `Limits`.
#[derive(Debug, Clone, Copy)]
pub struct WriterParams {
    pub write_bytes_max: usize,
    pub flush_delay: Duration,
    pub shutdown_grace: Duration,
}

/// Runs until the connection closes and its last bytes are out (or given up on).
pub async fn run(outbox: Rc<Outbox>, transport: Rc<impl Transport>, params: WriterParams) {
    loop {
        poll_fn(|cx| {
            if outbox.poll_flush_request(cx.waker()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        if !params.flush_delay.is_zero() && !outbox.is_closing() && !outbox.take_urgent() {
            // Gather more before writing, unless a high-priority message (or a close)
            // comes meanwhile: that is written at once.
            let urgent = poll_fn(|cx| {
                if outbox.take_urgent() || outbox.is_closing() {
                    Poll::Ready(Ok(()))
                } else {
                    outbox.park_writer(cx.waker());
                    Poll::Pending
                }
            });
            let _ = glommio::timer::timeout(params.flush_delay, urgent).await;
        }
        outbox.take_urgent();
        match flush(&*transport, &outbox, params.write_bytes_max).await {
            Ok(_) => outbox.relieve(),
            // Holding only `drop_new` messages, a reader that stopped keeps its connection
            // (what it holds is bounded by its high watermark; keepalive still closes a
            // dead peer): keep trying.
            Err(FlushError::Deadline) if !outbox.deadline_closes() => outbox.retry_flush(),
            Err(FlushError::Deadline) => outbox.close(CloseReason::SlowConsumerDeadline),
            Err(FlushError::Io(_)) => outbox.close(CloseReason::WriteError),
        }
        if outbox.is_closing() {
            final_flush(&outbox, &*transport, params).await;
            transport.shutdown();
            return;
        }
    }
}

/// Sends what is still buffered (an error line, or output at server shutdown), bounded by
/// the shutdown grace period.
async fn final_flush(outbox: &Outbox, transport: &impl Transport, params: WriterParams) {
    if outbox.pending_bytes() == 0 {
        return;
    }
    let bounded = glommio::timer::timeout(params.shutdown_grace, async {
        flush(transport, outbox, params.write_bytes_max)
            .await
            .map_err(|e| glommio::GlommioError::IoError(std::io::Error::other(e)))
    });
    let _ = bounded.await;
}
