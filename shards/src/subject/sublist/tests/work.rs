//! Complexity: removing N entries that share one node does O(N) work in total, counted in
//! steps by `count_work` (never timed).

use super::*;
use crate::subject::sublist::take_work;

/// Work to remove, in random order, `n` entries inserted under `subject` and `queue`.
fn removal_work(n: u32, subject: &[u8], queue: Q<'_>, seed: u64) -> usize {
    let mut sl = Sublist::new(64);
    sl.insert(b"a.>", NOQ, u32::MAX);
    let mut ids: Vec<(EntryId, u32)> = (0..n).map(|v| (sl.insert(subject, queue, v), v)).collect();
    let mut rng = XorShift(seed);
    take_work();
    while !ids.is_empty() {
        // Cached, so every remove also invalidates a cache entry.
        sl.matches(subject);
        let (id, v) = ids.swap_remove(rng.below(ids.len()));
        remove_ok(&mut sl, subject, queue, id, v);
    }
    let work = take_work();
    sl.check_invariants();
    assert_eq!(sl.len(), 1);
    work
}

#[test]
fn removing_n_entries_of_one_subject_is_linear() {
    // Per remove: 3 tokens to find the node, 1 swap, 1 cache key, 3 tokens to check pruning,
    // plus amortised shrinking. A linear scan per remove would be about n * n / 4 steps.
    const STEPS_PER_REMOVE_MAX: usize = 16;
    for queue in [NOQ, q("workers")] {
        for n in [500u32, 2_000, 8_000] {
            let work = removal_work(n, b"a.b.c", queue, u64::from(n) | 1);
            assert!(
                work <= STEPS_PER_REMOVE_MAX * n as usize,
                "{n} removes took {work} steps"
            );
            assert!(work >= n as usize, "the counter counts nothing");
        }
    }
}
