//! Bounded publisher pauses. A subscriber whose pending output passes `stall_above`
//! is *congested*: the turn that fed it (a client's read chunk or a ring
//! batch) then waits up to `STALL_WAIT_MAX` for it to drain before producing more.
//! A subscriber that keeps reading, only slower, paces its publishers this way instead
//! of being dropped. Pauses during which it read nothing are charged to its budget
//! (`stall_budget`), which any progress refills: a reader that stopped slows the others
//! for at most that long, then is left to reach `max_pending` and be cut off; a reader
//! that resumes is paced again.

use std::cell::RefCell;
use std::time::Instant;

use crate::limits::STALL_WAIT_MAX;
use crate::shard::ShardCtx;

/// Connections (by cid) that became congested since the last pause, per shard.
#[derive(Debug, Default)]
pub struct Congestion {
    cids: RefCell<Vec<u64>>,
}

impl Congestion {
    pub fn note(&self, cid: u64) {
        self.cids.borrow_mut().push(cid);
    }

    pub fn is_empty(&self) -> bool {
        self.cids.borrow().is_empty()
    }

    fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.cids.borrow_mut())
    }
}

/// Waits, boundedly, for the congested subscribers this turn delivered to. Called at the
/// end of the turn that fed them; a turn that delivered to none returns at once.
pub async fn pause_for_congestion(ctx: &ShardCtx) {
    if ctx.congestion.is_empty() {
        return;
    }
    for cid in ctx.congestion.take() {
        let Some(conn) = ctx.conns.borrow().get(&cid).cloned() else {
            continue;
        };
        conn.stall_listed.set(false);
        if !conn.is_congested() {
            continue;
        }
        let written_before = conn.out.borrow().written_total();
        if written_before != conn.stall_mark.get() {
            // It has written something since the last pause: still reading, if slowly.
            conn.stall_left.set(conn.stall_budget);
        }
        let left = conn.stall_left.get();
        if left.is_zero() {
            continue;
        }
        let started = Instant::now();
        let _ = glommio::timer::timeout(left.min(STALL_WAIT_MAX), async {
            conn.drained().await;
            Ok(())
        })
        .await;
        let written_after = conn.out.borrow().written_total();
        conn.stall_mark.set(written_after);
        if written_after == written_before {
            conn.stall_left.set(left.saturating_sub(started.elapsed()));
        }
    }
}
