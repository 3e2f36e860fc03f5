//! A bounded set of task wakers, for the few places where tasks wait on shard-local state
//! (a congested subscriber draining, room in a ring's overflow queue).
//!
//! A task re-polled while still waiting registers the same waker again; the set keeps one
//! copy (`Waker::will_wake`), so it holds at most one entry per waiting task, and never
//! more than its bound: a registration past it is refused and the caller decides (the
//! waits here are all allowed to end early).

use std::task::Waker;

/// Wakers of the tasks waiting for one condition, at most `max` of them.
#[derive(Debug)]
pub struct WakerSet {
    wakers: Vec<Waker>,
    max: usize,
}

impl WakerSet {
    /// A set that holds at most `max` wakers.
    pub fn new(max: usize) -> Self {
        WakerSet {
            wakers: Vec::new(),
            max,
        }
    }

    /// Registers `waker` to be woken by [`WakerSet::wake_all`]. Returns false, registering
    /// nothing, when the set is full: the caller must not wait on it.
    pub fn register(&mut self, waker: &Waker) -> bool {
        if self.wakers.iter().any(|w| w.will_wake(waker)) {
            return true;
        }
        if self.wakers.len() >= self.max {
            return false;
        }
        self.wakers.push(waker.clone());
        true
    }

    /// Wakes every registered task and forgets them (they register again if they still wait).
    pub fn wake_all(&mut self) {
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }

    /// Tasks registered.
    pub fn len(&self) -> usize {
        self.wakers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.wakers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (Arc::clone(&c), Waker::from(c))
    }

    #[test]
    fn one_entry_per_task_and_never_past_the_bound() {
        let mut set = WakerSet::new(2);
        let (a_count, a) = waker();
        let (_, b) = waker();
        let (_, c) = waker();
        for _ in 0..10 {
            assert!(set.register(&a));
        }
        assert_eq!(set.len(), 1);
        assert!(set.register(&b));
        assert!(!set.register(&c), "a third task is refused");
        assert_eq!(set.len(), 2);
        set.wake_all();
        assert!(set.is_empty());
        assert_eq!(a_count.0.load(Ordering::Relaxed), 1);
        assert!(set.register(&c));
    }
}
