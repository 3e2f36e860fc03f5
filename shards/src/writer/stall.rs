//! Bounded publisher pauses. An outbox whose pending output passes `stall_above` is
//! *congested*: the turn that fed it (a client's read chunk or a ring batch) then waits up
//! to `STALL_WAIT_MAX` for it to drain before producing more. A subscriber that keeps
//! reading, only slower, paces its publishers this way instead of being dropped. Pauses
//! during which it wrote nothing are charged to its budget (`stall_budget`), which any
//! progress refills: a reader that stopped slows the others for at most that long, then is
//! left to reach `max_pending` and be cut off; a reader that resumes is paced again.
//!
//! [`Stall`] is the per-outbox state and its rules, with the clock passed in (tested
//! without sleeping); [`Congestion`] is the shard's list of outboxes congested this turn;
//! [`pause`] is the wait itself.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::limits::STALL_WAIT_MAX;
use crate::writer::Outbox;

/// One outbox's congestion state.
#[derive(Debug)]
pub struct Stall {
    /// Pending bytes above which the outbox is congested (`stall_above`, at most 75% of
    /// `max_pending` so a congested subscriber always has room left).
    above_bytes: Cell<usize>,
    /// Pause time per episode; zero disables pausing.
    budget: Cell<Duration>,
    congested: Cell<bool>,
    /// Listed in the shard's [`Congestion`] list, waiting for the turn that fed it to pause.
    listed: Cell<bool>,
    /// Pause time this outbox may still cost in the current episode.
    left: Cell<Duration>,
    /// Bytes written when publishers last paused for it: any progress since shows it reads.
    mark: Cell<u64>,
    /// When the current pause began and the bytes written then.
    began: Cell<Option<(Instant, u64)>>,
}

/// The pending bytes above which an outbox is congested: `stall_above`, but at most 75%
/// of `max_pending`, so a congested subscriber always has room left.
fn watermark(stall_above_bytes: usize, pending_bytes_max: usize) -> usize {
    stall_above_bytes.min(pending_bytes_max / 4 * 3)
}

/// What the turn that fed a congested outbox should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing: it drained meanwhile, or its budget is spent.
    Skip,
    /// Wait up to this long for it to drain.
    Wait(Duration),
}

impl Stall {
    pub fn new(stall_above_bytes: usize, pending_bytes_max: usize, budget: Duration) -> Self {
        Stall {
            above_bytes: Cell::new(watermark(stall_above_bytes, pending_bytes_max)),
            budget: Cell::new(budget),
            congested: Cell::new(false),
            listed: Cell::new(false),
            left: Cell::new(budget),
            mark: Cell::new(0),
            began: Cell::new(None),
        }
    }

    /// Takes reloaded thresholds; an episode under way keeps the budget it has left.
    pub fn set_limits(&self, stall_above_bytes: usize, pending_bytes_max: usize, budget: Duration) {
        self.above_bytes
            .set(watermark(stall_above_bytes, pending_bytes_max));
        self.budget.set(budget);
        self.left.set(self.left.get().min(budget));
    }

    pub fn is_congested(&self) -> bool {
        self.congested.get()
    }

    /// After an append that left `pending` bytes waiting: returns true when the outbox has
    /// just become due for listing (congested, and not listed since the last pause).
    pub fn note_pending(&self, pending: usize) -> bool {
        if pending <= self.above_bytes.get() || self.budget.get().is_zero() {
            return false;
        }
        self.congested.set(true);
        !self.listed.replace(true)
    }

    /// The writer caught up (or the connection closed): the episode ends, the budget is full.
    pub fn relieve(&self) -> bool {
        let was = self.congested.replace(false);
        if was {
            self.left.set(self.budget.get());
        }
        was
    }

    /// A turn is about to pause for this outbox, which has written `written` bytes so far.
    pub fn begin(&self, now: Instant, written: u64) -> Plan {
        self.listed.set(false);
        if !self.congested.get() {
            return Plan::Skip;
        }
        if written != self.mark.get() {
            // It wrote something since the last pause: still reading, if slowly.
            self.left.set(self.budget.get());
        }
        let left = self.left.get();
        if left.is_zero() {
            return Plan::Skip;
        }
        self.began.set(Some((now, written)));
        Plan::Wait(left.min(STALL_WAIT_MAX))
    }

    /// The pause begun by [`Stall::begin`] ended at `now`, `written` bytes written so far:
    /// a pause without progress is charged to the budget.
    pub fn end(&self, now: Instant, written: u64) {
        let Some((began, written_before)) = self.began.take() else {
            debug_assert!(false, "a pause ends after it began");
            return;
        };
        self.mark.set(written);
        if written == written_before {
            let spent = now.saturating_duration_since(began);
            self.left.set(self.left.get().saturating_sub(spent));
        }
    }

    /// Pause time left in this episode (for tests and metrics).
    pub fn budget_left(&self) -> Duration {
        self.left.get()
    }
}

/// Outboxes that became congested since the last pause, per shard. Each is listed at
/// most once at a time (see [`Stall::note_pending`]), so the list never holds more than
/// the shard's connections.
#[derive(Debug, Default)]
pub struct Congestion {
    list: RefCell<Vec<Rc<Outbox>>>,
}

impl Congestion {
    pub fn note(&self, outbox: Rc<Outbox>) {
        self.list.borrow_mut().push(outbox);
    }

    pub fn is_empty(&self) -> bool {
        self.list.borrow().is_empty()
    }

    /// Outboxes listed.
    pub fn len(&self) -> usize {
        self.list.borrow().len()
    }

    fn take(&self) -> Vec<Rc<Outbox>> {
        std::mem::take(&mut *self.list.borrow_mut())
    }

    /// Forgets every listed outbox (at shutdown: the list must not keep them alive).
    pub fn clear(&self) {
        for outbox in self.take() {
            outbox.stall().listed.set(false);
        }
    }
}

/// Waits, boundedly, for the congested outboxes this turn delivered to. Called at the end
/// of the turn that fed them; a turn that delivered to none returns at once.
pub async fn pause(congestion: &Congestion) {
    if congestion.is_empty() {
        return;
    }
    for outbox in congestion.take() {
        let stall = outbox.stall();
        let Plan::Wait(wait) = stall.begin(Instant::now(), outbox.written_total()) else {
            continue;
        };
        let _ = glommio::timer::timeout(wait, async {
            outbox.drained().await;
            Ok(())
        })
        .await;
        stall.end(Instant::now(), outbox.written_total());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn stall() -> Stall {
        Stall::new(1000, 1 << 20, 10 * MS)
    }

    #[test]
    fn congestion_starts_above_the_watermark_and_lists_once() {
        let s = stall();
        assert!(!s.note_pending(1000));
        assert!(!s.is_congested());
        assert!(s.note_pending(1001), "first time above: list it");
        assert!(!s.note_pending(5000), "already listed");
        assert!(s.is_congested());
        let t = Instant::now();
        assert_eq!(s.begin(t, 0), Plan::Wait(STALL_WAIT_MAX));
        s.end(t, 0);
        assert!(s.note_pending(5000), "listed again after the pause");
    }

    #[test]
    fn the_watermark_leaves_room_below_max_pending() {
        let s = Stall::new(1 << 30, 4000, 10 * MS);
        assert!(!s.note_pending(3000));
        assert!(s.note_pending(3001));
    }

    #[test]
    fn pauses_without_progress_spend_the_budget_and_progress_refills_it() {
        let s = stall();
        let t0 = Instant::now();
        s.note_pending(2000);
        assert_eq!(s.begin(t0, 0), Plan::Wait(5 * MS));
        s.end(t0 + 5 * MS, 0);
        assert_eq!(s.budget_left(), 5 * MS);
        assert_eq!(s.begin(t0 + 5 * MS, 0), Plan::Wait(5 * MS));
        s.end(t0 + 10 * MS, 0);
        assert_eq!(s.budget_left(), Duration::ZERO);
        assert_eq!(s.begin(t0 + 10 * MS, 0), Plan::Skip, "budget spent");
        // It wrote 10 bytes since: still reading, the budget is full again.
        assert_eq!(s.begin(t0 + 11 * MS, 10), Plan::Wait(5 * MS));
        assert_eq!(s.budget_left(), 10 * MS);
        // A pause during which it wrote is not charged.
        s.end(t0 + 16 * MS, 500);
        assert_eq!(s.budget_left(), 10 * MS);
    }

    #[test]
    fn relief_ends_the_episode() {
        let s = stall();
        let t0 = Instant::now();
        s.note_pending(2000);
        let _ = s.begin(t0, 0);
        s.end(t0 + 8 * MS, 0);
        assert!(s.relieve());
        assert!(!s.is_congested());
        assert_eq!(s.budget_left(), 10 * MS);
        assert_eq!(
            s.begin(t0 + 9 * MS, 0),
            Plan::Skip,
            "not congested any more"
        );
    }

    #[test]
    fn a_zero_budget_never_pauses() {
        let s = Stall::new(10, 1 << 20, Duration::ZERO);
        assert!(!s.note_pending(1 << 19));
        assert!(!s.is_congested());
    }
}
