//! Bounded publisher pauses. An outbox whose pending output passes `stall_above` is
//! *congested*: the turn that fed it (a client's read chunk or a ring batch) then waits up
//! to `STALL_WAIT_MAX` for it to drain before producing more. A subscriber that keeps
//! reading, only slower, paces its publishers this way instead of being dropped. Pauses
//! during which it wrote nothing are charged to its budget (`stall_budget`), which any
//! progress refills: a reader that stopped slows the others for at most that long, then is
//! left to reach `max_pending` and be cut off; a reader that resumes is paced again.
//!
//! Messages whose slow-consumer policy is `stall_publishers` (see `flow::rules`) extend
//! the episode's budget to `slow_consumer.stall_max`, and the turn waits for the whole of
//! what is left at once (until the subscriber drains): loss-free pipelines slow down to
//! the subscriber's pace, and one that stopped reading holds them for `stall_max` before
//! it falls back to `disconnect`.
//!
//! `drop_new` messages are paced the same way; they are dropped only once the budget is
//! spent (see [`Stall::exhausted`]), so a reader that keeps up loses nothing.
//!
//! [`Stall`] is the per-outbox state and its rules, with the clock passed in (tested
//! without sleeping); [`Congestion`] is the shard's list of outboxes congested this turn;
//! [`pause`] is the wait itself.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::limits::STALL_WAIT_MAX;
use crate::metrics::Counter;
use crate::writer::Outbox;

/// One outbox's congestion state.
#[derive(Debug)]
pub struct Stall {
    /// Pending bytes above which the outbox is congested: its high watermark (see
    /// `flow::Watermarks`).
    above_bytes: Cell<usize>,
    /// Pause time per episode; zero disables pausing.
    budget: Cell<Duration>,
    /// Pause time per episode once a `stall_publishers` message fed it.
    budget_loss_free: Cell<Duration>,
    congested: Cell<bool>,
    /// A `stall_publishers` message fed it in this episode.
    loss_free: Cell<bool>,
    /// Listed in the shard's [`Congestion`] list, waiting for the turn that fed it to pause.
    listed: Cell<bool>,
    /// Pause time this outbox may still cost in the current episode.
    left: Cell<Duration>,
    /// Bytes written when publishers last paused for it: any progress since shows it reads.
    mark: Cell<u64>,
    /// When the current pause began and the bytes written then.
    began: Cell<Option<(Instant, u64)>>,
}

/// What the turn that fed a congested outbox should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing: it drained meanwhile, or its budget is spent.
    Skip,
    /// Wait up to this long for it to drain, then call [`Stall::end`].
    Wait(Duration),
    /// Another turn (a second publisher, a ring) is already pausing for it: wait up to
    /// this long as well, uncharged (the pauses overlap), and do not call `end`.
    Join(Duration),
}

impl Stall {
    /// Congested above `high_bytes`; pauses of `budget` per episode, `budget_loss_free`
    /// for one fed by `stall_publishers` messages.
    pub fn new(high_bytes: usize, budget: Duration, budget_loss_free: Duration) -> Self {
        Stall {
            above_bytes: Cell::new(high_bytes),
            budget: Cell::new(budget),
            budget_loss_free: Cell::new(budget_loss_free.max(budget)),
            congested: Cell::new(false),
            loss_free: Cell::new(false),
            listed: Cell::new(false),
            left: Cell::new(budget),
            mark: Cell::new(0),
            began: Cell::new(None),
        }
    }

    /// Takes reloaded thresholds; an episode under way keeps the budget it has left.
    pub fn set_limits(&self, high_bytes: usize, budget: Duration, budget_loss_free: Duration) {
        self.above_bytes.set(high_bytes);
        self.budget.set(budget);
        self.budget_loss_free.set(budget_loss_free.max(budget));
        self.left.set(self.left.get().min(self.episode_budget()));
    }

    /// The pause time this episode may cost in all.
    fn episode_budget(&self) -> Duration {
        if self.loss_free.get() {
            self.budget_loss_free.get()
        } else {
            self.budget.get()
        }
    }

    pub fn is_congested(&self) -> bool {
        self.congested.get()
    }

    /// After an append that left `pending` bytes waiting (`loss_free`: of a
    /// `stall_publishers` message): returns true when the outbox has just become due for
    /// listing (congested, and not listed since the last pause).
    pub fn note_pending(&self, pending: usize, loss_free: bool) -> bool {
        if pending <= self.above_bytes.get() {
            return false;
        }
        if loss_free && !self.loss_free.replace(true) {
            // The episode's budget grows to the loss-free one; what was spent stays spent.
            let extra = self
                .budget_loss_free
                .get()
                .saturating_sub(self.budget.get());
            self.left.set(self.left.get() + extra);
        }
        if self.episode_budget().is_zero() {
            return false;
        }
        self.congested.set(true);
        !self.listed.replace(true)
    }

    /// The writer caught up (or the connection closed): the episode ends, the budget is full.
    pub fn relieve(&self) -> bool {
        let was = self.congested.replace(false);
        self.loss_free.set(false);
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
            self.left.set(self.episode_budget());
        }
        let left = self.left.get();
        if left.is_zero() {
            return Plan::Skip;
        }
        // Pacing waits a slice at a time; a loss-free episode holds the publisher until
        // the subscriber drains or the budget is spent.
        let slice = if self.loss_free.get() {
            left
        } else {
            left.min(STALL_WAIT_MAX)
        };
        if self.began.get().is_some() {
            return Plan::Join(slice);
        }
        self.began.set(Some((now, written)));
        Plan::Wait(slice)
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

    /// Whether publishers no longer pause for it: congested with this episode's budget
    /// spent (it made no progress), or pausing is off. `drop_new` sheds from then on.
    pub fn exhausted(&self) -> bool {
        self.episode_budget().is_zero() || (self.congested.get() && self.left.get().is_zero())
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
/// of the turn that fed them; a turn that delivered to none returns at once. The waits
/// overlap: the turn is held for the longest of them.
pub async fn pause(congestion: &Congestion) {
    if congestion.is_empty() {
        return;
    }
    // Every pause begins now and they run side by side: the turn waits for the longest,
    // not for their sum, and an outbox that drains early ends its own at once.
    let began = Instant::now();
    let mut waits = Vec::new();
    for outbox in congestion.take() {
        let stall = outbox.stall();
        let (wait, owner) = match stall.begin(began, outbox.written_total()) {
            Plan::Skip => continue,
            Plan::Wait(wait) => (wait, true),
            Plan::Join(wait) => (wait, false),
        };
        waits.push((outbox, began + wait, owner));
    }
    let Some((first, _, _)) = waits.first() else {
        return;
    };
    let metrics = Rc::clone(&first.env().metrics);
    metrics.add(Counter::Stalls, waits.len() as u64);
    for (outbox, deadline, owner) in waits {
        let left = deadline.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            let _ = glommio::timer::timeout(left, async {
                outbox.drained().await;
                Ok(())
            })
            .await;
        }
        if owner {
            outbox.stall().end(Instant::now(), outbox.written_total());
        }
    }
    metrics.add(Counter::StalledUs, began.elapsed().as_micros() as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn stall() -> Stall {
        Stall::new(1000, 10 * MS, 10 * MS)
    }

    #[test]
    fn congestion_starts_above_the_watermark_and_lists_once() {
        let s = stall();
        assert!(!s.note_pending(1000, false));
        assert!(!s.is_congested());
        assert!(s.note_pending(1001, false), "first time above: list it");
        assert!(!s.note_pending(5000, false), "already listed");
        assert!(s.is_congested());
        let t = Instant::now();
        assert_eq!(s.begin(t, 0), Plan::Wait(STALL_WAIT_MAX));
        s.end(t, 0);
        assert!(s.note_pending(5000, false), "listed again after the pause");
    }

    #[test]
    fn stall_publishers_messages_extend_the_episode_then_it_falls_back() {
        let s = Stall::new(1000, 10 * MS, 100 * MS);
        let t0 = Instant::now();
        assert!(s.note_pending(2000, false));
        let _ = s.begin(t0, 0);
        s.end(t0 + 5 * MS, 0);
        assert_eq!(s.budget_left(), 5 * MS);
        // A loss-free message arrives: the episode may now cost 100 ms in all, and the
        // publisher waits for all of it at once (until the subscriber drains).
        assert!(s.note_pending(2100, true));
        assert_eq!(s.budget_left(), 95 * MS);
        let t = t0 + 5 * MS;
        assert_eq!(s.begin(t, 0), Plan::Wait(95 * MS));
        s.end(t + 95 * MS, 0);
        assert_eq!(
            s.begin(t + 95 * MS, 0),
            Plan::Skip,
            "stall_max spent: then disconnect"
        );
        assert!(s.relieve());
        assert_eq!(
            s.budget_left(),
            10 * MS,
            "a new episode starts with the plain budget"
        );
    }

    #[test]
    fn a_second_turn_pausing_for_the_same_outbox_joins_uncharged() {
        let s = stall();
        let t0 = Instant::now();
        assert!(s.note_pending(2000, false));
        assert_eq!(s.begin(t0, 0), Plan::Wait(STALL_WAIT_MAX));
        // Listed again by another turn while the first pause is under way.
        assert!(s.note_pending(2100, false));
        assert_eq!(s.begin(t0 + MS, 0), Plan::Join(STALL_WAIT_MAX));
        s.end(t0 + 5 * MS, 0);
        assert_eq!(s.budget_left(), 5 * MS, "charged once, by the owner");
    }

    #[test]
    fn a_zero_budget_still_pauses_for_loss_free_messages() {
        let s = Stall::new(10, Duration::ZERO, 50 * MS);
        assert!(!s.note_pending(100, false));
        assert!(s.note_pending(100, true));
        assert_eq!(s.begin(Instant::now(), 0), Plan::Wait(50 * MS));
    }

    #[test]
    fn pauses_without_progress_spend_the_budget_and_progress_refills_it() {
        let s = stall();
        let t0 = Instant::now();
        s.note_pending(2000, false);
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
        s.note_pending(2000, false);
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
        let s = Stall::new(10, Duration::ZERO, Duration::ZERO);
        assert!(!s.note_pending(1 << 19, false));
        assert!(!s.is_congested());
    }
}
