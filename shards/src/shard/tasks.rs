//! The shard's connection tasks, counted so shutdown can wait for them, boundedly.
//!
//! glommio's `Gate` did this before, but a `Gate::close` given up on (the shutdown grace
//! ran out with connections still open) leaves the gate waiting to report to a receiver
//! that is gone, and the last task to leave then panicked the shard. Here, waiting is
//! separate from the count: giving up on the wait leaves nothing behind.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures_lite::future::poll_fn;

#[derive(Debug, Default)]
struct State {
    running: Cell<usize>,
    closed: Cell<bool>,
    waiter: RefCell<Option<Waker>>,
}

/// Counts running connection tasks; refuses new ones once closed.
#[derive(Debug, Clone, Default)]
pub struct Tasks(Rc<State>);

/// Held by a running task; dropping it (the task ended or was dropped) counts it out.
struct Running(Rc<State>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.set(self.0.running.get() - 1);
        if self.0.running.get() == 0 {
            if let Some(w) = self.0.waiter.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

impl Tasks {
    /// Spawns `fut` on this executor, counted, unless [`Tasks::close`] was called.
    pub fn spawn<F: Future<Output = ()> + 'static>(&self, fut: F) -> Option<glommio::Task<()>> {
        if self.0.closed.get() {
            return None;
        }
        self.0.running.set(self.0.running.get() + 1);
        let running = Running(Rc::clone(&self.0));
        Some(glommio::spawn_local(async move {
            let _running = running;
            fut.await
        }))
    }

    /// Refuses new tasks from now on.
    pub fn close(&self) {
        self.0.closed.set(true);
    }

    /// Tasks running now.
    pub fn running(&self) -> usize {
        self.0.running.get()
    }

    /// Resolves once no task is running (at once if none is). Dropping it early is fine.
    pub async fn all_done(&self) {
        poll_fn(|cx| {
            if self.0.running.get() == 0 {
                Poll::Ready(())
            } else {
                *self.0.waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_refuses_after_close_and_survives_an_abandoned_wait() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let tasks = Tasks::default();
                let (tx, rx) = flume::bounded::<()>(1);
                let t = tasks
                    .spawn(async move {
                        let _ = rx.recv_async().await;
                    })
                    .expect("open");
                t.detach();
                assert_eq!(tasks.running(), 1);
                tasks.close();
                assert!(tasks.spawn(async {}).is_none());
                // Give up on waiting, as shutdown does when its grace runs out.
                let waited = glommio::timer::timeout(std::time::Duration::from_millis(10), async {
                    tasks.all_done().await;
                    Ok(())
                })
                .await;
                assert!(waited.is_err());
                // The task ends later: nothing panics, and the count says so.
                tx.send_async(()).await.expect("send");
                tasks.all_done().await;
                assert_eq!(tasks.running(), 0);
            })
            .expect("executor")
            .join()
            .expect("join");
    }
}
