//! Entry ids: removed, stale and unknown ids come back `None` and change nothing; slots are
//! reused and dropped from the tail without letting an old id match a new entry.

use std::rc::Rc;

use super::*;

/// Checks a refused remove left everything as it was.
fn assert_refused(sl: &mut Sublist<u32>, subject: &[u8], queue: Q<'_>, id: EntryId) {
    let len = sl.len();
    let nodes = sl.node_count();
    let cached = sl.matches(b"foo.bar");
    assert_eq!(sl.remove(subject, queue, id), None);
    assert_eq!(sl.len(), len);
    assert_eq!(sl.node_count(), nodes);
    assert!(Rc::ptr_eq(&cached, &sl.matches(b"foo.bar")));
    sl.check_invariants();
}

#[test]
fn double_removal_returns_none() {
    let mut sl = Sublist::new(64);
    let keep = sl.insert(b"foo.bar", NOQ, 1);
    let gone = sl.insert(b"foo.bar", NOQ, 2);
    let grouped = sl.insert(b"foo.*", q("g"), 3);
    remove_ok(&mut sl, b"foo.bar", NOQ, gone, 2);
    remove_ok(&mut sl, b"foo.*", q("g"), grouped, 3);
    assert_refused(&mut sl, b"foo.bar", NOQ, gone);
    assert_refused(&mut sl, b"foo.*", q("g"), grouped);
    // A stale id named anywhere else is refused too.
    assert_refused(&mut sl, b"foo.bar", q("g"), grouped);
    assert_refused(&mut sl, b"other", NOQ, gone);
    assert_eq!(plain_of(&mut sl, "foo.bar"), [1]);
    remove_ok(&mut sl, b"foo.bar", NOQ, keep, 1);
    assert_eq!(sl.node_count(), 1);
}

#[test]
fn stale_id_of_a_reused_slot_returns_none() {
    let mut sl = Sublist::new(64);
    let first = sl.insert(b"foo.bar", NOQ, 1);
    let second = sl.insert(b"foo.bar", NOQ, 2);
    // `first` is not the last slot, so its slot goes on the free list and is reused next.
    remove_ok(&mut sl, b"foo.bar", NOQ, first, 1);
    let third = sl.insert(b"foo.bar", NOQ, 3);
    assert_ne!(first, third);
    assert_refused(&mut sl, b"foo.bar", NOQ, first);
    assert_eq!(plain_of(&mut sl, "foo.bar"), [2, 3]);
    remove_ok(&mut sl, b"foo.bar", NOQ, third, 3);
    remove_ok(&mut sl, b"foo.bar", NOQ, second, 2);
}

#[test]
fn stale_id_of_a_dropped_and_recreated_slot_returns_none() {
    let mut sl = Sublist::new(64);
    let ids: Vec<EntryId> = (0..4).map(|v| sl.insert(b"foo.bar", NOQ, v)).collect();
    assert_eq!(sl.slab.slot_count(), 4);
    // Free slots 1 and 2, then 3: the tail (1, 2, 3) is dropped.
    remove_ok(&mut sl, b"foo.bar", NOQ, ids[1], 1);
    remove_ok(&mut sl, b"foo.bar", NOQ, ids[2], 2);
    remove_ok(&mut sl, b"foo.bar", NOQ, ids[3], 3);
    assert_eq!(sl.slab.slot_count(), 1);
    sl.check_invariants();
    // The slots come back at the end; none of the old ids matches them.
    let fresh: Vec<EntryId> = (10..13).map(|v| sl.insert(b"foo.bar", NOQ, v)).collect();
    assert_eq!(sl.slab.slot_count(), 4);
    for &old in &ids[1..] {
        assert!(!fresh.contains(&old));
        assert_refused(&mut sl, b"foo.bar", NOQ, old);
    }
    assert_eq!(plain_of(&mut sl, "foo.bar"), [0, 10, 11, 12]);
    for (&id, v) in fresh.iter().zip(10..) {
        remove_ok(&mut sl, b"foo.bar", NOQ, id, v);
    }
    remove_ok(&mut sl, b"foo.bar", NOQ, ids[0], 0);
    assert_eq!(sl.slab.slot_count(), 0);
}

#[test]
fn ids_of_another_sublist_past_the_end_return_none() {
    let mut other = Sublist::new(0);
    let foreign: Vec<EntryId> = (0..8).map(|v| other.insert(b"foo.bar", NOQ, v)).collect();
    let mut sl = Sublist::new(64);
    assert_eq!(sl.remove(b"foo.bar", NOQ, foreign[0]), None);
    sl.insert(b"foo.bar", NOQ, 1);
    for &id in &foreign[1..] {
        assert_refused(&mut sl, b"foo.bar", NOQ, id);
    }
}

#[test]
fn slab_gives_memory_back_after_churn() {
    let mut sl = Sublist::new(64);
    let mut rng = XorShift(0xAB);
    let mut ids: Vec<(EntryId, u32)> = (0..4_000).map(|v| (sl.insert(b"a.b", NOQ, v), v)).collect();
    // Leave in random order: the tail is dropped as the last slots go.
    while !ids.is_empty() {
        let (id, v) = ids.swap_remove(rng.below(ids.len()));
        remove_ok(&mut sl, b"a.b", NOQ, id, v);
        if ids.len() % 500 == 0 {
            sl.check_invariants();
            assert!(sl.slab.slot_count() >= ids.len());
        }
    }
    assert_eq!(sl.slab.slot_count(), 0);
    assert_eq!(sl.node_count(), 1);
}
